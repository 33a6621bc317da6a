"""Context-adaptive binary entropy coding of the codec's bits with constriction's range coder.

Each bit b[t, c, y, x] is coded with a probability taken from integer counts of its context:

- the bit at the same place in the previous iteration (absent / -1 / +1),
- its four spatial neighbours in the same channel and iteration that are already decoded (the positions
  are coded in two checkerboard halves: the first half sees none, the second half sees the sum of four),
- the bits of N_PARENTS channels already coded at the same place and iteration (absent / -1 / +1 each).

Which channels are parents, and the order the channels are coded in, is the prior's *plan*: the binarizer's
channels have no natural order, so :func:`fit_plan` codes first the channels that share most information with
the others and gives each channel the earlier ones it shares most with (pairwise mutual information on training
codes). ``python -m bench.codec_rd`` reports coded/raw bits with the fitted prior and with the uniform one.
The counts are per channel, start from a prior table (uniform, or fitted on training images) and adapt:
after each group (one checkerboard half of one channel in a stripe of rows) they are incremented, and
halved past a limit. All state is integer and the probability is one IEEE division of two integers,
so every machine, thread count and device derives the same probabilities. Each group is one vectorised
constriction call; each iteration is its own byte string, decoded in order (the counts carry over).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import constriction
import numpy as np

from codec.context import ARRAYS as NET_ARRAYS
from codec.context import ContextNet, NetBitCoder
from codec.iteration_coder import IterationCoder, RangeDecoder, RangeEncoder

N_PARENTS = 5
N_PREV, N_SPATIAL, N_CHAN = 3, 10, 3**N_PARENTS
N_CONTEXTS = N_PREV * N_SPATIAL * N_CHAN
STRIPE_ROWS = 4  # a group is one channel of one checkerboard half in a stripe of this many rows
COUNT_LIMIT = 4096  # halve a context's counts past this total, so probabilities keep adapting
_FAMILY = constriction.stream.model.Bernoulli(perfect=False)


@dataclass
class Prior:
    """Where a :class:`BitCoder` starts: the channel plan and the initial counts.

    counts: (C, N_CONTEXTS, 2) int64 pseudo-counts (n0, n1) >= 1.
    order: (C,) int64, the channels in coding order (a permutation).
    parents: (C, N_PARENTS) int64, for channel c the channels coded before it whose bits form its context (-1: none).
    net: a learned context model (:mod:`codec.context`) that replaces the counts, or None. It codes the channels
    in ``order``.
    """

    counts: np.ndarray
    order: np.ndarray
    parents: np.ndarray
    net: ContextNet | None = None

    @classmethod
    def uniform(cls, channels: int = 32) -> Prior:
        """All counts one, channels in index order, no parents: without a fitted plan, channel contexts would only
        split the counts (3**N_PARENTS ways) and slow their adaptation."""
        parents = -np.ones((channels, N_PARENTS), np.int64)
        return cls(np.ones((channels, N_CONTEXTS, 2), np.int64), np.arange(channels), parents)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], channels: int) -> Prior:
        """From :meth:`arrays` (e.g. a safetensors file); ValueError naming what is wrong."""
        missing = {"counts", "order", "parents"} - set(arrays)
        if missing:
            raise ValueError(f"entropy prior lacks {sorted(missing)}")
        prior = cls(*(np.asarray(arrays[k]).astype(np.int64) for k in ("counts", "order", "parents")))
        if NET_ARRAYS[0] in arrays:
            prior.net = ContextNet.from_arrays(arrays, channels)
        prior.check(channels)
        return prior

    def arrays(self) -> dict[str, np.ndarray]:
        """Compact arrays for a file (counts as uint8 when they fit)."""
        counts = self.counts.astype(np.uint8) if self.counts.max() <= 255 else self.counts
        net = self.net.arrays() if self.net is not None else {}
        return {"counts": counts, "order": self.order.astype(np.int64), "parents": self.parents.astype(np.int64),
                **net}

    def digest_bytes(self) -> bytes:
        plan = b"".join(np.ascontiguousarray(a, dtype="<i8").tobytes() for a in (self.counts, self.order, self.parents))
        if self.net is None:
            return plan
        return plan + b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in self.net.arrays().values())

    def estimate_bits(self, bits: np.ndarray, previous: np.ndarray | None = None, t: int = 0) -> np.ndarray:
        """Estimated cost in bits of each position's bits: (C, h, w) in {-1, 0, +1} -> (h, w) float64, as
        iteration ``t`` after ``previous`` (0 = not transmitted).

        With a context net, the cost the coder will spend. Else the contexts are the coder's (previous iteration,
        the checkerboard neighbours, the parent channels), the probabilities the prior's initial counts: the coder
        adapts them to the image as it goes, so this slightly overestimates. Positions with no bits cost 0.
        """
        if self.net is not None:
            return NetBitCoder(self.net, self.order, bits.shape[0], previous, t).cost(bits)
        channels, h, w = bits.shape
        b = bits.astype(np.int64)
        prev = np.zeros_like(b) if previous is None else previous.astype(np.int64)
        padded = np.pad(b, ((0, 0), (1, 1), (1, 1)))
        around = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
        second_half = (np.add.outer(np.arange(h), np.arange(w)) % 2 == 1)[None]
        ctx_space = np.where(second_half, around + 5, 0)
        with_absent = np.concatenate([b + 1, np.ones((1, h, w), np.int64)])  # parent -1 reads "absent" (1)
        ctx_chan = np.zeros_like(b)
        for k in range(N_PARENTS):
            ctx_chan = ctx_chan * 3 + with_absent[self.parents[:, k]]
        ctx = ((prev + 1) * N_SPATIAL + ctx_space) * N_CHAN + ctx_chan
        table = self.counts[np.arange(channels)[:, None, None], ctx]  # (C, h, w, 2)
        p = table[..., 1] / table.sum(axis=-1)
        cost = -np.log2(np.where(b > 0, p, 1 - p))
        return np.where(b != 0, cost, 0.0).sum(axis=0)

    def check(self, channels: int) -> None:
        if self.counts.shape != (channels, N_CONTEXTS, 2) or self.counts.min() < 1:
            raise ValueError(f"entropy prior counts must be ({channels}, {N_CONTEXTS}, 2) and >= 1, "
                             f"got shape {self.counts.shape}")
        if sorted(self.order.tolist()) != list(range(channels)):
            raise ValueError(f"entropy prior order must be a permutation of 0..{channels - 1}")
        if self.parents.shape != (channels, N_PARENTS):
            raise ValueError(f"entropy prior parents must be ({channels}, {N_PARENTS}), got {self.parents.shape}")
        position = {int(c): i for i, c in enumerate(self.order)}
        for c, row in enumerate(self.parents):
            if any(p != -1 and not (0 <= p < channels and position[int(p)] < position[c]) for p in row):
                raise ValueError(f"entropy prior: parents of channel {c} must be -1 or channels coded before it")


def fit_plan(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(order, parents) for codes (T, C, h, w) in {-1, 0, +1} from pairwise mutual information of transmitted bits.

    Greedy: start with the channel sharing most with all others; then take the channel sharing most with its
    best N_PARENTS already ordered channels, and give it those as parents.
    """
    channels = codes[0].shape[1]
    bits = np.concatenate([c.transpose(1, 0, 2, 3).reshape(channels, -1) for c in codes], axis=1)
    bits = bits[:, (bits != 0).all(axis=0)] > 0
    mi = _mutual_information(bits)
    order = [int(np.argmax(mi.sum(axis=1)))]
    while len(order) < channels:
        rest = [c for c in range(channels) if c not in order]
        order.append(max(rest, key=lambda c: np.sort(mi[c, order])[-N_PARENTS:].sum()))
    parents = -np.ones((channels, N_PARENTS), np.int64)
    for i, c in enumerate(order):
        best = sorted(order[:i], key=lambda d: -mi[c, d])[:N_PARENTS]
        parents[c, : len(best)] = best
    return np.array(order), parents


