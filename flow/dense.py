"""Dense optical flow behind one interface: OpenCV DIS, Farneback, and the block matcher upsampled.

Every estimator returns the forward flow t -> t+1 as (H, W, 2) float32 (dx, dy): pixel (x, y) of
frame1 is at (x + dx, y + dy) in frame2.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from flow.block_matching import estimate_block_motion
from flow.luma import check_pair, to_luma

METHODS = ("dis", "farneback", "block")
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# cv2.calcOpticalFlowFarneback parameters (OpenCV's sample values, more levels for driving motion).
FARNEBACK_DEFAULTS = {"pyr_scale": 0.5, "levels": 5, "winsize": 15, "iterations": 3, "poly_n": 5,
                      "poly_sigma": 1.2, "flags": 0}


def dis_flow(gray1: np.ndarray, gray2: np.ndarray, preset: str = "medium") -> np.ndarray:
    """OpenCV DIS flow of two uint8 (H, W) images -> (H, W, 2) float32."""
    if preset not in DIS_PRESETS:
        raise ValueError(f"DIS preset {preset!r} is unknown; expected one of {sorted(DIS_PRESETS)}")
    return cv2.DISOpticalFlow_create(DIS_PRESETS[preset]).calc(gray1, gray2, None)


def farneback_flow(gray1: np.ndarray, gray2: np.ndarray, **options: Any) -> np.ndarray:
    """OpenCV Farneback flow of two uint8 (H, W) images -> (H, W, 2) float32."""
    unknown = set(options) - set(FARNEBACK_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown Farneback options {sorted(unknown)}; expected {sorted(FARNEBACK_DEFAULTS)}")
    return cv2.calcOpticalFlowFarneback(gray1, gray2, None, **{**FARNEBACK_DEFAULTS, **options})


def block_flow(gray1: np.ndarray, gray2: np.ndarray, block: int = 16, search: int = 64, **options: Any) -> np.ndarray:
    """Block-matcher vectors of frame1 against frame2, bilinearly upsampled from block centres to pixels."""
    mv = estimate_block_motion(gray1, gray2, block=block, search=search, **options)
    h, w = gray1.shape
    # INTER_LINEAR with an integer factor puts each vector at its block's centre.
    dense = cv2.resize(mv, (mv.shape[1] * block, mv.shape[0] * block), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(dense[:h, :w])


def estimate_flow(frame1: np.ndarray, frame2: np.ndarray, method: str = "dis", **options: Any) -> np.ndarray:
    """Forward flow frame1 -> frame2.

    frame1, frame2: uint8 (H, W, 3) RGB or (H, W) gray of the same size. method: "dis" (option
    ``preset``: ultrafast | fast | medium), "farneback" (cv2 parameters) or "block" (``block``,
    ``search``, ``subpel``, ``decimate``). Returns (H, W, 2) float32.
    """
    check_pair(frame1, frame2)
    gray1, gray2 = to_luma(frame1, "frame1"), to_luma(frame2, "frame2")
    if method == "dis":
        return dis_flow(gray1, gray2, **options)
    if method == "farneback":
        return farneback_flow(gray1, gray2, **options)
    if method == "block":
        return block_flow(gray1, gray2, **options)
    raise ValueError(f"flow method {method!r} is unknown; expected one of {METHODS}")
