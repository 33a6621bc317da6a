"""Rate-distortion refinement of a block vector field: iterated conditional modes on SSE + lambda x bits.

The search (:mod:`flow.block_matching`) scores vectors by luma SAD and a rate penalty proportional to their
distance from the predicted vector; the whole-frame choice between fields (:class:`flow.motion.BlockMotion`) uses
the real prediction error and the real bits, but only between whole fields. This pass makes that choice per
block: each block may take the vector the coder predicts for it (a zero residual, a fraction of a bit) or one
of its four neighbours' vectors, whichever lowers

    squared RGB prediction error (with the compensation the decoder runs, OBMC included) + lambda x vector bits.

The blocks take turns in four interleaved grids (even/odd row x even/odd column). With OBMC a block's vector
reaches the pixels within one block of its centre, a window two blocks wide; the windows of one grid's blocks
tile the frame without overlap, and the vectors whose prediction uses a block (its right, lower and lower-right
neighbours under MED) belong to no other block of the grid. So one compensation per candidate scores every block
of a grid exactly against its fixed neighbours, and every accepted change lowers the frame's estimated cost.

Bits are estimated from the field's own statistics (the adaptive coder converges to them): whether a block is
coded at all, merged (a copy of its left, top or top-left neighbour) or sent as a residual, and for a residual
-log2 of each component magnitude's frequency plus a sign bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from flow.compensation import obmc_corners, sample
from flow.vector_coding import MERGES, merge_index, predict

_TAIL = 16  # magnitudes (in the field's unit) with their own histogram bin; larger ones share one + log2 bits


def refine_vectors(cur: np.ndarray, ref: np.ndarray, mv: np.ndarray, block: int, rate_lambda: float, unit: int,
                   obmc: bool = True, interpolation: str = "linear", passes: int = 1) -> np.ndarray:
    """A field no worse than ``mv`` in prediction SSE + ``rate_lambda`` x estimated bits.

    cur, ref: uint8 (H, W, 3) frame and reference; mv: (rows, cols, 2) float32 vectors of ``block``-sized blocks,
    multiples of 1 / ``unit`` px; ``obmc`` and ``interpolation`` as the compensation the decoder runs
    (:func:`flow.compensation.compensate`). Candidates are built from the field itself (predicted and neighbouring
    vectors), so the result keeps ``unit``. Returns float32 vectors.
    """
    mv = np.asarray(mv, np.float32).copy()
    rows, cols = mv.shape[:2]
    h, w = cur.shape[:2]
    target = cur.astype(np.float32)
    if obmc:
        corners = obmc_corners(h, w, rows, cols, block)
    else:
        r, c = np.meshgrid(np.arange(h) // block, np.arange(w) // block, indexing="ij")
        corners = [(r, c, np.ones((h, w), np.float32))]
    for _ in range(passes):
        costs = _BitCosts(mv, unit)
        changed = False
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            turn = np.zeros((rows, cols), bool)
            turn[a::2, b::2] = True
            split = _Split(ref, mv, corners, a, b, interpolation)

            def cost(field: np.ndarray, split: _Split = split, costs: _BitCosts = costs) -> np.ndarray:
                error = _window_sse(_sq_error(split.predict(field), target), block, rows, cols)
                return error + rate_lambda * _tile_sum(costs(field))

            best = cost(mv)
            choice = mv.copy()
            for candidate in [predict(np.round(mv * unit)) / unit, *_neighbours(mv)]:
                field = np.where(turn[..., None], candidate, mv).astype(np.float32)
                moved = turn & (field != mv).any(-1)
                if not moved.any():
                    continue
                cand_cost = cost(field)
                better = moved & (cand_cost < best)
                best[better] = cand_cost[better]
                choice[better] = field[better]
            if (choice != mv).any():
                changed = True
                mv = choice
        if not changed:
            break
    return mv


class _Split:
    """The prediction with the blocks of grid (a, b) free: what the other blocks' vectors give (fixed), plus each
    pixel's weight on the one free block whose window holds it, times the reference sampled at that block's
    vector."""

    def __init__(self, ref: np.ndarray, mv: np.ndarray, corners: list, a: int, b: int, interpolation: str) -> None:
        self.ref, self.interpolation = ref, interpolation
        h, w = corners[0][2].shape
        self.fixed = np.zeros((h, w, ref.shape[2]), np.float32)
        self.share = np.zeros((h, w), np.float32)
        rows, cols = corners[0][0].astype(np.float32), corners[0][1].astype(np.float32)
        for r, c, weight in corners:
            free = (r % 2 == a) & (c % 2 == b)
            self.fixed += (weight * ~free)[..., None] * self._sample(mv, _where(r, c))
            self.share += weight * free
            rows, cols = np.where(free, r, rows), np.where(free, c, cols)
        self.where = _where(rows, cols)
        self.share = self.share[..., None]

    def _sample(self, mv: np.ndarray, where: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        # Gathering the per-pixel vectors as a nearest-neighbour remap of the small field is ~5x numpy indexing.
        field = cv2.remap(np.ascontiguousarray(mv, np.float32), where[0], where[1], cv2.INTER_NEAREST)
        return sample(self.ref, field, self.interpolation).astype(np.float32)

    def predict(self, mv: np.ndarray) -> np.ndarray:
        """(H, W, 3) float prediction with the free blocks at ``mv`` (the others as given at construction)."""
        return self.fixed + self.share * self._sample(mv, self.where)


def _where(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (x, y) that read block (row, col) of a field at every pixel."""
    return np.ascontiguousarray(cols, np.float32), np.ascontiguousarray(rows, np.float32)