def _mutual_information(bits: np.ndarray) -> np.ndarray:
    """(C, C) mutual information in bits between the rows of a (C, N) bool array."""
    n = max(bits.shape[1], 1)
    ones = bits.astype(np.float64)
    p11 = ones @ ones.T / n
    p1 = ones.mean(axis=1) if bits.shape[1] else np.zeros(bits.shape[0])
    joint = np.stack([1 - p1[:, None] - p1[None] + p11, p1[None] - p11, p1[:, None] - p11, p11])  # 00 01 10 11
    marg_a = np.stack([1 - p1[:, None], 1 - p1[:, None], p1[:, None], p1[:, None]])
    marg_b = np.stack([1 - p1[None], p1[None], 1 - p1[None], p1[None]])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / (marg_a * marg_b)), 0.0)
    mi = terms.sum(axis=0)
    np.fill_diagonal(mi, 0.0)
    return mi


def bit_coder(channels: int, prior: Prior | None = None) -> BitCoder | NetBitCoder:
    """The coder for one image's iterations: the prior's context net where it has one, else adaptive counts."""
    if prior is not None and prior.net is not None:
        prior.check(channels)
        return NetBitCoder(prior.net, prior.order, channels)
    return BitCoder(channels, prior)


class BitCoder(IterationCoder):
    """Codes the iterations of one image in order; create one per image (its counts adapt as it goes).

    Bits are (C, h, w) int8 arrays in {-1, 0, +1} (0 = not transmitted); ``active`` (h, w) bool says which
    positions are transmitted in this iteration.
    """

    def __init__(self, channels: int = 32, prior: Prior | None = None) -> None:
        self.channels = channels
        prior = prior if prior is not None else Prior.uniform(channels)
        prior.check(channels)
        self.table = prior.counts.astype(np.int64)  # a copy: the counts adapt per image
        self.order = [int(c) for c in prior.order]
        self.parents = prior.parents
        self.prev: np.ndarray | None = None
        self.stats: np.ndarray | None = None  # when set, raw context counts are accumulated here

    def _run(self, bits: np.ndarray, active: np.ndarray, encoder: RangeEncoder | None = None,
             decoder: RangeDecoder | None = None) -> None:
        """Walk the groups in coding order; encode ``bits`` or fill them in from ``decoder``."""
        h, w = active.shape
        cur = np.zeros((self.channels, h + 2, w + 2), dtype=np.int8)  # zero border: absent neighbours
        prev = self.prev if self.prev is not None else np.zeros_like(bits)
        yy, xx = np.mgrid[0:h, 0:w]
        for half in (0, 1):
            where = active & ((yy + xx) % 2 == half)
            for c, top in itertools.product(self.order, range(0, h, STRIPE_ROWS)):
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
                ctx_chan = np.zeros(ys.size, dtype=np.int64)
                for parent in self.parents[c]:
                    ctx_chan = ctx_chan * 3 + (cur[parent, ys + 1, xs + 1] + 1 if parent >= 0 else 1)
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
                # Only this group's contexts grew, so only they can have passed the limit.
                full = np.unique(ctx[self.table[c, ctx].sum(axis=1) > COUNT_LIMIT])
                if full.size:
                    self.table[c, full] = (self.table[c, full] + 1) // 2
        self.prev = bits.copy()


