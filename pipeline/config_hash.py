"""A hash of the config keys that decide an output, so stored outputs are reused only while they still hold.

Preprocessing stores it with every manifest record (``preprocess.hash_keys``; outputs coded under another hash
are redone); evaluation keys its per-point cache with it. It covers the selected keys and the content of the
model weights they name, so retrained weights under the same file name count as a change.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def config_hash(cfg: DictConfig, keys: list[str]) -> str:
    """Hex sha256 (first 16 digits) of the selected config values, weights files replaced by their content hash.

    A key absent from ``cfg`` hashes as null, so adding an unrelated key elsewhere changes nothing; a checkout
    at another path with the same weights hashes the same.
    """
    selected = {key: _with_weight_digests(key, _plain(OmegaConf.select(cfg, key, default=None))) for key in keys}
    text = json.dumps(selected, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _with_weight_digests(key: str, value: Any) -> Any:
    """Values of keys named ``*weights`` that point at weights files become ``sha256:<content digest>``."""
    if isinstance(value, dict):
        return {k: _with_weight_digests(str(k), v) for k, v in value.items()}
    if key.endswith("weights") and isinstance(value, str):
        digest = _weights_digest(Path(value))
        return f"sha256:{digest}" if digest is not None else value
    return value


def _weights_digest(stem: Path) -> str | None:
    """sha256 over the files of a weights stem (``stem.safetensors``, ``stem.json``, ``stem.entropy.safetensors``,
    ...: every ``stem.*`` beside it, as the codec stores them), None when there are none."""
    if stem.suffix in {".safetensors", ".json"}:
        stem = stem.with_suffix("")
    if not stem.parent.is_dir():
        return None
    files = sorted(p for p in stem.parent.glob(glob.escape(stem.name) + ".*")
                   if p.is_file() and not p.name.endswith(".tmp"))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()
