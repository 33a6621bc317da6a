"""Context-adaptive binary entropy coding of the codec's bits with constriction's range coder.

Each bit b[t, c, y, x] is coded with a probability taken from integer counts of its context:

- the bit at the same place in the previous iteration (absent / -1 / +1),
- its four spatial neighbours in the same channel and iteration that are already decoded (the positions
  are coded in two checkerboard halves: the first half sees none, the second half sees the sum of four),
- the bit of the previous channel at the same place and iteration (absent / -1 / +1).

The counts are per channel, start from a prior table (uniform, or fitted on training images) and adapt:
after each group (one checkerboard half of one channel in a stripe of rows) they are incremented, and
halved past a limit. All state is integer and the probability is one IEEE division of two integers,
so every machine, thread count and device derives the same probabilities. Each group is one vectorised
constriction call; each iteration is its own byte string, decoded in order (the counts carry over).
"""

from __future__ import annotations

import itertools

import constriction
import numpy as np

RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

N_PREV, N_SPATIAL, N_CHAN = 3, 10, 3
N_CONTEXTS = N_PREV * N_SPATIAL * N_CHAN
STRIPE_ROWS = 4  # a group is one channel of one checkerboard half in a stripe of this many rows
COUNT_LIMIT = 4096  # halve a context's counts past this total, so probabilities keep adapting
_FAMILY = constriction.stream.model.Bernoulli(perfect=False)


def uniform_prior(channels: int = 32) -> np.ndarray:
    """(channels, N_CONTEXTS, 2) int64 counts (n0, n1), all one."""
    return np.ones((channels, N_CONTEXTS, 2), dtype=np.int64)


def _check_prior(prior: np.ndarray, channels: int) -> np.ndarray:
    if prior.shape != (channels, N_CONTEXTS, 2) or prior.min() < 1:
        raise ValueError(f"entropy prior must be ({channels}, {N_CONTEXTS}, 2) counts >= 1, got {prior.shape}")
    return prior.astype(np.int64).copy()


class BitCoder:
    """Codes the iterations of one image in order; create one per image (its counts adapt as it goes).

    Bits are (C, h, w) int8 arrays in {-1, 0, +1} (0 = not transmitted); ``active`` (h, w) bool says which
    positions are transmitted in this iteration.
    """

    def __init__(self, channels: int = 32, prior: np.ndarray | None = None) -> None:
        self.channels = channels
        self.table = _check_prior(prior if prior is not None else uniform_prior(channels), channels)
        self.prev: np.ndarray | None = None
        self.stats: np.ndarray | None = None  # when set, raw context counts are accumulated here

    def encode(self, bits: np.ndarray, active: np.ndarray) -> bytes:
        """One iteration's bits (C, h, w) -> bytes."""
        if bits.shape[0] != self.channels or bits.shape[1:] != active.shape:
            raise ValueError(f"bits {bits.shape} do not match {self.channels} channels and active {active.shape}")
        if np.any(bits[:, active] == 0) or np.any(bits[:, ~active] != 0):
            raise ValueError("bits must be +-1 exactly where active and 0 elsewhere")
        encoder = RangeEncoder()
        self._run(bits.astype(np.int8), active, encoder=encoder)
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, active: np.ndarray) -> np.ndarray:
        """Bytes of one iteration -> bits (C, h, w) int8."""
        if len(data) % 4:
            raise ValueError(f"entropy-coded iteration has {len(data)} bytes, expected a multiple of 4")
        decoder = RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        bits = np.zeros((self.channels, *active.shape), dtype=np.int8)
        try:
            self._run(bits, active, decoder=decoder)
        except BaseException as err:  # constriction raises its own types on malformed data
            if isinstance(err, ValueError | KeyboardInterrupt):
                raise
            raise ValueError(f"entropy-coded iteration is malformed: {err}") from err
        return bits

    def _run(self, bits: np.ndarray, active: np.ndarray, encoder: RangeEncoder | None = None,
             decoder: RangeDecoder | None = None) -> None:
        """Walk the groups in coding order; encode ``bits`` or fill them in from ``decoder``."""
        h, w = active.shape
        cur = np.zeros((self.channels, h + 2, w + 2), dtype=np.int8)  # zero border: absent neighbours
        prev = self.prev if self.prev is not None else np.zeros_like(bits)
        yy, xx = np.mgrid[0:h, 0:w]
        for half in (0, 1):
            where = active & ((yy + xx) % 2 == half)
            for c, top in itertools.product(range(self.channels), range(0, h, STRIPE_ROWS)):
                # Row-major positions, the same order on both sides; counts adapt after every stripe.
                ys, xs = np.nonzero(where[top : top + STRIPE_ROWS])
                if ys.size == 0:
                    continue
                ys = ys + top
                ctx_prev = prev[c, ys, xs].astype(np.int64) + 1
                if half == 0:
                    ctx_space = np.zeros(ys.size, dtype=np.int64)
                else:
                    p = cur[c]
                    around = (p[ys, xs + 1].astype(np.int64) + p[ys + 2, xs + 1] + p[ys + 1, xs] + p[ys + 1, xs + 2])
                    ctx_space = around + 5
                ctx_chan = (cur[c - 1, ys + 1, xs + 1].astype(np.int64) + 1) if c else np.ones(ys.size, np.int64)
                ctx = (ctx_prev * N_SPATIAL + ctx_space) * N_CHAN + ctx_chan
                counts = self.table[c, ctx]
                p1 = counts[:, 1] / (counts[:, 0] + counts[:, 1])
                if encoder is not None:
                    symbols = (bits[c, ys, xs] > 0).astype(np.int32)
                    encoder.encode(symbols, _FAMILY, p1)
                else:
                    symbols = np.asarray(decoder.decode(_FAMILY, p1), dtype=np.int32)
                    bits[c, ys, xs] = np.where(symbols > 0, 1, -1)
                cur[c, ys + 1, xs + 1] = np.where(symbols > 0, 1, -1)
                np.add.at(self.table[c], (ctx, symbols), 1)
                if self.stats is not None:
                    np.add.at(self.stats[c], (ctx, symbols), 1)
                full = self.table[c].sum(axis=1) > COUNT_LIMIT
                if full.any():
                    self.table[c, full] = (self.table[c, full] + 1) // 2
        self.prev = bits.copy()


def collect_statistics(bits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Context counts (C, N_CONTEXTS, 2) over a whole code (T, C, h, w), (h, w) counts: for fitting a prior."""
    coder = BitCoder(bits.shape[1])
    coder.stats = np.zeros_like(coder.table)
    for t in range(bits.shape[0]):
        coder.encode(bits[t], counts > t)
    return coder.stats


def fit_prior(stats: np.ndarray, strength: int = 64) -> np.ndarray:
    """Prior counts from statistics: each context's probability as ``strength`` pseudo-counts (at least one each)."""
    total = stats.sum(axis=2, keepdims=True)
    p = (stats + 0.5) / (total + 1.0)
    return np.maximum(1, np.rint(p * strength)).astype(np.int64)
