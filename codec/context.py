"""A learned context model for the entropy coder (the role of Toderici et al. 2017's BinaryRNN), exact everywhere.

Each bit b[t, c, y, x] is coded with a probability from a small MLP over what the decoder holds when it reaches
that bit. Channels go in the prior's order, each in two checkerboard halves (the first half of a channel, then
its second half, then the next channel), so a bit sees:

- iteration t - 1 at its block and the sum of its four neighbours, every channel (0 where not sent);
- iteration t at its block and the sum of its four neighbours, the channels coded before it;
- in the second half, the sum of its own channel's four neighbours (they are first-half blocks);
- its half, its channel and min(t, T_MAX), one-hot.

The net is static: trained offline on the codes the real coder emits (:mod:`codec.context_train`), where the
count-based coder of :mod:`codec.entropy` adapts to each image. Exact on every machine: the weights are integers
held in float32 and every activation an integer in 0..255, with every possible partial sum below 2**24 (checked
when the net is loaded), so any BLAS computes the same integers in any order; the logit is cut to 1/LOGIT_STEPS
steps and looked up in a probability table shipped with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import constriction
import numpy as np

from codec.iteration_coder import IterationCoder

T_MAX = 8  # iterations from T_MAX on share one one-hot position
LOGIT_STEPS = 16  # table entries per unit of logit
LOGIT_RANGE = 12  # logits beyond +-12 are clipped (p within 6e-6 of 0 or 1)
ACTIVATION_MAX = 255
EXACT = 1 << 24  # float32 holds every integer up to this exactly
INPUT_MAX = (4, ACTIVATION_MAX, ACTIVATION_MAX)  # largest input magnitude per layer: neighbour sums, activations
ARRAYS = ("ctx_w1", "ctx_b1", "ctx_w2", "ctx_b2", "ctx_w3", "ctx_b3", "ctx_shifts", "ctx_table")
_FAMILY = constriction.stream.model.Bernoulli(perfect=False)


def n_features(channels: int) -> int:
    """Length of a bit's feature vector for a code with ``channels`` channels."""
    return 5 * channels + 2 + T_MAX + 1


def neighbour_sum(planes: np.ndarray) -> np.ndarray:
    """(C, h, w) -> (C, h, w): the sum of each position's four neighbours (zero outside)."""
    p = np.pad(planes, ((0, 0), (1, 1), (1, 1)))
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