def collect_statistics(bits: np.ndarray, counts: np.ndarray, plan: Prior | None = None) -> np.ndarray:
    """Context counts (C, N_CONTEXTS, 2) over a whole code (T, C, h, w), (h, w) counts, coded with ``plan``'s
    order and parents (default: :meth:`Prior.uniform`'s, i.e. none)."""
    coder = BitCoder(bits.shape[1], plan)
    coder.stats = np.zeros_like(coder.table)
    for t in range(bits.shape[0]):
        coder.encode(bits[t], counts > t)
    return coder.stats


def fit_prior(codes: list[tuple[np.ndarray, np.ndarray]], strength: int = 64) -> Prior:
    """A prior from codes (bits (T, C, h, w), counts (h, w)): the plan (:func:`fit_plan`), then each context's
    probability under it as ``strength`` pseudo-counts (at least one each)."""
    if not codes:
        raise ValueError("fitting an entropy prior needs at least one code")
    if not 1 <= strength <= 255:
        raise ValueError(f"prior strength must be in 1..255, got {strength}")
    channels = codes[0][0].shape[1]
    order, parents = fit_plan([bits for bits, _ in codes])
    plan = Prior(np.ones((channels, N_CONTEXTS, 2), np.int64), order, parents)
    stats = sum(collect_statistics(bits, counts, plan) for bits, counts in codes)
    total = stats.sum(axis=2, keepdims=True)
    p = (stats + 0.5) / (total + 1.0)
    return Prior(np.maximum(1, np.rint(p * strength)).astype(np.int64), order, parents)


