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
neighbours under MED) belong to no other block of the grid. So sampling each distinct candidate vector over its
block's window (:class:`Windows`) scores every block of a grid exactly against its fixed neighbours, and every
accepted change lowers the frame's estimated cost.

Bits are estimated from the field's own statistics (the adaptive coder converges to them): whether a block is
coded at all, merged (a copy of its left, top or top-left neighbour) or sent as a residual, and for a residual
-log2 of each component magnitude's frequency plus a sign bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from flow.compensation import obmc_corners, sample, sample_at
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
    windows = Windows(cur, ref, mv, block, obmc, interpolation)
    for _ in range(passes):
        costs = _BitCosts(mv, unit)
        changed = False
        for a, b in GRIDS:
            if a >= rows or b >= cols:  # a field one block high or wide has no such grid
                continue
            turn = np.zeros((rows, cols), bool)
            turn[a::2, b::2] = True
            fields = [np.where(turn[..., None], candidate, mv).astype(np.float32)
                      for candidate in (mv, predict(np.round(mv * unit)) / unit, *_neighbours(mv))]
            vectors = np.stack([field[a::2, b::2] for field in fields])  # (candidates, grid rows, grid cols, 2)
            bits = np.stack([_tile_sum(costs(field))[a::2, b::2] for field in fields])
            total = windows.sse(a, b, vectors) + rate_lambda * bits
            pick = np.argmin(total, axis=0)  # ties keep the block's vector (candidate 0), else the earlier one
            if pick.any():
                changed = True
                mv[a::2, b::2] = windows.move(a, b, vectors, pick)
        if not changed:
            break
    return mv


GRIDS = ((0, 0), (0, 1), (1, 0), (1, 1))
_REMAP_ROWS = 32767  # cv2.remap's output must be shorter than this (SHRT_MAX)


