"""Luma of RGB frames, the plane every motion estimator here works on."""

from __future__ import annotations

import cv2
import numpy as np


def to_luma(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """uint8 (H, W, 3) RGB or (H, W) gray -> uint8 (H, W) luma (BT.601 weights, as cv2 uses)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 pixels, got {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"{name}: expected an (H, W, 3) RGB or (H, W) gray image, got shape {frame.shape}")


def check_pair(frame1: np.ndarray, frame2: np.ndarray, names: tuple[str, str] = ("frame1", "frame2")) -> None:
    """Raise ValueError unless both frames have the same height and width."""
    if frame1.shape[:2] != frame2.shape[:2]:
        raise ValueError(f"{names[0]} is {frame1.shape[1]}x{frame1.shape[0]} but {names[1]} is "
                         f"{frame2.shape[1]}x{frame2.shape[0]}; a frame pair must share its size")
    if min(frame1.shape[:2]) < 1:
        raise ValueError(f"{names[0]}: empty image of shape {frame1.shape}")
