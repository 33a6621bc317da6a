"""Pictures for the report: centre crops, and the scale shared by compared flow colour images."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (frame t, frame t+1) uint8 (H, W, 3) -> forward flow (H, W, 2) float32
FlowEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


def robust_max_magnitude(flow: np.ndarray) -> float:
    """99th percentile of |flow|: a scale that a few wild vectors do not wash out."""
    return float(np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 99))


def centre_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The central (height, width) window of (H, W, ...) ``image``, or all of it where it is smaller."""
    h, w = image.shape[:2]
    ch, cw = min(height, h), min(width, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw].copy()
