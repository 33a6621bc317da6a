"""Synthetic frames with known motion, shared by the flow tests (and a check of their convention)."""

from __future__ import annotations

import cv2
import numpy as np


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (h, w, 3) smooth random texture: every block has structure, nothing repeats."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3)).astype(np.float32)
    image = cv2.GaussianBlur(noise, (0, 0), 1.5)
    image = (image - image.min()) / (image.max() - image.min())
    return np.round(image * 255).astype(np.uint8)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """out(x, y) = image(x - dx, y - dy): the content moves by (+dx, +dy); bilinear, replicated borders."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def test_shifted_moves_content_by_plus_d() -> None:
    image = textured(32, 40)
    moved = shifted(image, 3, 2)
    assert np.array_equal(moved[2:, 3:], image[:-2, :-3])
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
