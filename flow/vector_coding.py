"""Motion-vector field <-> bytes: median prediction plus Laplace entropy coding (constriction ANS).

Vectors are coded in quarter-pel integers. Each is predicted by the median of its left, top and
top-right neighbours (H.264 style, already-decoded vectors only; the first row from its left
neighbour); the prediction residuals of each component are coded with a quantized Laplace model
whose scale is fitted per frame and stored in the header. The model is deterministic (same parameters
on both sides), so the round trip is exact.

Layout: magic ``DCMV``, version (u8), block (u8), rows, cols (u16), residual bound (u16), the two Laplace
scales (float32), then the ANS words (u32, little-endian).
"""

from __future__ import annotations

import struct

import constriction
import numpy as np

MAGIC = b"DCMV"
VERSION = 1
_HEADER = struct.Struct("<4sBBHHHff")
QPEL = 4  # vectors are stored in units of 1/QPEL pixel


def _predictors(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left, top and top-right neighbours of every vector with the frame-edge rules below (vectorised)."""
    # Missing neighbours: the left of the first column is its top, the top-right of the last column is
    # its top, so the median falls back to the top vector there; the first row is predicted from the
    # left alone (see _prediction).
    top = np.concatenate([q[:1] * 0, q[:-1]], axis=0)
    top_right = np.concatenate([top[:, 1:], top[:, -1:]], axis=1)
    left = np.concatenate([top[:, :1], q[:, :-1]], axis=1)
    return left, top, top_right


def _prediction(q: np.ndarray) -> np.ndarray:
    """Median of left, top and top-right (H.264 style); the first row uses its left neighbour (0 at start)."""
    left, top, top_right = _predictors(q)
    pred = np.median(np.stack([left, top, top_right]), axis=0).astype(np.int64)
    pred[0, 0] = 0
    pred[0, 1:] = q[0, :-1]
    return pred


def _undo_prediction(residuals: np.ndarray) -> np.ndarray:
    """Inverse of ``residuals = q - _prediction(q)``: sequential within a row (the left neighbour)."""
    rows, cols = residuals.shape[:2]
    q = np.empty_like(residuals)
    q[0] = np.cumsum(residuals[0], axis=0)
    for y in range(1, rows):
        top = q[y - 1]
        top_right = np.concatenate([top[1:], top[-1:]])
        lo, hi = np.minimum(top, top_right), np.maximum(top, top_right)
        res = residuals[y]
        left = top[0]
        for x in range(cols):
            # median(left, top, top_right) = left clamped into [min, max] of the other two
            left = np.minimum(np.maximum(left, lo[x]), hi[x]) + res[x]
            q[y, x] = left
    return q


def encode_vectors(mv: np.ndarray, block: int) -> bytes:
    """(rows, cols, 2) float32 vectors in pixels (multiples of 1/4) -> bytes."""
    mv = np.asarray(mv)
    if mv.ndim != 3 or mv.shape[2] != 2 or not 0 < mv.shape[0] < 65536 or not 0 < mv.shape[1] < 65536:
        raise ValueError(f"motion vectors: expected a (rows, cols, 2) field, got shape {mv.shape}")
    if not np.isfinite(mv).all():
        raise ValueError("motion vectors contain NaN or infinite values")
    q = np.round(mv.astype(np.float64) * QPEL)
    if np.abs(q - mv * QPEL).max() > 1e-3:
        raise ValueError("motion vectors must be multiples of 1/4 pixel (quarter-pel)")
    q = q.astype(np.int64)
    res = q - _prediction(q)
    bound = max(int(np.abs(res).max()), 1)  # the model's support needs at least two symbols
    if bound >= 65536:
        raise ValueError(f"motion vector residual {bound} quarter-pels is too large to code")
    # Maximum-likelihood Laplace scale (mean absolute residual), floored so the model stays proper.
    scales = [float(np.float32(max(np.abs(res[..., c]).mean(), 0.05))) for c in range(2)]
    coder = constriction.stream.stack.AnsCoder()
    for c in (1, 0):  # a stack: encode in reverse so the decoder reads component 0 first
        model = constriction.stream.model.QuantizedLaplace(-bound, bound, 0.0, scales[c])
        coder.encode_reverse(res[..., c].ravel().astype(np.int32), model)
    header = _HEADER.pack(MAGIC, VERSION, block, mv.shape[0], mv.shape[1], bound, *scales)
    return header + coder.get_compressed().astype("<u4").tobytes()


def decode_vectors(data: bytes, shape: tuple[int, int] | None = None, block: int | None = None) -> np.ndarray:
    """bytes -> (rows, cols, 2) float32 vectors in pixels; checks ``shape``/``block`` when given."""
    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise ValueError(f"not a motion-vector stream: expected magic {MAGIC!r}, got {bytes(data[:4])!r}")
    magic, version, blk, rows, cols, bound, sx, sy = _HEADER.unpack_from(data)
    if version != VERSION:
        raise ValueError(f"motion-vector stream version {version} is not supported (expected {VERSION})")
    if shape is not None and (rows, cols) != tuple(shape):
        raise ValueError(f"motion-vector stream holds a {rows}x{cols} block grid, expected {tuple(shape)}")
    if block is not None and blk != block:
        raise ValueError(f"motion-vector stream was coded with block {blk}, expected {block}")
    if (len(data) - _HEADER.size) % 4:
        raise ValueError("motion-vector stream is truncated (payload is not whole 32-bit words)")
    words = np.frombuffer(data, dtype="<u4", offset=_HEADER.size).astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    res = np.empty((rows, cols, 2), np.int64)
    for c, scale in enumerate((sx, sy)):
        model = constriction.stream.model.QuantizedLaplace(-bound, bound, 0.0, scale)
        res[..., c] = coder.decode(model, rows * cols).reshape(rows, cols)
    if not coder.is_empty():
        raise ValueError("motion-vector stream has trailing data: corrupt or not a vector stream")
    return (_undo_prediction(res) / QPEL).astype(np.float32)


def vector_bits(data: bytes) -> int:
    """Size of a coded field in bits (header included): the motion side information of one frame."""
    return 8 * len(data)