def _sq_error(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H, W) squared error summed over channels."""
    diff = cv2.subtract(prediction, target)
    return cv2.transform(cv2.multiply(diff, diff), np.ones((1, diff.shape[2]), np.float32))


def _window_sse(error: np.ndarray, block: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) error summed over each block's OBMC window: one block beyond its centre on every side."""
    half = block // 2
    h, w = error.shape
    padded = cv2.copyMakeBorder(error, half, rows * block + half - h, half, cols * block + half - w,
                                cv2.BORDER_CONSTANT, value=0)
    cells = cv2.resize(padded, (2 * cols + 2, 2 * rows + 2), interpolation=cv2.INTER_AREA).astype(np.float64)
    total = np.zeros((rows, cols))
    for dy in range(4):
        for dx in range(4):
            total += cells[dy : dy + 2 * rows : 2, dx : dx + 2 * cols : 2]
    return total * half * half


def _neighbours(mv: np.ndarray) -> list[np.ndarray]:
    padded = np.pad(mv, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return [padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]]


class _BitCosts:
    """Estimated bits of the vector coder's choices, from one field's frequencies."""

    def __init__(self, mv: np.ndarray, unit: int) -> None:
        self.unit = unit
        q = np.round(mv * unit)
        residual = np.abs(q - predict(q))
        merged = merge_index(q.astype(np.int64)) >= 0
        coded = residual.any(-1)
        sent = residual[coded & ~merged]  # (n, 2) magnitudes of residuals sent
        counts = np.bincount(np.minimum(sent, _TAIL).astype(np.int64).ravel(), minlength=_TAIL + 1) + 0.5
        self.magnitude = -np.log2(counts / counts.sum())
        p_coded = (coded.sum() + 0.5) / (coded.size + 1)
        p_merged = (merged.sum() + 0.5) / (coded.sum() + 1)
        self.uncoded = -np.log2(1 - p_coded)
        self.merged = -np.log2(p_coded) - np.log2(p_merged) + np.log2(MERGES)
        self.residual = -np.log2(p_coded) - np.log2(1 - p_merged)

    def __call__(self, mv: np.ndarray) -> np.ndarray:
        """(rows, cols) estimated bits of each vector of ``mv`` (in the unit of the field it was made from)."""
        q = np.round(mv * self.unit)
        magnitude = np.abs(q - predict(q))
        capped = np.minimum(magnitude, _TAIL).astype(np.int64)
        tail = np.where(magnitude >= _TAIL, 2 * np.log2(np.maximum(magnitude - _TAIL + 1, 1)), 0.0)
        residual = self.residual + (self.magnitude[capped] + tail + (magnitude > 0)).sum(-1)
        merged = merge_index(q.astype(np.int64)) >= 0
        return np.where(merged, self.merged, np.where(magnitude.any(-1), residual, self.uncoded))


def _tile_sum(bits: np.ndarray) -> np.ndarray:
    """For each block, the bits of itself and of the vectors whose prediction or merge reads it (right, lower,
    lower-right): the 2x2 tile it heads."""
    padded = np.pad(bits, ((0, 1), (0, 1)))
    return padded[:-1, :-1] + padded[:-1, 1:] + padded[1:, :-1] + padded[1:, 1:]