_COUNT_CONTEXTS = (4, 2, 5)  # iteration (3 = later ones), checkerboard half, neighbours going on (0..4)


def _count_groups(counts: np.ndarray, iterations: int):
    """Yield (t, positions (ys, xs), context) of the count map's binary decisions in coding order.

    At iteration t every block still going (count >= t) says whether it goes on (count > t). The two
    checkerboard halves are coded in turn, a row at a time (the counts adapt after each). A block's context is
    t, its half and how many of its already-coded neighbours go on at t: in the first half the two diagonal
    neighbours above, in the second half all four (first-half) neighbours. ``counts`` must hold every
    decision coded before the one yielded (the decoder fills it in as it goes).
    """
    h, w = counts.shape
    half_of = np.add.outer(np.arange(h), np.arange(w)) % 2
    for t in range(iterations):
        for half in (0, 1):
            for y in range(h):
                xs = np.flatnonzero((counts[y] >= t) & (half_of[y] == half))
                if not xs.size:
                    continue
                if half == 0:
                    above = np.pad(counts[y - 1] > t, 1) if y else np.zeros(w + 2, bool)
                    around = above[xs].astype(np.int64) + above[xs + 2]
                else:
                    on = np.pad(counts[max(y - 1, 0) : y + 2] > t, ((1 if y == 0 else 0, 1 if y == h - 1 else 0),
                                                                   (1, 1)))
                    around = on[0, xs + 1].astype(np.int64) + on[2, xs + 1] + on[1, xs] + on[1, xs + 2]
                ctx = np.ravel_multi_index((min(t, 3), half), _COUNT_CONTEXTS[:2]) * 5 + around
                yield t, (np.full_like(xs, y), xs), ctx


def encode_counts(counts: np.ndarray, iterations: int) -> bytes:
    """Per-block iteration counts (h, w) in 0..iterations -> bytes (adaptive binary contexts, range coded)."""
    table = np.ones((int(np.prod(_COUNT_CONTEXTS)), 2), np.int64)
    encoder = RangeEncoder()
    counts = counts.astype(np.int64)
    for t, where, ctx in _count_groups(counts, iterations):
        symbols = (counts[where] > t).astype(np.int32)
        encoder.encode(symbols, _FAMILY, table[ctx, 1] / table[ctx].sum(axis=1))
        np.add.at(table, (ctx, symbols), 1)
    return encoder.get_compressed().astype("<u4").tobytes()


def decode_counts(data: bytes, shape: tuple[int, int], iterations: int) -> np.ndarray:
    """Inverse of :func:`encode_counts`: (h, w) int64 counts; ValueError on malformed data."""
    if len(data) % 4:
        raise ValueError(f"count map has {len(data)} bytes, expected a multiple of 4")
    decoder = RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    table = np.ones((int(np.prod(_COUNT_CONTEXTS)), 2), np.int64)
    # Decided blocks hold their count; undecided ones hold `iterations` (still going) until they stop.
    counts = np.full(shape, iterations, np.int64)
    try:
        for t, where, ctx in _count_groups(counts, iterations):
            symbols = np.asarray(decoder.decode(_FAMILY, table[ctx, 1] / table[ctx].sum(axis=1)), np.int32)
            counts[where] = np.where(symbols > 0, iterations, t)
            np.add.at(table, (ctx, symbols), 1)
    except BaseException as err:  # constriction raises its own types on malformed data
        if isinstance(err, ValueError | KeyboardInterrupt):
            raise
        raise ValueError(f"count map is malformed: {err}") from err
    return counts
