"""The motion object the video coder calls: estimate, compensate, encode, decode block vectors.

Built from ``conf/motion/block.yaml`` with ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from flow.block_matching import BLOCK_SIZES, estimate_block_motion, grid_shape
from flow.compensation import compensate, interpolation_flag
from flow.refine import refine_vectors
from flow.vector_coding import QPEL, decode_vectors, encode_vectors, field_unit, predict, stream_block


class BlockMotion:
    """Block-matching motion with backward vectors (block at x predicted from the reference at x + mv).

    block: 8, 16 or 32 px; search: range in px (+-); obmc: overlapped-block compensation;
    subpel: quarter-pel refinement (else integer vectors); decimate: row decimation of full-resolution
    matching costs (1 = all rows); lam: rate penalty per px of distance from the vector the coder predicts
    (mean absolute luma difference units; 0 = pure matching). A coder's rate-distortion lambda (squared RGB
    error per bit) replaces ``lam`` by sqrt(lambda / 3) * ``bits_per_px`` / block**2: HM's lambda_SAD =
    sqrt(lambda_SSE), times the bits a pixel of vector difference costs, per pixel of the block's mean cost
    (``bits_per_px`` 0: keep ``lam``). ``regularise``: passes of the final smoothing where matching cannot tell
    vectors apart (0: none).

    ``alternatives``: other (block, subpel) settings tried per frame when the coder gives a lambda. Each coarser
    field also offers its vectors region by region: a base-size field in which every coarse block either keeps
    its base-size vectors or takes the coarse block's one vector (a quadtree split decision by prediction
    error + lambda x estimated bits, made on the base grid, so the decoder needs nothing new). Of all these
    fields the one with the least prediction error + lambda x vector bits is sent (coarse fields win at low
    rates, where vectors would cost more than they buy). The vector stream records its block size, and the
    coarsest precision that holds its vectors, so the decoder needs no setting from the encoder.

    ``refine``: passes of the per-block rate-distortion refinement (:mod:`flow.refine`) of the field sent, when
    the coder gives a lambda: each block may take its predicted vector or a neighbour's where that lowers
    prediction SSE + lambda x vector bits (0: off).

    ``interpolation``: the sub-pel kernel of compensation and of the full-resolution search steps, "linear" or
    "cubic" (``flow.compensation.INTERPOLATIONS``); the stream records it.

    ``reduced_sharpen``: {factor: s} for decoding at 1 / factor size (:meth:`compensate`). Sampling a reduced
    reference with the sub-pel kernel blurs more than the coder's full-size sampling did, and no residual corrects
    it, so the blur compounds over a GOP; moving the kernel ``s`` of the way to Lanczos-4 matches the coder's. Tuned
    on a training sequence (codec/README.md); it changes no bits and no full-size frame.
    """

    def __init__(self, block: int = 16, search: int = 64, obmc: bool = True, subpel: bool = True,
                 decimate: int = 2, lam: float = 0.02, bits_per_px: float = 2.0, regularise: int = 3,
                 alternatives: Sequence[Sequence] = (), reduced_sharpen: Mapping[int, float] | None = None,
                 interpolation: str = "linear", refine: int = 0) -> None:
        self.modes = [(int(block), bool(subpel)), *((int(b), bool(s)) for b, s in alternatives)]
        for size, _ in self.modes:
            if size not in BLOCK_SIZES:
                raise ValueError(f"motion block size {size} is not supported; expected one of {BLOCK_SIZES}")
        self.block, self.search, self.obmc, self.subpel, self.decimate = block, search, obmc, subpel, decimate
        self.lam, self.bits_per_px, self.regularise = lam, bits_per_px, regularise
        self.reduced_sharpen = {int(k): float(v) for k, v in (reduced_sharpen or {}).items()}
        interpolation_flag(interpolation)  # a clear error now rather than at the first frame
        self.interpolation = interpolation
        if refine < 0:
            raise ValueError(f"motion.refine must be >= 0 (passes), got {refine}")
        self.refine = int(refine)

    def grid_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, cols) of the base block size's vector field for a frame of shape (H, W, ...)."""
        return grid_shape(frame_shape, self.block)

    def estimate(self, cur: np.ndarray, ref: np.ndarray, previous: np.ndarray | None = None,
                 rate_lambda: float | None = None) -> np.ndarray:
        """uint8 (H, W, 3) current and reference frames -> (ceil(H/B), ceil(W/B), 2) float32 vectors (px).

        Without ``rate_lambda`` the base block size and precision are used; with it, every mode is tried.
        """
        modes = self.modes if rate_lambda is not None else self.modes[:1]
        modes = [m for m in modes if m == self.modes[0] or self._unambiguous(m[0], cur.shape)]
        fields = []
        for block, subpel in modes:
            lam = self.lam
            if rate_lambda is not None and self.bits_per_px > 0:
                lam = math.sqrt(rate_lambda / 3) * self.bits_per_px / block**2
            hint = previous if previous is not None and np.shape(previous)[:2] == grid_shape(cur.shape, block) else None
            fields.append((estimate_block_motion(cur, ref, block, self.search, hint, subpel, self.decimate, lam,
                                                 self.regularise, self.interpolation), block))
        if len(fields) == 1:
            return self._refined(cur, ref, *fields[0], rate_lambda)
        base = fields[0][0]
        base_error = self._block_errors(cur, ref, base)
        merged = [(self._split_or_merge(cur, ref, base, base_error, mv, block, rate_lambda), self.block)
                  for mv, block in fields[1:] if block > self.block]
        best, best_block, best_cost = None, self.block, math.inf
        for i, (mv, block) in enumerate(fields + merged):
            # The base field's prediction error is known already; the others are compensated once here.
            sse = float(base_error.sum()) if i == 0 else float(
                np.square(self._predict(ref, mv, block).astype(np.float64) - cur).sum())
            cost = sse + rate_lambda * 8 * len(encode_vectors(mv, block))
            if cost < best_cost:
                best, best_block, best_cost = mv, block, cost
        return self._refined(cur, ref, best, best_block, rate_lambda)

    def _refined(self, cur: np.ndarray, ref: np.ndarray, mv: np.ndarray, block: int,
                 rate_lambda: float | None) -> np.ndarray:
        """``mv`` after ``refine`` passes of the per-block rate-distortion refinement (with a coder's lambda)."""
        if not self.refine or rate_lambda is None:
            return mv
        return refine_vectors(cur, ref, mv, block, rate_lambda, field_unit(mv), self.obmc, self.interpolation,
                              self.refine)

    def _block_errors(self, cur: np.ndarray, ref: np.ndarray, mv: np.ndarray) -> np.ndarray:
        """Squared prediction error of a base-grid field summed per base block, (rows, cols) float64."""
        error = np.square(self._predict(ref, mv, self.block).astype(np.float64) - cur).sum(axis=-1)
        rows, cols = mv.shape[:2]
        padded = np.pad(error, ((0, rows * self.block - error.shape[0]), (0, cols * self.block - error.shape[1])))
        return padded.reshape(rows, self.block, cols, self.block).sum(axis=(1, 3))

    def _split_or_merge(self, cur: np.ndarray, ref: np.ndarray, base: np.ndarray, base_error: np.ndarray,
                        coarse: np.ndarray, block: int, rate_lambda: float) -> np.ndarray:
        """A base-grid field: each coarse block keeps the base vectors under it or takes its own one vector,
        whichever costs less in prediction error + lambda x estimated vector bits (a quadtree decision)."""
        k = block // self.block
        rows, cols = base.shape[:2]
        merged = np.repeat(np.repeat(coarse, k, axis=0), k, axis=1)[:rows, :cols]
        merged_error = self._block_errors(cur, ref, merged)
        # Bits of a base-size vector ~ its distance from the predicted one; a merged region sends one.
        split_bits = _vector_bits_estimate(base)
        merged_bits = np.zeros_like(split_bits)
        merged_bits[::k, ::k] = _vector_bits_estimate(coarse)[: merged_bits[::k, ::k].shape[0],
                                                              : merged_bits[::k, ::k].shape[1]]

        def per_region(values: np.ndarray) -> np.ndarray:
            padded = np.pad(values, ((0, -rows % k), (0, -cols % k)))
            return padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).sum(axis=(1, 3))

        split = per_region(base_error) + rate_lambda * per_region(split_bits)
        merge = per_region(merged_error) + rate_lambda * per_region(merged_bits)
        take = np.repeat(np.repeat(merge < split, k, axis=0), k, axis=1)[:rows, :cols]
        return np.where(take[..., None], merged, base).astype(np.float32)

    def compensate(self, ref: np.ndarray, mv: np.ndarray, factor: int = 1) -> np.ndarray:
        """uint8 (H, W, 3) reference + vectors -> uint8 (H, W, 3) prediction of the current frame.

        ``factor`` > 1: ``ref`` is a reference decoded at 1 / factor of the coded size (ceil(H / f), ceil(W / f))
        and the coded size's vectors and blocks are scaled down to it; sampling is sharpened by
        ``reduced_sharpen[factor]`` (see the class).
        """
        block = self._block_of(mv, ref.shape, factor)
        sharpen = self.reduced_sharpen.get(factor, 0.0) if factor > 1 else 0.0
        return compensate(ref, np.asarray(mv, np.float32) / factor, block // factor, self.obmc, sharpen,
                          self.interpolation)

    def _predict(self, ref: np.ndarray, mv: np.ndarray, block: int) -> np.ndarray:
        """Full-size prediction from a field of ``block``-sized blocks (the encoder's comparisons)."""
        return compensate(ref, mv, block, self.obmc, interpolation=self.interpolation)

    def encode(self, mv: np.ndarray, frame_shape: tuple[int, ...] | None = None) -> bytes:
        """Vector field of a frame of ``frame_shape`` (default: a base-block field) -> bytes (exact round trip)."""
        block = self.block if frame_shape is None else self._block_of(mv, frame_shape)
        return encode_vectors(mv, block)

    def decode(self, data: bytes, frame_shape: tuple[int, ...]) -> np.ndarray:
        """bytes -> vector field for a frame of shape (H, W, ...); raises ValueError on a mismatch."""
        block = stream_block(data)
        if block not in BLOCK_SIZES:
            raise ValueError(f"motion-vector stream has block size {block}; expected one of {BLOCK_SIZES}")
        return decode_vectors(data, grid_shape(frame_shape, block), block)

    def _block_of(self, mv: np.ndarray, frame_shape: tuple[int, ...], factor: int = 1) -> int:
        """The block size whose grid ``mv`` is for this frame (the base size when several fit); with ``factor``,
        for a frame at 1 / factor of the coded size, where blocks are 1 / factor as large."""
        sizes = [b for b in (self.block, *BLOCK_SIZES)
                 if b % factor == 0 and grid_shape(frame_shape, b // factor) == np.shape(mv)[:2]]
        if not sizes:
            raise ValueError(f"motion vectors have shape {np.shape(mv)}, which fits no block size in {BLOCK_SIZES} "
                             f"for a {frame_shape[1]}x{frame_shape[0]} frame"
                             + (f" at 1/{factor} size" if factor > 1 else ""))
        return sizes[0]

    def _unambiguous(self, block: int, frame_shape: tuple[int, ...]) -> bool:
        """A block size the decoder can tell from the base one by its grid alone."""
        return grid_shape(frame_shape, block) != grid_shape(frame_shape, self.block)

    def __repr__(self) -> str:
        return (f"BlockMotion(block={self.block}, search={self.search}, obmc={self.obmc}, subpel={self.subpel}, "
                f"decimate={self.decimate}, lam={self.lam}, bits_per_px={self.bits_per_px}, "
                f"regularise={self.regularise}, alternatives={self.modes[1:]}, interpolation={self.interpolation!r})")


def _vector_bits_estimate(mv: np.ndarray) -> np.ndarray:
    """(rows, cols) rough bits of each vector under the vector coder: about a third of a bit per component that
    equals its prediction, else 2.5 + 2 log2 of the quarter-pel difference (unary prefix and sign)."""
    residual = np.abs(np.round((mv - predict(mv)) * QPEL))
    return np.where(residual == 0, 0.3, 2.5 + 2 * np.log2(np.maximum(residual, 1))).sum(axis=-1)
