"""Hierarchical block-matching motion estimation on luma, vectorised over all blocks.

OpenCV 5 has no block-motion API, so the search is built from cv2 primitives: every candidate vector
field (one vector per block) is scored for all blocks at once by one ``cv2.remap`` of the reference,
``cv2.absdiff`` and a block sum (``cv2.resize`` INTER_AREA). Steps, on a luma pyramid whose block grid
is the same at every level (block B at level 0 is B / 2^l pixels at level l):

1. coarsest level: exhaustive search over the whole range (+-search / 2^L), scored over a window of at
   least 4x4 coarse pixels so tiny coarse blocks still match reliably;
2. each finer level above full resolution: predictor candidates (the vector from the coarser level, its
   four neighbours, the vector coder's prediction, zero, the previous frame's field), then a +-1 pixel square search; at
   level 1 also a +-1/2 pixel search, which is the integer step of level 0 at a quarter of the cost;
3. level 0: half-pel square, then quarter-pel cross search (with the compensation's sub-pel kernel,
   ``interpolation``), scored on every second pixel row (see ``decimate``).

With ``lam`` > 0 candidates compete on matching cost + lam * distance to the vector the coder predicts
(``flow.vector_coding.predict``: what it pays for), and the coarse field gets two neighbourhood passes, so flat regions
follow their neighbours instead of noise.

Vectors are *backward*: the block at (x, y) of the current frame is predicted from the reference at
(x + mv_x, y + mv_y). With cur = frame t and ref = frame t+1 they are the forward flow t -> t+1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from flow.compensation import interpolation_flag
from flow.luma import check_pair, to_luma
from flow.vector_coding import predict

BLOCK_SIZES = (8, 16, 32)
MAX_COARSE_RANGE = 8  # exhaustive range at the coarsest level, in coarse pixels
_SQUARE = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)]
_CROSS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def grid_shape(frame_shape: tuple[int, ...], block: int) -> tuple[int, int]:
    """Blocks (rows, cols) covering a frame of shape (H, W, ...); partial blocks count (padding)."""
    return math.ceil(frame_shape[0] / block), math.ceil(frame_shape[1] / block)


def pyramid_levels(block: int, search: int) -> int:
    """Levels above full resolution: until the coarse range fits MAX_COARSE_RANGE or blocks reach 2 px."""
    levels = 0
    while levels < 3 and search / 2**levels > MAX_COARSE_RANGE and block // 2 ** (levels + 1) >= 2:
        levels += 1
    return levels


class _Level:
    """One pyramid level: float32 luma of both frames, block size and the identity sampling grid.

    With ``rows`` > 1 the cost is taken on every ``rows``-th pixel row of each block only (pixel
    decimation, Liu & Zaccarin 1993): the reference is still sampled at full resolution, so sub-pel
    positions stay exact, but each candidate costs ``rows`` times less.
    """

    def __init__(self, cur: np.ndarray, ref: np.ndarray, block: int, nby: int, nbx: int, rows: int = 1,
                 interpolation: int = cv2.INTER_LINEAR) -> None:
        self.cur, self.ref, self.block, self.nby, self.nbx = np.ascontiguousarray(cur[::rows]), ref, block, nby, nbx
        self.rows, self.interpolation = rows, interpolation
        self.window = max(block, 4)
        h, w = cur.shape
        self.grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(0, h, rows, dtype=np.float32)))

    def block_mean(self, diff: np.ndarray) -> np.ndarray:
        """(h, w) absolute differences -> (nby, nbx) mean over each block's window."""
        if self.window == self.block:
            return cv2.resize(diff, (self.nbx, self.nby), interpolation=cv2.INTER_AREA)
        # An even box of size k covers x - k/2 .. x + k/2 - 1: sampled at the block's second pixel it is
        # centred on the block.
        assert self.rows == 1, "windows wider than the block are only used undecimated"
        box = cv2.boxFilter(diff, -1, (self.window, self.window), borderType=cv2.BORDER_REPLICATE)
        c = self.block // 2
        return box[c :: self.block, c :: self.block][: self.nby, : self.nbx]

    def positions(self, vectors: np.ndarray) -> np.ndarray:
        """(nby, nbx, 2) block vectors -> (h, w, 2) sampling positions x + v(block of x)."""
        h, w = self.cur.shape
        up = cv2.resize(vectors, (w, h), interpolation=cv2.INTER_NEAREST)  # exact block replication
        return cv2.add(self.grid, up)

    def cost_at(self, positions: np.ndarray) -> np.ndarray:
        warped = cv2.remap(self.ref, positions, None, self.interpolation, borderMode=cv2.BORDER_REPLICATE)
        return self.block_mean(cv2.absdiff(self.cur, warped))


