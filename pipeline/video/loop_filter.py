"""The in-loop restoration filter: every decoded frame is restored before it is output and before it becomes
the next frame's reference (as H.264's deblocking filter and HEVC's SAO sit in the loop).

The net (``codec/restoration.py``, trained by ``python -m pipeline train_filter restore=rnn``) is told what
the decoder knows about each 16x16 block: how many iterations coded it and whether the frame is an I-frame.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from codec.restoration import load_restoration, restore

COUNT_SCALE = 1 / 8  # iteration counts are given to the net as counts / 8 (8: rate.max_iterations' default)


def condition(counts: np.ndarray, frame_type: str) -> np.ndarray:
    """(2, h, w) float32 per 16x16 block: iteration count x COUNT_SCALE, and 1 on I-frames (0 on P-frames)."""
    scaled = counts.astype(np.float32) * COUNT_SCALE
    return np.stack([scaled, np.full_like(scaled, 1.0 if frame_type == "I" else 0.0)])


class LoopFilter:
    """Loads the filter in ``weights``; ``filter_id`` (a hash of the weights) goes into the stream header."""

    def __init__(self, weights: str | Path) -> None:
        self.net, meta = load_restoration(weights)
        if self.net.config.cond != 2:
            raise ValueError(f"in-loop filter {weights}: it takes {self.net.config.cond} conditioning planes, "
                             "expected 2 (iteration counts, frame type); train it with restore=rnn")
        stem = str(weights).removesuffix(".safetensors")
        self.filter_id = hashlib.sha256(Path(stem + ".safetensors").read_bytes()).hexdigest()[:16]

    def __call__(self, decoded: np.ndarray, counts: np.ndarray, frame_type: str) -> np.ndarray:
        """Restore a uint8 (H, W, 3) frame coded with per-block iteration ``counts`` (h, w)."""
        return restore(self.net, decoded, condition(counts, frame_type))