class IterationContext:
    """What the decoder knows while it decodes iteration ``t``: the previous iteration's bits and the channels of
    this one decoded so far. Call :meth:`features` for a group, then :meth:`set` with its bits, and
    :meth:`finish` after a channel's second half."""

    def __init__(self, previous: np.ndarray, t: int, net: ContextNet | None = None) -> None:
        channels = previous.shape[0]
        self.prev = previous.astype(np.float32)
        self.prev_nb = neighbour_sum(self.prev)
        self.cur = np.zeros_like(self.prev)
        self.cur_nb = np.zeros_like(self.prev)  # filled channel by channel, once a channel is complete
        self.channels = channels
        self.t = min(t, T_MAX)
        self.net = net
        if net is not None:
            # The net's first layer, kept up to date for every position: the parts of the features that are
            # fixed for this iteration now, each finished channel's as it finishes (see :meth:`layer1`).
            flat = np.concatenate([self.prev, self.prev_nb]).reshape(2 * channels, -1).T
            self.first = flat @ net.w1[: 2 * channels] + (net.b1 + net.w1[5 * channels + 2 + self.t])

    def features(self, c: int, half: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(n, n_features) float32 features of channel ``c``'s bits at (ys, xs), all in checkerboard ``half``."""
        n, channels = ys.size, self.channels
        out = np.zeros((n, n_features(channels)), np.float32)
        out[:, :channels] = self.prev[:, ys, xs].T
        out[:, channels : 2 * channels] = self.prev_nb[:, ys, xs].T
        out[:, 2 * channels : 3 * channels] = self.cur[:, ys, xs].T
        out[:, 3 * channels : 4 * channels] = self.cur_nb[:, ys, xs].T
        if half:
            out[:, 4 * channels] = neighbour_sum(self.cur[c : c + 1])[0, ys, xs]
        out[:, 4 * channels + 1] = half
        out[:, 4 * channels + 2 + c] = 1.0
        out[:, 5 * channels + 2 + self.t] = 1.0
        return out

    def layer1(self, c: int, half: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(n, H1) the net's first-layer sums for these bits: ``features(...) @ w1 + b1`` without forming the
        features. Every term is an integer and every partial sum below 2**24, so the two agree exactly."""
        channels, w1 = self.channels, self.net.w1
        out = self.first[ys * self.prev.shape[2] + xs] + w1[4 * channels + 2 + c]
        if half:
            own = neighbour_sum(self.cur[c : c + 1])[0, ys, xs]
            out += own[:, None] * w1[4 * channels] + w1[4 * channels + 1]
        return out

    def set(self, c: int, ys: np.ndarray, xs: np.ndarray, bits: np.ndarray) -> None:
        self.cur[c, ys, xs] = bits

    def finish(self, c: int) -> None:
        self.cur_nb[c] = neighbour_sum(self.cur[c : c + 1])[0]
        if self.net is not None:
            channels, w1 = self.channels, self.net.w1
            self.first += self.cur[c].reshape(-1, 1) * w1[2 * channels + c] + self.cur_nb[c].reshape(-1, 1) * w1[
                3 * channels + c]


def groups(active: np.ndarray, order: np.ndarray):
    """Yield (channel, half, ys, xs) in coding order: each channel's first checkerboard half, then its second."""
    yy, xx = np.mgrid[0 : active.shape[0], 0 : active.shape[1]]
    halves = [np.nonzero(active & ((yy + xx) % 2 == half)) for half in (0, 1)]
    for c in order:
        for half, (ys, xs) in enumerate(halves):
            yield int(c), half, ys, xs


@dataclass
class ContextNet:
    """Integer MLP: features -> 8-bit hidden -> 8-bit hidden -> logit index -> P(bit = +1) from ``table``.

    w1 (F, H1), w2 (H1, H2), w3 (H2, 1) and the biases: integer-valued float32. shifts (3,) int: each layer's
    sum is divided by 2**shift and floored (the last one to logit steps). table (2 * LOGIT_RANGE * LOGIT_STEPS
    + 1,) float64: P(+1) per logit step.
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray
    shifts: np.ndarray
    table: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], channels: int) -> ContextNet:
        net = cls(*(np.asarray(arrays[k]) for k in ARRAYS))
        net.check(channels)
        return net

    def arrays(self) -> dict[str, np.ndarray]:
        values = (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3, self.shifts, self.table)
        return {name: np.ascontiguousarray(a) for name, a in zip(ARRAYS, values, strict=True)}

    def check(self, channels: int) -> None:
        """ValueError unless the shapes fit ``channels`` and every sum the net can form is exact in float32."""
        for name, a in self.arrays().items():
            if name != "ctx_table" and name != "ctx_shifts" and (a.dtype != np.float32 or np.any(a != np.round(a))):
                raise ValueError(f"context net: {name} must hold integers as float32")
        h1, h2 = self.w1.shape[1], self.w2.shape[1]
        shapes = {"w1": (n_features(channels), h1), "b1": (h1,), "w2": (h1, h2), "b2": (h2,), "w3": (h2, 1),
                  "b3": (1,), "shifts": (3,), "table": (2 * LOGIT_RANGE * LOGIT_STEPS + 1,)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"context net: {name} has shape {getattr(self, name).shape}, expected {shape}")
        if np.any(self.shifts < 0) or np.any(self.shifts > 30):
            raise ValueError(f"context net: shifts {self.shifts.tolist()} must be in 0..30")
        if not np.all((self.table > 0) & (self.table < 1)):
            raise ValueError("context net: table probabilities must lie strictly between 0 and 1")
        layers = ((self.w1, self.b1), (self.w2, self.b2), (self.w3, self.b3))
        for i, ((w, b), top) in enumerate(zip(layers, INPUT_MAX, strict=True)):
            if float(np.abs(w).sum(axis=0).max()) * top + float(np.abs(b).max()) >= EXACT:
                raise ValueError(f"context net: layer {i + 1} could form sums beyond 2**24 (not exact in float32)")

    def logit_index(self, features: np.ndarray) -> np.ndarray:
        """(n, F) float32 features -> (n,) int64 index into ``table``."""
        return self.index_from_layer1(features @ self.w1 + self.b1)

    def index_from_layer1(self, sums: np.ndarray) -> np.ndarray:
        """(n, H1) first-layer sums -> (n,) int64 index into ``table``."""
        s1, s2, s3 = (float(2.0 ** -int(s)) for s in self.shifts)
        h = np.clip(np.floor(sums * s1), 0, ACTIVATION_MAX).astype(np.float32)
        h = np.clip(np.floor((h @ self.w2 + self.b2) * s2), 0, ACTIVATION_MAX).astype(np.float32)
        steps = np.floor((h @ self.w3 + self.b3)[:, 0] * s3)
        limit = LOGIT_RANGE * LOGIT_STEPS
        return np.clip(steps, -limit, limit).astype(np.int64) + limit

    def p1(self, features: np.ndarray) -> np.ndarray:
        """(n, F) features -> (n,) float64 probability that each bit is +1."""
        return self.table[self.logit_index(features)]


def probability_table() -> np.ndarray:
    """P(+1) at each logit step (computed once when a net is made, then shipped: no libm in decoding)."""
    limit = LOGIT_RANGE * LOGIT_STEPS
    logits = np.arange(-limit, limit + 1) / LOGIT_STEPS
    return 1.0 / (1.0 + np.exp(-logits))


class NetBitCoder(IterationCoder):
    """Codes the iterations of one image in order with a :class:`ContextNet` (same interface as
    :class:`codec.entropy.BitCoder`: bits (C, h, w) int8 in {-1, 0, +1}, ``active`` (h, w) bool)."""

    def __init__(self, net: ContextNet, order: np.ndarray, channels: int, previous: np.ndarray | None = None,
                 t: int = 0) -> None:
        """``previous`` and ``t``: start after iteration t - 1, whose bits were ``previous`` (default: at the start)."""
        self.net, self.order, self.channels = net, np.asarray(order), channels
        self.prev, self.t = previous, t

    def cost(self, bits: np.ndarray) -> np.ndarray:
        """(h, w) bits each block's bits (C, h, w) would cost as the next iteration (nothing is coded)."""
        costs = np.zeros(bits.shape[1:])
        self._run(bits.astype(np.int8), (bits != 0).any(axis=0), costs=costs, advance=False)
        return costs

    def _run(self, bits: np.ndarray, active: np.ndarray, encoder=None, decoder=None, costs=None,
             advance: bool = True) -> None:
        prev = self.prev if self.prev is not None else np.zeros_like(bits)
        ctx = IterationContext(prev, self.t, self.net)
        for c, half, ys, xs in groups(active, self.order):
            if ys.size:
                p1 = self.net.table[self.net.index_from_layer1(ctx.layer1(c, half, ys, xs))]
                if decoder is not None:
                    symbols = np.asarray(decoder.decode(_FAMILY, p1), dtype=np.int32)
                    bits[c, ys, xs] = np.where(symbols > 0, 1, -1)
                elif encoder is not None:
                    encoder.encode((bits[c, ys, xs] > 0).astype(np.int32), _FAMILY, p1)
                else:
                    costs[ys, xs] -= np.log2(np.where(bits[c, ys, xs] > 0, p1, 1 - p1))
                ctx.set(c, ys, xs, bits[c, ys, xs])
            if half:
                ctx.finish(c)
        if advance:
            self.prev, self.t = bits.copy(), self.t + 1