def _full_search(level: _Level, radius: int, lam: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive integer search over +-radius; shifts of a padded reference replace the remap.

    Candidates compete on cost + lam * |d|_1 (lam per level pixel), a bias towards short vectors where
    the matching cost cannot decide (flat or noisy blocks). Returns (vectors, their matching cost).
    """
    h, w = level.cur.shape
    padded = cv2.copyMakeBorder(level.ref, radius, radius, radius, radius, cv2.BORDER_REPLICATE)
    best_cost = np.full((level.nby, level.nbx), np.inf, np.float32)
    best_total = best_cost.copy()
    best = np.zeros((level.nby, level.nbx, 2), np.float32)
    # Visit displacements by growing length so that ties keep the shortest vector.
    offsets = sorted(((dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)),
                     key=lambda d: (d[0] ** 2 + d[1] ** 2, d))
    for dx, dy in offsets:
        shifted = padded[radius + dy : radius + dy + h * level.rows : level.rows, radius + dx : radius + dx + w]
        cost = level.block_mean(cv2.absdiff(level.cur, shifted))
        total = cost + lam * (abs(dx) + abs(dy))
        better = total < best_total
        best_total[better] = total[better]
        best_cost[better] = cost[better]
        best[better] = (dx, dy)
    return best, best_cost


class _Best:
    """Per-block best vector and its matching cost; candidates compete on cost + rate penalty.

    The penalty, ``lam`` * L1 distance to the coder's prediction (in level pixels), stands in for the bits
    the vector coder spends on the prediction residual, so noise-level cost differences in flat areas do
    not buy expensive vectors.
    """

    def __init__(self, vectors: np.ndarray, cost: np.ndarray) -> None:
        self.vectors, self.cost = vectors, cost

    def search(self, level: _Level, candidates: Iterable[tuple[np.ndarray, np.ndarray]], limit: float,
               lam: float) -> None:
        """candidates: (vector field, its cost) pairs, scored against one predictor taken before the step."""
        pred = predict(self.vectors) if lam else None
        own = self.cost + (lam * np.abs(self.vectors - pred).sum(-1) if lam else 0)
        for candidate, cost in candidates:
            total = cost + (lam * np.abs(candidate - pred).sum(-1) if lam else 0)
            better = (total < own) & (np.abs(candidate) <= limit).all(axis=2)
            own[better] = total[better]
            self.cost[better] = cost[better]
            self.vectors[better] = candidate[better]


def _fields(level: _Level, fields: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (field, cost) for whole candidate fields, one remap each."""
    for field in fields:
        yield field, level.cost_at(level.positions(field))


def _pattern(level: _Level, centre: np.ndarray, step: float,
             points: list[tuple[int, int]] = _SQUARE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (field, cost) for the square (or cross) of +-step around ``centre`` (all blocks at once)."""
    base = level.positions(centre)
    for dx, dy in points:
        # cv2.add with a scalar is ~5x faster than numpy broadcasting over the trailing axis of 2
        cost = level.cost_at(cv2.add(base, (dx * step, dy * step, 0.0, 0.0)))
        yield centre + np.float32([dx * step, dy * step]), cost


def _neighbours(field: np.ndarray) -> list[np.ndarray]:
    """The field shifted by one block left, right, up and down (edges replicated): spatial predictors."""
    padded = np.pad(field, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return [padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]]


def _regularise(level: _Level, best: _Best, lam: float, passes: int = 3) -> None:
    """Smooth the field where matching cannot tell vectors apart, so the vector coder's residuals vanish.

    Each block may take a neighbour's vector; a field's cost is matching cost + lam * half the L1 distance to
    the four neighbours (a predicted vector costs nothing where the field is locally constant).
    The two checkerboard halves take turns, each against the other's current vectors (iterated conditional
    modes), so every pass lowers the total cost.
    """
    nby, nbx = best.vectors.shape[:2]
    half = (np.add.outer(np.arange(nby), np.arange(nbx)) % 2)[..., None]

    def smoothness(field: np.ndarray, around: list[np.ndarray]) -> np.ndarray:
        return lam / 2 * sum(np.abs(field - n).sum(-1) for n in around)

    for _ in range(passes):
        for turn in (0, 1):
            around = _neighbours(best.vectors)
            own = best.cost + smoothness(best.vectors, around)
            for candidate in around:
                cost = level.cost_at(level.positions(candidate))
                total = cost + smoothness(candidate, around)
                better = (total < own) & (half[..., 0] == turn)
                own[better] = total[better]
                best.cost[better] = cost[better]
                best.vectors[better] = candidate[better]


def estimate_block_motion(cur: np.ndarray, ref: np.ndarray, block: int = 16, search: int = 64,
                          previous: np.ndarray | None = None, subpel: bool = True, decimate: int = 2,
                          lam: float = 0.0, regularise: int = 3, interpolation: str = "linear") -> np.ndarray:
    """Backward motion vectors of ``cur`` against ``ref``.

    cur, ref: uint8 (H, W, 3) RGB or (H, W) luma of the same size; sizes that are not a multiple of
    ``block`` are edge-padded internally. previous: optional (H/B, W/B, 2) field of the previous frame,
    used as a predictor candidate. decimate: full-resolution costs use every ``decimate``-th row (1: all
    rows; 2 halves the time at level 0, where most of it is spent). Returns (ceil(H/B), ceil(W/B), 2)
    float32 vectors (dx, dy) in pixels, multiples of 0.25 (quarter-pel) when ``subpel`` else integers,
    each component within +-search. lam: rate penalty, in mean absolute luma difference per pixel of
    L1 distance from the vector the coder predicts (full-resolution px); 0 = pure matching cost.
    regularise: passes of the final smoothing (with ``lam`` > 0) that lets a block take a neighbour's vector
    where matching cannot tell them apart (0: none). interpolation: the compensation's sub-pel kernel
    ("linear" or "cubic"), used by the full-resolution steps (coarser levels sample bilinearly).
    """
    if block not in BLOCK_SIZES:
        raise ValueError(f"block size {block} is not supported; expected one of {BLOCK_SIZES}")
    if decimate not in (1, 2, 4) or decimate > block // 4:
        raise ValueError(f"decimate={decimate}: expected 1, 2 or 4 and at most block/4 = {block // 4}")
    if not 1 <= search <= 256:
        raise ValueError(f"search range {search} must be between 1 and 256 pixels")
    check_pair(cur, ref, ("current frame", "reference frame"))
    nby, nbx = grid_shape(cur.shape, block)
    if previous is not None and np.shape(previous) != (nby, nbx, 2):
        raise ValueError(f"previous vector field has shape {np.shape(previous)}, expected {(nby, nbx, 2)} "
                         f"for a {cur.shape[1]}x{cur.shape[0]} frame and block {block}")
    pad_h, pad_w = nby * block - cur.shape[0], nbx * block - cur.shape[1]
    lumas = [cv2.copyMakeBorder(to_luma(f, name), 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE).astype(np.float32)
             for f, name in ((cur, "current frame"), (ref, "reference frame"))]
    n_levels = pyramid_levels(block, search)
    pyramid = [lumas]
    for _ in range(n_levels):
        pyramid.append([cv2.pyrDown(img) for img in pyramid[-1]])
    full_resolution = interpolation_flag(interpolation)
    levels = [_Level(c, r, block >> lv, nby, nbx, rows=decimate if lv == 0 else 1,
                     interpolation=full_resolution if lv == 0 else cv2.INTER_LINEAR)
              for lv, (c, r) in enumerate(pyramid)]

    coarse = levels[n_levels]
    best = _Best(*_full_search(coarse, min(MAX_COARSE_RANGE, math.ceil(search / 2**n_levels)), lam * 2**n_levels))
    if lam:
        # The exhaustive search picks arbitrary vectors where the texture is flat; let the neighbourhood
        # (the coder's prediction and neighbours, rate-penalised) take those blocks over. Cheap at this size.
        for _ in range(2):
            candidates = [predict(best.vectors), *_neighbours(best.vectors)]
            best.search(coarse, _fields(coarse, candidates), search / 2.0**n_levels, lam * 2**n_levels)
    if n_levels == 1:
        best.search(coarse, _pattern(coarse, best.vectors.copy(), 0.5), search / 2.0, lam * 2)
    for lv in range(n_levels - 1, -1, -1):
        level, scale, limit = levels[lv], 2.0**lv, search / 2.0**lv
        start = best.vectors * 2
        best = _Best(start.copy(), level.cost_at(level.positions(start)))
        if lv > 0:  # predictors are cheap at coarse levels and catch what the coarser search missed
            candidates = [*_neighbours(start), np.zeros_like(start), predict(start)]
            if previous is not None:
                candidates.append(np.round(np.asarray(previous, np.float32) / scale))
            best.search(level, _fields(level, candidates), limit, lam * scale)
            best.search(level, _pattern(level, best.vectors.copy(), 1.0), limit, lam * scale)
        if lv == 1:
            # Half-pel at level 1 is the integer step of level 0 at a quarter of the cost.
            best.search(level, _pattern(level, best.vectors.copy(), 0.5), limit, lam * scale)
    if n_levels == 0:
        if previous is not None:
            best.search(levels[0], _fields(levels[0], [np.round(np.asarray(previous, np.float32))]), search, lam)
        best.search(levels[0], _pattern(levels[0], best.vectors.copy(), 1.0), search, lam)
    if lam:
        best.search(levels[0], _fields(levels[0], [predict(best.vectors)]), search, lam)
    if subpel:
        best.search(levels[0], _pattern(levels[0], best.vectors.copy(), 0.5), search, lam)
        # A quarter-pel cross loses 0.005 dB against the square on Cityscapes for 4 fewer remaps.
        best.search(levels[0], _pattern(levels[0], best.vectors.copy(), 0.25, _CROSS), search, lam)
    if lam and regularise:
        _regularise(levels[0], best, lam, regularise)
    return np.clip(np.round(best.vectors * 4) / 4, -search, search).astype(np.float32)
