"""Propagation-aware lambda: x264's macroblock-tree (Garrett-Glaser 2009) for the block rate-distortion decisions.

A block that later frames predict from is worth more than its own distortion says: its errors are copied into
every frame that references it. Before a frame is coded, a lookahead over the next frames of its GOP (on the
originals, at half size, as x264's) estimates per 16x16 block an *intra cost* (coding it alone: SATD of the
mean-removed block) and an *inter cost* (coding it from the previous frame: SATD after DIS-flow compensation).
From the last frame back, each block hands the fraction ``1 - inter / intra`` of its cost (its own plus what
it inherited) to the blocks of the previous frame its motion points at. A block whose cost ``intra`` is
propagated ``p`` gets its distortion weighted by ``((intra + p) / intra) ** (strength / 3)``: x264 lowers its
QP by ``strength * log2((intra + p) / intra)`` (``strength`` = 5 (1 - qcompress), 2.0 by default there), and
lambda halves every 3 QP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from flow.dense import dis_flow
from flow.warp import warp

BLOCK = 8  # analysis block at half size: a 16x16 block of the frame
# Added to every block cost, in SATD units (a block always costs something to signal): keeps the ratio of two
# near-zero costs of a flat block from deciding anything.
FLOOR = 256.0
_HADAMARD = np.array([[1]], np.float32)
for _ in range(3):
    _HADAMARD = np.block([[_HADAMARD, _HADAMARD], [_HADAMARD, -_HADAMARD]])


@dataclass(frozen=True)
class BlockCosts:
    """One frame's lookahead analysis on the 16x16 block grid (h, w) of the frame."""

    intra: np.ndarray  # (h, w) cost of coding each block alone
    inter: np.ndarray  # (h, w) cost of coding it from the previous frame (= intra for a frame with none)
    motion: np.ndarray  # (h, w, 2) where each block's content lies in the previous frame, in blocks (dx, dy)


def half_luma(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (ceil(H/16) * 8, ceil(W/16) * 8) luma at half size, edges replicated."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    h, w = -(-gray.shape[0] // 2), -(-gray.shape[1] // 2)
    small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(small, 0, -h % BLOCK, 0, -w % BLOCK, cv2.BORDER_REPLICATE)


def satd(diff: np.ndarray) -> np.ndarray:
    """(H, W) float differences, H and W multiples of 8 -> (H/8, W/8) sum of absolute 8x8 Hadamard coefficients / 8."""
    h, w = diff.shape[0] // BLOCK, diff.shape[1] // BLOCK
    blocks = diff.reshape(h, BLOCK, w, BLOCK).transpose(0, 2, 1, 3)
    return np.abs(_HADAMARD @ blocks @ _HADAMARD).sum((2, 3)) / BLOCK


def analyse(frame: np.ndarray, previous: np.ndarray | None) -> BlockCosts:
    """Lookahead costs of ``frame`` (half-size luma from :func:`half_luma`) predicted from ``previous`` (the same,
    or None for a frame that predicts from nothing)."""
    current = frame.astype(np.float32)
    h, w = current.shape[0] // BLOCK, current.shape[1] // BLOCK
    means = cv2.resize(cv2.resize(current, (w, h), interpolation=cv2.INTER_AREA), current.shape[::-1],
                       interpolation=cv2.INTER_NEAREST)
    intra = satd(current - means) + FLOOR
    if previous is None:
        return BlockCosts(intra, intra, np.zeros((h, w, 2), np.float32))
    # Where each pixel of frame lies in previous (DIS needs contiguous images).
    flow = dis_flow(np.ascontiguousarray(frame), np.ascontiguousarray(previous), "medium")
    inter = np.minimum(satd(current - warp(previous, flow).astype(np.float32)) + FLOOR, intra)
    motion = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / BLOCK
    return BlockCosts(intra, inter, motion)


def propagate(costs: Sequence[BlockCosts]) -> np.ndarray:
    """(h, w) cost that the frames ``costs[1:]`` (each predicted from the one before) inherit from ``costs[0]``'s
    blocks, through chains of references."""
    inherited = np.zeros_like(costs[-1].intra)
    for later in reversed(costs[1:]):
        amount = (later.intra + inherited) * (1.0 - later.inter / later.intra)
        inherited = _splat(amount, later.motion)
    return inherited


def _splat(amount: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Each block's ``amount`` handed to the (up to) four blocks its displaced area overlaps, by overlap area."""
    h, w = amount.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = cols + motion[..., 0], rows + motion[..., 1]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    out = np.zeros_like(amount)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            r, c = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            np.add.at(out, (r[inside], c[inside]), (amount * wy * wx)[inside])
    return out


def propagation_weights(costs: Sequence[BlockCosts], strength: float) -> np.ndarray:
    """(h, w) distortion weights of ``costs[0]``'s blocks, given the frames that follow it in its GOP."""
    first = costs[0]
    return ((first.intra + propagate(costs)) / first.intra) ** (strength / 3.0)
