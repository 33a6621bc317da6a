"""Weights on disk: ``NAME.safetensors`` plus ``NAME.json`` (the :class:`ModelConfig` that built them).

``load()`` returns the shipped intra model from ``codec/weights``. Missing or damaged files raise a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from atomic import temporary_path, write_bytes
from codec.model import ModelConfig, RNNCodec

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_stem(path: str | Path) -> Path:
    """``NAME``, ``NAME.safetensors`` or ``NAME.json`` -> ``NAME`` (other dots in the name are kept)."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".safetensors").removesuffix(".json"))


def _named(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)


def save_model(model: RNNCodec, stem: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` (model config plus ``extra``), each via a temporary name."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with temporary_path(_named(stem, ".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    meta = {"model": model.config.to_dict(), **(extra or {})}
    write_bytes(_named(stem, ".json"), json.dumps(meta, indent=2).encode())
    return _named(stem, ".safetensors")


def read_meta(stem: str | Path) -> dict[str, Any]:
    """The JSON beside the weights; ValueError when it is missing or unreadable."""
    path = _named(weights_stem(stem), ".json")
    if not path.is_file():
        raise FileNotFoundError(f"model config {path} is missing (expected beside the .safetensors weights)")
    try:
        meta = json.loads(path.read_text())
        ModelConfig(**meta["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"model config {path} is not a valid codec config: {err}") from err
    return meta


def load_model(stem: str | Path, device: str | torch.device = "cpu") -> RNNCodec:
    """Build the model from ``stem.json`` and load ``stem.safetensors``; returned in eval mode, channels-last
    (oneDNN's CPU convolutions are faster in that layout: a P-frame decodes in about a tenth less time)."""
    stem = weights_stem(stem)
    meta = read_meta(stem)
    weights = _named(stem, ".safetensors")
    if not weights.is_file():
        raise FileNotFoundError(f"codec weights {weights} are missing")
    model = RNNCodec(ModelConfig(**meta["model"]))
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"codec weights {weights} are corrupt or not safetensors: {err}") from err
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"codec weights {weights} do not match the config in {_named(stem, '.json')}: "
                         f"{str(err).splitlines()[0]}") from err
    return model.to(device, memory_format=torch.channels_last).eval()


def load(name: str = "intra", device: str | torch.device = "cpu") -> RNNCodec:
    """A shipped model from ``codec/weights/NAME``."""
    return load_model(WEIGHTS_DIR / name, device)
