"""Motion-vector field <-> bytes: MED prediction, merges and context-adaptive binary range coding (constriction).

Vectors are coded as integers in the coarsest unit that holds them all exactly (1, 1/2 or 1/4 px, in the
header), so an integer-pel field costs no bits for fractions it does not have. Each is predicted from its
left, top and top-left neighbours (already-decoded vectors only) by JPEG-LS's median edge detector (MED,
:func:`med`): the smaller or larger of left and top where the top-left suggests an edge between them, else the
plane through all three (left + top - top-left). The plane is what makes it fit driving video: forward motion
is a zoom, whose vectors grow linearly across the frame, and a plane predicts that exactly where H.264's
median of left, top and top-right is off by the gradient (on Cityscapes the median cost 4-7 % more bits for
the same fields). The first row is predicted from its left neighbour, the first column from its top.

Per block the stream says whether the vector differs from its prediction ("coded"); a coded block away from the
first row and column may instead copy its left, top or top-left neighbour (a merge, as in HEVC: at a moving object's
edge the vector is often a neighbour's but far from the plane, and a merge index costs a few bits where the residual
costs 10-15). Otherwise the prediction residual is binarised as in H.264's CABAC: per component a unary magnitude
prefix of up to ``UNARY`` bins, each with adaptive probabilities; magnitudes of ``UNARY`` and more add an Exp-Golomb
suffix (order ``EG_ORDER``, its prefix bins adaptive too); then the signs, adaptive too. A bin's context is the
component, its index, the residual magnitudes of the three blocks above (small / medium / large, none) and, for the
vertical component, whether the horizontal one is zero; a sign's, the sign of the block above's residual. The coded
and merge flags take theirs from how many of the three blocks above are coded / merged and from the block's row and
column parity: the refinement (:mod:`flow.refine`) decides in four interleaved grids, and blocks of its first grid
(even row, even column) end up coded two to three times as often as the others. The coded flag also sees the two
flags to its left. Rows are coded in order, each row one vectorised group per bin (the decoder reads a row's coded
flags one by one, as each needs its left neighbours); probabilities are integer counts (both sides derive the same
ones), updated after each row. They start from the shipped initial counts (``vector_prior.safetensors``, as CABAC
starts from its init tables; fitted on quarter-pel fields the coder sent by ``python -m
pipeline.video.vector_prior``), so a frame does not pay to learn what every driving frame shares; fields in whole or
half pixels, whose magnitudes mean something else, start from ones. A field the coder's rate-distortion search made
locally constant has mostly uncoded blocks and costs a fraction of a bit per block.

Layout: magic ``DCMV``, version (u8), block (u8), rows, cols (u16), units per pixel (u8: 1, 2 or 4), then the
range coder's words (u32, little-endian).
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

import constriction
import numpy as np
from safetensors.numpy import load_file

MAGIC = b"DCMV"
VERSION = 5  # 5: initial counts, parity, left-flag and sign contexts; 4: merges, adaptive Exp-Golomb prefix; 3: MED
PRIOR = Path(__file__).with_name("vector_prior.safetensors")
_HEADER = struct.Struct("<4sBBHHB")
QPEL = 4  # vectors are multiples of 1/QPEL pixel
UNITS = (1, 2, QPEL)  # per pixel: the coarsest that holds a field exactly is used
UNARY = 8  # magnitude bins with their own probabilities
EG_ORDER = 2  # Exp-Golomb order of the magnitude beyond UNARY - 1
_NEIGHBOUR_CLASSES = (0, 3, 12)  # sum of the three magnitudes above: 0 | 1..3 | 4..12 | more
MERGES = 3  # merge candidates, in index order: left, top, top-left
_EG_BINS = 8  # Exp-Golomb prefix bins with their own probabilities; later ones share the last
_FAMILY = constriction.stream.model.Bernoulli(perfect=False)
_MAX_RESIDUAL = 1 << 20


def med(left: np.ndarray, top: np.ndarray, top_left: np.ndarray) -> np.ndarray:
    """JPEG-LS's median edge detector, elementwise: min(left, top) where top_left >= both, max(left, top) where
    top_left <= both, else left + top - top_left (equivalently, the median of left, top and that plane)."""
    low, high = np.minimum(left, top), np.maximum(left, top)
    return np.minimum(np.maximum(left + top - top_left, low), high)


def predict(q: np.ndarray) -> np.ndarray:
    """What the coder predicts each vector of a (rows, cols, 2) field to be (any numeric dtype): MED of left, top
    and top-left (vectorised); the first column takes its top as left and top-left (so it is
    predicted by its top), the first row its left neighbour (0 at the start)."""
    top = np.concatenate([q[:1] * 0, q[:-1]], axis=0)
    left = np.concatenate([top[:, :1], q[:, :-1]], axis=1)
    top_left = np.concatenate([top[:, :1], top[:, :-1]], axis=1)
    pred = med(left, top, top_left)
    pred[0, 0] = 0
    pred[0, 1:] = q[0, :-1]
    return pred


def _merge_candidates(q: np.ndarray) -> np.ndarray:
    """(MERGES, rows, cols, 2) the left, top and top-left neighbours of every block (valid where y, x >= 1)."""
    padded = np.pad(q, ((1, 0), (1, 0), (0, 0)))
    return np.stack([padded[1:, :-1], padded[:-1, 1:], padded[:-1, :-1]])


class _Bins:
    """Adaptive probabilities of one syntax element's bins: integer counts per context (both sides derive the
    same ones), from ``initial`` ((*shape, 2) counts >= 1) or ones."""

    def __init__(self, *shape: int, initial: np.ndarray | None = None) -> None:
        self.counts = np.ones((*shape, 2), np.int64)
        if initial is not None:
            if initial.shape != self.counts.shape or (initial < 1).any():
                raise ValueError(f"vector prior: initial counts of shape {initial.shape} (expected "
                                 f"{self.counts.shape}, all >= 1)")
            self.counts = initial.astype(np.int64)

    def code(self, io: _Writer | _Reader, context: tuple[np.ndarray, ...], known: np.ndarray | None) -> np.ndarray:
        """Code one bin per context entry (``known``: the bins to write; None when reading); returns them."""
        n = self.counts[context]
        bits = io.bins(n[:, 1] / n.sum(axis=1), known)
        np.add.at(self.counts, (*context, bits), 1)
        return bits

    def code_run(self, io: _Writer | _Reader, context: tuple[np.ndarray, ...], known: np.ndarray | None) -> np.ndarray:
        """:meth:`code` for one row of flags whose first two context entries are the two flags to their left
        (2 where there is none): at once when writing, flag by flag when reading; the counts of the row before."""
        if known is not None:
            bits = np.asarray(known, np.int64)
            left = np.concatenate([[2, 2], bits])
            return self.code(io, (left[1:-1], left[:-2], *context), bits)
        probability = (self.counts[..., 1] / self.counts.sum(-1))[(slice(None), slice(None), *context)].tolist()
        bits = [2, 2]  # Python lists: a flag at a time, numpy's overhead would dominate
        for x in range(context[0].size):
            bits.append(io.bin(probability[bits[-1]][bits[-2]][x]))
        flags = np.array(bits)
        np.add.at(self.counts, (flags[1:-1], flags[:-2], *context, flags[2:]), 1)
        return flags[2:]


class _Writer:
    def __init__(self) -> None:
        self.coder = constriction.stream.queue.RangeEncoder()

    def bins(self, probabilities: np.ndarray, known: np.ndarray | None) -> np.ndarray:
        known = np.asarray(known, np.int64)
        if known.size:
            self.coder.encode(known.astype(np.int32), _FAMILY, probabilities)
        return known


class _Reader:
    def __init__(self, words: np.ndarray) -> None:
        self.coder = constriction.stream.queue.RangeDecoder(words)

    def bins(self, probabilities: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        if not probabilities.size:
            return np.zeros(0, np.int64)
        return np.asarray(self.coder.decode(_FAMILY, probabilities), np.int64)

    def bin(self, probability: float) -> int:
        return int(self.coder.decode(_FAMILY, np.array([probability]))[0])


def _bypass(io: _Writer | _Reader, n: int, known: np.ndarray | None) -> np.ndarray:
    return io.bins(np.full(n, 0.5), known)


class _Model:
    """Every adaptive bin of the syntax, starting from ``initial`` counts per element name (or ones)."""

    def __init__(self, initial: dict[str, np.ndarray] | None = None) -> None:
        classes = len(_NEIGHBOUR_CLASSES) + 1
        shapes = {"coded": (3, 3, 5, 2, 2),  # the two blocks to the left (no, yes, none), coded blocks among the
                  # three above (0..3, or no row above), column and row parity
                  "merge": (3, 2, 2),  # merged blocks among the three above (0, 1, 2+), parities
                  "index": (MERGES - 1,),
                  "unary": (2, classes, 2, UNARY),  # component, neighbour class, horizontal zero, bin
                  "golomb": (2, _EG_BINS),
                  "sign": (2, 3)}  # component, sign of the block above's residual
        if initial is not None and set(initial) != set(shapes):
            raise ValueError(f"vector prior: elements {sorted(initial)}, expected {sorted(shapes)}")
        for name, shape in shapes.items():
            setattr(self, name, _Bins(*shape, initial=None if initial is None else initial[name]))

    def counts(self) -> dict[str, np.ndarray]:
        return {name: bins.counts.copy() for name, bins in vars(self).items()}


@cache
def shipped_prior() -> dict[str, np.ndarray]:
    """The initial counts every version-5 stream starts from (``PRIOR``)."""
    if not PRIOR.is_file():
        raise FileNotFoundError(f"{PRIOR}: the motion-vector coder's initial counts are missing (fit them with "
                                "python -m pipeline.video.vector_prior)")
    return load_file(str(PRIOR))


def _start(unit: int) -> _Model:
    """The model a field of ``unit`` per pixel starts from."""
    return _Model(shipped_prior() if unit == QPEL else None)


def observed_counts(mv: np.ndarray) -> dict[str, np.ndarray]:
    """How often each bin of each context took 0 and 1 when coding the (rows, cols, 2) quarter-pel field ``mv``
    (pixels) from ones: the statistics :func:`initial_counts` fits."""
    mv = checked_field(mv)
    if field_unit(mv) != QPEL:
        raise ValueError(f"the vector prior is fitted on quarter-pel fields; this one is in 1/{field_unit(mv)} px")
    model = _Model()
    _encode(mv, _Writer(), model)
    return {name: counts - 1 for name, counts in model.counts().items()}


def initial_counts(observed: dict[str, np.ndarray], strength: int = 64) -> dict[str, np.ndarray]:
    """Initial counts from summed :func:`observed_counts`: each context's probability (add-half estimate) as
    counts totalling at most ``strength``, fewer where it was seen less often (so the frame's own bins still
    outweigh a guess), never below one."""
    fitted = {}
    for name, counts in observed.items():
        seen = counts.sum(-1, keepdims=True).astype(np.float64)
        probability = (counts + 0.5) / (seen + 1)
        fitted[name] = np.maximum(1, np.round(probability * np.minimum(strength, seen + 2))).astype(np.int64)
    return fitted


def _around(values: np.ndarray) -> np.ndarray:
    """Sum of each position's three neighbours above (top-left, top, top-right) from the row above."""
    padded = np.pad(values.astype(np.int64), 1)
    return padded[:-2] + padded[1:-1] + padded[2:]


