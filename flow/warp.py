"""Backward warping of images by a dense flow with ``cv2.remap``."""

from __future__ import annotations

import cv2
import numpy as np


def check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    """Return ``flow`` as float32 (H, W, 2), or raise ValueError naming ``name``."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{name}: expected a flow of shape (H, W, 2), got {flow.shape}")
    return flow.astype(np.float32, copy=False)


def sampling_map(flow: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 map of the positions x + flow(x), as ``cv2.remap`` takes it."""
    h, w = flow.shape[:2]
    grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    return grid + flow


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample ``image`` at x + flow(x): out(x) = image(x + flow(x)), borders replicated.

    image: (H, W) or (H, W, C), any dtype cv2.remap accepts; flow: (H, W, 2) float32 of the same H, W.
    With the forward flow t -> t+1 and image = frame t+1 this predicts frame t.
    """
    flow = check_flow(flow)
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"warp: image is {image.shape[1]}x{image.shape[0]} but the flow is "
                         f"{flow.shape[1]}x{flow.shape[0]}")
    return cv2.remap(image, sampling_map(flow), None, interpolation, borderMode=cv2.BORDER_REPLICATE)


def inside_mask(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where x + flow(x) falls inside the image."""
    h, w = flow.shape[:2]
    pos = sampling_map(flow)
    return (pos[..., 0] >= 0) & (pos[..., 0] <= w - 1) & (pos[..., 1] >= 0) & (pos[..., 1] <= h - 1)