class Windows:
    """Prediction error of a field, kept on a canvas of every block's window, and scored per candidate vector.

    A block's window is the pixels its vector reaches: one block beyond its centre on every side with OBMC (its own
    block, and its neighbours' halves where it has no share, without). The windows of one grid's blocks (every
    second row and column from (a, b)) tile the canvas, and every pixel in them depends on one block of the grid,
    with that block's ``share`` of the blend, and otherwise on vectors outside the grid. So sampling each candidate
    vector over its block's window alone scores the grid's blocks exactly against their fixed neighbours:
    error = current error + share x (sample at the candidate - sample at the current vector).

    Canvas pixel (Y, X) is frame pixel (Y - block / 2, X - block / 2); pixels outside the frame have no share and
    no error. The error follows each move (:meth:`move`), so the fixed part is never sampled again.
    """

    def __init__(self, cur: np.ndarray, ref: np.ndarray, mv: np.ndarray, block: int, obmc: bool,
                 interpolation: str) -> None:
        self.ref, self.block, self.interpolation = ref, block, interpolation
        rows, cols = mv.shape[:2]
        h, w = cur.shape[:2]
        if obmc:
            corners = obmc_corners(h, w, rows, cols, block)
        else:
            r, c = np.meshgrid(np.arange(h) // block, np.arange(w) // block, indexing="ij")
            corners = [(r, c, np.ones((h, w), np.float32))]
        half = block // 2
        canvas = ((rows + 1) * block, (cols + 1) * block)
        inside = (slice(half, half + h), slice(half, half + w))
        prediction = sum(weight[..., None] * _sample_field(ref, mv, r, c, interpolation) for r, c, weight in corners)
        self.error = np.zeros((*canvas, ref.shape[2]), np.float32)
        self.error[inside] = prediction - cur
        self.share = {}
        for a, b in GRIDS:
            self.share[a, b] = np.zeros((*canvas, 1), np.float32)
            free = [weight * ((r % 2 == a) & (c % 2 == b)) for r, c, weight in corners]
            self.share[a, b][inside] = sum(free)[..., None]
        ty, tx = np.mgrid[: 2 * block, : 2 * block].astype(np.float32) - half
        self.offsets = np.stack([tx, ty], axis=-1)  # (2B, 2B, 2): (x, y) of a window's pixels from its block's corner
        self._scored: tuple | None = None

    def sse(self, a: int, b: int, vectors: np.ndarray) -> np.ndarray:
        """(K, rows, cols) squared prediction error summed over the window of each block of grid (a, b) when it
        takes ``vectors`` (K, rows, cols, 2) float32, multiples of 1/4 (``vectors[0]``: the current ones)."""
        k, rows, cols = vectors.shape[:3]
        keys = np.round(vectors * 4).astype(np.int64).reshape(k, rows * cols, 2)
        owners = np.broadcast_to(np.arange(rows * cols)[None, :, None], (k, rows * cols, 1))
        pairs, inverse = np.unique(np.concatenate([owners, keys], -1).reshape(-1, 3), axis=0, return_inverse=True)
        inverse = inverse.reshape(k, rows * cols)
        owner = pairs[:, 0]
        samples = self._sample(a + 2 * (owner // cols), b + 2 * (owner % cols), pairs[:, 1:] / 4)
        current = samples[inverse[0]]  # (rows * cols, 2B, 2B, C)
        error = self._tiles(self.error, a, b)[owner // cols, owner % cols]
        share = self._tiles(self.share[a, b], a, b)[owner // cols, owner % cols]
        diff = error + share * (samples - current[owner])
        sse = np.einsum("pyxc,pyxc->p", diff, diff, dtype=np.float64)
        self._scored = (a, b, vectors.shape, inverse, samples, current)
        return sse[inverse].reshape(k, rows, cols)

    def move(self, a: int, b: int, vectors: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """Grid (a, b)'s blocks take candidate ``pick`` (rows, cols) of the ``vectors`` just scored by :meth:`sse`;
        their windows' error follows. Returns the (rows, cols, 2) vectors taken."""
        if self._scored is None or self._scored[:3] != (a, b, vectors.shape):
            raise ValueError("Windows.move: these vectors were not the last ones scored")
        *_, inverse, samples, current = self._scored
        cols = vectors.shape[2]
        moved = np.flatnonzero(pick)
        taken = samples[inverse[pick.reshape(-1)[moved], moved]]
        at = moved // cols, moved % cols
        share = self._tiles(self.share[a, b], a, b)[at]
        self._tiles(self.error, a, b)[at] += share * (taken - current[moved])
        self._scored = None
        return np.take_along_axis(vectors, pick[None, ..., None], axis=0)[0]

    def _tiles(self, canvas: np.ndarray, a: int, b: int) -> np.ndarray:
        """(grid rows, grid cols, 2B, 2B, C) view of ``canvas`` cut into the windows of grid (a, b)'s blocks."""
        size = 2 * self.block
        rows, cols = (canvas.shape[0] // self.block - a) // 2, (canvas.shape[1] // self.block - b) // 2
        part = canvas[a * self.block : a * self.block + rows * size, b * self.block : b * self.block + cols * size]
        return part.reshape(rows, size, cols, size, -1).swapaxes(1, 2)

    def _sample(self, rows: np.ndarray, cols: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """(N, 2B, 2B, C) float32: the reference over the windows of blocks (rows, cols) (N,), each moved by its
        vector (N, 2), sampled as the compensation samples the whole frame (cv2.remap works pixel by pixel)."""
        size = 2 * self.block
        maps = self.offsets + (np.stack([cols, rows], -1) * self.block + vectors).astype(np.float32)[:, None, None]
        chunk = _REMAP_ROWS // size  # windows stacked in one column per cv2.remap call
        out = [sample_at(self.ref, maps[i : i + chunk].reshape(-1, size, 2), self.interpolation)
               for i in range(0, len(maps), chunk)]
        return np.concatenate(out).reshape(len(maps), size, size, -1).astype(np.float32)


def _sample_field(ref: np.ndarray, mv: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  interpolation: str) -> np.ndarray:
    """(H, W, C) float32: ``ref`` sampled at every pixel moved by the vector of block (rows, cols) (H, W) of ``mv``."""
    # Gathering the per-pixel vectors as a nearest-neighbour remap of the small field is ~5x numpy indexing.
    where = np.ascontiguousarray(cols, np.float32), np.ascontiguousarray(rows, np.float32)
    field = cv2.remap(np.ascontiguousarray(mv, np.float32), *where, cv2.INTER_NEAREST)
    return sample(ref, field, interpolation).astype(np.float32)


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
