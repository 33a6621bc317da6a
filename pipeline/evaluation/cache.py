"""Evaluation results cached per (codec settings, rate point, sequence): a rerun codes only what changed.

An entry is the scored row of one point on one sequence (JSON) and, for the sequence the report draws its
pictures from, the picture crops (``.npz``). Its key joins the codec's config hash (:func:`config_hash`: the
codec's settings and the content of the weights they name, the metric settings, the library versions) with a
digest of the sequence's frames, so new frames, new weights or new settings miss the cache by themselves.
Entries are written atomically; ``eval.force=true`` recomputes and overwrites them.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from atomic import write_bytes


def frames_digest(frames: list[np.ndarray]) -> str:
    """Hex sha256 (16 digits) over the frames' shapes and pixels."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr(frame.shape).encode())
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()[:16]


class ResultCache:
    """Rows under ``root/<codec>/<codec key>/<sequence digest>/<point>.json``; the report's picture crops under
    ``.../<sequence digest>-<pictures>/<point>.npz``, where ``pictures`` names the frame and crop size. Rows do not
    depend on which sequence the pictures come from, so runs over different subsets of the sequences share them."""

    def __init__(self, root: str | Path, force: bool = False) -> None:
        self.root, self.force = Path(root), force

    def _path(self, codec: str, codec_key: str, sequence: str, point: Any, suffix: str) -> Path:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(point))
        return self.root / codec / codec_key / sequence / f"{name}{suffix}"

    def _crops_path(self, codec: str, codec_key: str, sequence: str, point: Any, pictures: str) -> Path:
        return self._path(codec, codec_key, f"{sequence}-{pictures}", point, ".npz")

    def get(self, codec: str, codec_key: str, sequence: str, point: Any,
            pictures: str | None) -> tuple[dict, dict[str, np.ndarray] | None] | None:
        """(row, crops or None) when cached (with the crops named ``pictures``, when given), else None."""
        if self.force:
            return None
        row_path = self._path(codec, codec_key, sequence, point, ".json")
        crop_path = self._crops_path(codec, codec_key, sequence, point, pictures) if pictures else None
        if not row_path.is_file() or (crop_path is not None and not crop_path.is_file()):
            return None
        try:
            row = json.loads(row_path.read_text())
            crops = dict(np.load(crop_path)) if crop_path is not None else None
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and overwritten
        return row, crops

    def put(self, codec: str, codec_key: str, sequence: str, point: Any, row: dict,
            crops: dict[str, np.ndarray] | None, pictures: str | None = None) -> None:
        """Store a row and, with ``pictures`` (the name :meth:`get` will ask for), its crops."""
        if crops is not None:
            if not pictures:
                raise ValueError("picture crops need the name of their pictures (frame and crop size)")
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **crops)
            write_bytes(self._crops_path(codec, codec_key, sequence, point, pictures), buffer.getvalue())
        write_bytes(self._path(codec, codec_key, sequence, point, ".json"), json.dumps(row, allow_nan=True).encode())
