"""Train the learned context model (:mod:`codec.context`) on the codes a model really emits.

    python -m codec.context_train STEM CODES.npz ... [--val CODES.npz ...] [--out STEM2]

Each ``.npz`` holds one coded image's ``bits`` (T, C, h, w) int8 and ``counts`` (h, w) (written by
``python -m pipeline.video.closed_loop_data --codes``). The net learns P(bit | context) in float, is quantised to
the integer net the coder runs, and is written with the channel order of ``STEM``'s prior into
``OUT.entropy.safetensors`` (default: ``STEM``'s own, replacing it). Prints coded bits per raw bit of the
integer net and of the count-based prior on the training and ``--val`` codes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import nn

from atomic import temporary_path
from codec.context import (
    ACTIVATION_MAX,
    EXACT,
    INPUT_MAX,
    LOGIT_STEPS,
    ContextNet,
    IterationContext,
    groups,
    n_features,
    probability_table,
)
from codec.entropy import Prior, bit_coder

HIDDEN = (64, 32)
WEIGHT_MAX = (1023, 511, 1023)  # integer weight magnitude per layer (see quantise: sums stay below 2**24)


def bit_features(bits: np.ndarray, counts: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every transmitted bit of a code, in coding order: features (n, F) float32 and targets (n,) (1 = +1)."""
    features, targets = [], []
    prev = np.zeros_like(bits[0])
    for t in range(bits.shape[0]):
        active = counts > t
        ctx = IterationContext(prev, t)
        for c, half, ys, xs in groups(active, order):
            if ys.size:
                features.append(ctx.features(c, half, ys, xs))
                targets.append((bits[t, c, ys, xs] > 0).astype(np.float32))
                ctx.set(c, ys, xs, bits[t, c, ys, xs])
            if half:
                ctx.finish(c)
        prev = bits[t]
    return np.concatenate(features), np.concatenate(targets)


def train_float(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(x.shape[1], HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                        nn.Linear(HIDDEN[1], 1))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * math.ceil(len(yt) / 4096)
    optim = torch.optim.Adam(net.parameters(), 2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(yt)).split(4096):
            loss = nn.functional.binary_cross_entropy_with_logits(net(xt[idx])[:, 0], yt[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
            schedule.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}: {total / len(yt) / math.log(2):.4f} bits per bit (float net)", flush=True)
    return net


def quantise(net: nn.Sequential, x: np.ndarray) -> ContextNet:
    """The float net as the integer :class:`ContextNet`; activation shifts from the 99.9th percentile on ``x``."""
    layers = [m for m in net if isinstance(m, nn.Linear)]
    weights = [layer.weight.detach().double().numpy().T for layer in layers]
    biases = [layer.bias.detach().double().numpy() for layer in layers]
    scale_in = 1.0  # integer input = real input x scale_in
    ints, shifts = [], []
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w_real = w / scale_in
        # The largest power of two that keeps weights within WEIGHT_MAX and every sum below 2**24.
        q = math.floor(math.log2(WEIGHT_MAX[i] / np.abs(w_real).max()))
        while (np.abs(np.round(w_real * 2**q)).sum(axis=0).max() * INPUT_MAX[i] + np.abs(np.round(b * 2**q)).max()
               >= EXACT):
            q -= 1
        wi = np.ascontiguousarray(np.round(w_real * 2**q), dtype=np.float32)  # C order: files store the buffer
        bi = np.round(b * 2**q).astype(np.float32)
        if i < 2:
            pre = h @ w + b  # real pre-activation
            top = max(float(np.percentile(np.maximum(pre, 0), 99.9)) * 2**q, 1.0)
            shift = max(0, math.ceil(math.log2(top / ACTIVATION_MAX)))
            scale_in = 2.0 ** (q - shift)
            h = np.maximum(pre, 0)
        else:  # the last layer's sum divided by 2**shift is the logit in 1/LOGIT_STEPS steps
            shift = q - int(math.log2(LOGIT_STEPS))
            if shift < 0:
                raise ValueError("context net: the last layer's weights are too large to quantise")
        ints += [wi, bi]
        shifts.append(shift)
    return ContextNet(*ints, np.array(shifts, np.int64), probability_table())


def coded_bits(net: ContextNet | None, prior: Prior, codes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """(coded bits, raw bits) of ``codes`` with the context net (None: the prior's counts)."""
    coded = raw = 0
    for bits, counts in codes:
        coder = bit_coder(bits.shape[1], Prior(prior.counts, prior.order, prior.parents, net))
        for t in range(bits.shape[0]):
            coded += 8 * len(coder.encode(bits[t], counts > t))
            raw += int((counts > t).sum()) * bits.shape[1]
    return coded, raw


def load_codes(paths: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    codes = []
    for path in paths:
        with np.load(path) as data:
            codes.append((data["bits"].astype(np.int8), data["counts"].astype(np.int64)))
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stem", type=Path, help="the model's weights stem; its entropy prior gives the order")
    parser.add_argument("codes", type=Path, nargs="+")
    parser.add_argument("--val", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, help="write OUT.entropy.safetensors (default: STEM's)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    prior_path = args.stem.with_name(args.stem.name + ".entropy.safetensors")
    arrays = load_file(str(prior_path))
    channels = int(np.asarray(arrays["order"]).size)
    prior = Prior.from_arrays(arrays, channels)
    train = load_codes(args.codes)
    x, y = zip(*(bit_features(bits, counts, prior.order) for bits, counts in train), strict=True)
    x, y = np.concatenate(x), np.concatenate(y)
    if x.shape[1] != n_features(channels):
        raise SystemExit(f"features have {x.shape[1]} columns, expected {n_features(channels)}")
    print(f"{len(y)} bits from {len(train)} codes", flush=True)
    net = quantise(train_float(x, y, args.epochs), x)
    for name, codes in (("train", train), ("val", load_codes(args.val))):
        if codes:
            (new, raw), (old, _) = coded_bits(net, prior, codes), coded_bits(None, prior, codes)
            print(f"{name}: coded/raw {new / raw:.4f} with the net, {old / raw:.4f} with the counts "
                  f"({new / old - 1:+.1%})", flush=True)
    out = args.out or args.stem
    path = out.with_name(out.name + ".entropy.safetensors")
    with temporary_path(path) as tmp:
        save_file(Prior(prior.counts, prior.order, prior.parents, net).arrays(), str(tmp))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