def _code_row(io: _Writer | _Reader, model: _Model, y: int, above: np.ndarray | None,
              truth: tuple[np.ndarray, np.ndarray] | None, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """One row's syntax, written from ``truth`` = (residuals (cols, 2), merge index (cols,), -1 where none) or read
    (``truth`` None); returns that pair. ``above``: :func:`_above`."""
    res, index = truth if truth is not None else (np.zeros((cols, 2), np.int64), np.full(cols, -1))
    magnitude = np.abs(res)
    writing = truth is not None
    first = above is None
    context = np.full(cols, 4) if first else _around(above[2] > 0)
    column, row = np.arange(cols) % 2, np.full(cols, y % 2)
    coded = model.coded.code_run(io, (context, column, row), magnitude.any(-1) if writing else None) > 0
    mergeable = coded & (np.arange(cols) > 0) & (not first)
    context = np.zeros(cols, np.int64) if first else np.minimum(_around(above[3] > 0), 2)
    merged = np.zeros(cols, bool)
    merged[mergeable] = model.merge.code(io, (context[mergeable], column[mergeable], row[mergeable]),
                                         index[mergeable] >= 0 if writing else None) > 0
    chosen = np.zeros(int(merged.sum()), np.int64)
    for k in range(MERGES - 1):  # truncated unary index
        going = chosen == k
        chosen[going] += model.index.code(io, (np.full(int(going.sum()), k),),
                                          index[merged][going] > k if writing else None)
    index = np.full(cols, -1)
    index[merged] = chosen
    live = coded & ~merged
    values = np.zeros((cols, 2), np.int64)
    cls_above = [np.zeros(cols, np.int64) if first else
                 np.searchsorted(_NEIGHBOUR_CLASSES, _around(above[c]), side="left") for c in (0, 1)]
    for c in (0, 1):
        zero = values[:, 0] == 0 if c else np.zeros(cols, bool)
        level = np.zeros(cols, np.int64)
        level[live & zero] = 1  # a coded block's vertical residual is nonzero where its horizontal one is zero
        going = live.copy()
        for k in range(UNARY):
            if not going.any():
                break
            step = going & (level == k)
            n = int(step.sum())
            more = model.unary.code(io, (np.full(n, c), cls_above[c][step], zero[step].astype(np.int64),
                                         np.full(n, k)), magnitude[step, c] > k if writing else None)
            at = np.flatnonzero(step)
            level[at[more > 0]] = k + 1
            going[at[more == 0]] = False
        large = live & (level == UNARY)
        level[large] = UNARY + _exp_golomb(io, model, c, magnitude[large, c] - UNARY if writing else None,
                                           int(large.sum()))
        nonzero = np.flatnonzero(level)
        top_sign = np.ones(nonzero.size, np.int64) if first else above[4 + c][nonzero]
        negative = model.sign.code(io, (np.full(nonzero.size, c), top_sign),
                                   res[nonzero, c] < 0 if writing else None)
        values[:, c] = level
        values[nonzero[negative > 0], c] *= -1
    return values, index


def _exp_golomb(io: _Writer | _Reader, model: _Model, c: int, known: np.ndarray | None, n: int) -> np.ndarray:
    """``n`` values >= 0 of component ``c``: a unary count of extra suffix bits (adaptive bins), then the suffix
    (equiprobable)."""
    if not n:
        return np.zeros(0, np.int64)
    writing = known is not None
    if writing:
        known_w = known + (1 << EG_ORDER)
        known_extra = np.floor(np.log2(known_w)).astype(np.int64) - EG_ORDER
    extra = np.zeros(n, np.int64)
    going = np.ones(n, bool)
    j = 0
    while going.any():
        if j > 40:
            raise ValueError("motion-vector stream is corrupt (Exp-Golomb prefix too long)")
        m = int(going.sum())
        more = model.golomb.code(io, (np.full(m, c), np.full(m, min(j, _EG_BINS - 1))),
                                 known_extra[going] > j if writing else None)
        at = np.flatnonzero(going)
        extra[at[more > 0]] += 1
        going[at[more == 0]] = False
        j += 1
    width = extra + EG_ORDER
    w = np.zeros(n, np.int64)
    for b in range(int(width.max(initial=0)) - 1, -1, -1):
        alive = width > b
        w[alive] |= _bypass(io, int(alive.sum()), (known_w[alive] >> b) & 1 if writing else None) << b
    return (w | (np.int64(1) << width)) - (1 << EG_ORDER)


def field_unit(mv: np.ndarray) -> int:
    """The coarsest unit per pixel (1, 2 or 4) that holds every vector of a quarter-pel field exactly."""
    return next(u for u in UNITS if np.abs(np.round(mv * u) - mv * u).max() <= 1e-3)


def checked_field(mv: np.ndarray) -> np.ndarray:
    """``mv`` as an array when it is a codable field: (rows, cols, 2), finite, multiples of 1/4 px; else ValueError."""
    mv = np.asarray(mv)
    if mv.ndim != 3 or mv.shape[2] != 2 or not 0 < mv.shape[0] < 65536 or not 0 < mv.shape[1] < 65536:
        raise ValueError(f"motion vectors: expected a (rows, cols, 2) field, got shape {mv.shape}")
    if not np.isfinite(mv).all():
        raise ValueError("motion vectors contain NaN or infinite values")
    scaled = mv.astype(np.float64) * QPEL
    if np.abs(np.round(scaled) - scaled).max() > 1e-3:
        raise ValueError("motion vectors must be multiples of 1/4 pixel (quarter-pel)")
    return mv


def encode_vectors(mv: np.ndarray, block: int) -> bytes:
    """(rows, cols, 2) float32 vectors in pixels (multiples of 1/4) -> bytes."""
    mv = checked_field(mv)
    writer, unit = _Writer(), field_unit(mv)
    _encode(mv, writer, _start(unit))
    header = _HEADER.pack(MAGIC, VERSION, block, mv.shape[0], mv.shape[1], unit)
    return header + writer.coder.get_compressed().astype("<u4").tobytes()


def _encode(mv: np.ndarray, writer: _Writer, model: _Model) -> None:
    """Code a checked field's syntax with ``model``."""
    unit = field_unit(mv)
    q = np.round(mv.astype(np.float64) * unit).astype(np.int64)
    res = q - predict(q)
    if np.abs(res).max() >= _MAX_RESIDUAL:
        raise ValueError(f"motion vector residual {np.abs(res).max()} quarter-pels is too large to code")
    index = merge_index(q)
    for y in range(q.shape[0]):
        _code_row(writer, model, y, _above(res, index, y), (res[y], index[y]), q.shape[1])


def merge_index(q: np.ndarray) -> np.ndarray:
    """(rows, cols) which merge candidate (0 left, 1 top, 2 top-left) each vector of an integer field copies, -1
    where it is sent otherwise: its prediction itself (no residual), or first row and column, where the
    prediction is the left or top neighbour."""
    equal = (_merge_candidates(q) == q).all(-1)  # (MERGES, rows, cols)
    index = np.where((q != predict(q)).any(-1) & equal.any(0), equal.argmax(0), -1)
    index[0], index[:, 0] = -1, -1
    return index


def _above(res: np.ndarray, index: np.ndarray, y: int) -> np.ndarray | None:
    """What row ``y``'s contexts read from the row above: (4, cols) its two residual magnitudes, coded and merged
    flags (None for the first row)."""
    if y == 0:
        return None
    row = res[y - 1]
    return np.stack([np.abs(row[:, 0]), np.abs(row[:, 1]), (row != 0).any(-1), index[y - 1] >= 0,
                     np.sign(row[:, 0]) + 1, np.sign(row[:, 1]) + 1]).astype(np.int64)


def decode_vectors(data: bytes, shape: tuple[int, int] | None = None, block: int | None = None) -> np.ndarray:
    """bytes -> (rows, cols, 2) float32 vectors in pixels; checks ``shape``/``block`` when given."""
    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise ValueError(f"not a motion-vector stream: expected magic {MAGIC!r}, got {bytes(data[:4])!r}")
    magic, version, blk, rows, cols, unit = _HEADER.unpack_from(data)
    if version != VERSION:
        raise ValueError(f"motion-vector stream version {version} is not supported (expected {VERSION})")
    if unit not in UNITS:
        raise ValueError(f"motion-vector stream has {unit} units per pixel; expected one of {UNITS} (corrupt)")
    if shape is not None and (rows, cols) != tuple(shape):
        raise ValueError(f"motion-vector stream holds a {rows}x{cols} block grid, expected {tuple(shape)}")
    if block is not None and blk != block:
        raise ValueError(f"motion-vector stream was coded with block {blk}, expected {block}")
    if (len(data) - _HEADER.size) % 4:
        raise ValueError("motion-vector stream is truncated (payload is not whole 32-bit words)")
    words = np.frombuffer(data, dtype="<u4", offset=_HEADER.size).astype(np.uint32)
    reader, model = _Reader(words), _start(unit)
    q = np.zeros((rows, cols, 2), np.int64)
    res = np.zeros_like(q)
    index = np.full((rows, cols), -1)
    try:
        for y in range(rows):
            values, index[y] = _code_row(reader, model, y, _above(res, index, y), None, cols)
            res[y] = q[y] - _reconstruct_row(q, y, values, index[y])
    except BaseException as err:  # constriction raises its own types on malformed data
        if isinstance(err, ValueError | KeyboardInterrupt):
            raise
        raise ValueError(f"motion-vector stream is malformed: {err}") from err
    return (q / unit).astype(np.float32)


def _reconstruct_row(q: np.ndarray, y: int, residuals: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Fill row ``y`` of ``q`` from its residuals and merge indices (sequential: each block reads its left);
    returns the row's prediction (cols, 2), as :func:`predict` gives it."""
    if y == 0:
        q[0] = np.cumsum(residuals, axis=0)
        return np.concatenate([q[0, :1] * 0, q[0, :-1]])
    top = [tuple(v) for v in q[y - 1].tolist()]  # Python integers: a block at a time, numpy's overhead dominates
    prediction, row = [], []
    left = top[0]
    for top_block, top_left, residual, merge in zip(top, top[:1] + top[:-1], residuals.tolist(), index.tolist(),
                                                   strict=True):
        predicted = tuple(min(max(a + b - c, min(a, b)), max(a, b))  # med() on Python integers
                          for a, b, c in zip(left, top_block, top_left, strict=True))
        left = (left, top_block, top_left)[merge] if merge >= 0 else (predicted[0] + residual[0],
                                                                      predicted[1] + residual[1])
        prediction.append(predicted)
        row.append(left)
    q[y] = row
    return np.array(prediction, np.int64)


def stream_block(data: bytes) -> int:
    """The block size a vector stream was coded with (from its header)."""
    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise ValueError(f"not a motion-vector stream: expected magic {MAGIC!r}, got {bytes(data[:4])!r}")
    return _HEADER.unpack_from(data)[2]


def vector_bits(data: bytes) -> int:
    """Size of a coded field in bits (header included): the motion side information of one frame."""
    return 8 * len(data)
