"""The binarizer: 1x1 conv, tanh, then sign (stochastic with a straight-through gradient in training)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _StraightThrough(torch.autograd.Function):
    """Forward: the given bits exactly; backward: the gradient passes to ``x`` unchanged."""

    @staticmethod
    def forward(ctx, x: Tensor, bits: Tensor) -> Tensor:  # noqa: ARG004
        return bits

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ARG004
        return grad, None


def binarize(x: Tensor, stochastic: bool) -> Tensor:
    """Map ``x`` in [-1, 1] to {-1, +1}, any shape.

    Stochastic mode draws +1 with probability (1 + x) / 2 (an unbiased estimate of ``x``, Toderici 2016);
    the gradient passes straight through as if the map were the identity. Deterministic mode is sign with
    sign(0) = +1, so every output is a real bit.
    """
    if stochastic:
        bits = torch.where(torch.rand_like(x) < (1 + x) / 2, 1.0, -1.0).to(x.dtype)
    else:
        bits = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    # Not ``x + (bits - x).detach()``: its rounding gives 0.99999994 instead of 1.
    return _StraightThrough.apply(x, bits)


class Binarizer(nn.Module):
    """(B, C, h, w) features -> (B, bits, h, w) values in {-1, +1}."""

    def __init__(self, in_ch: int, bits: int = 32) -> None:
        super().__init__()
        self.bits = bits
        self.conv = nn.Conv2d(in_ch, bits, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return binarize(torch.tanh(self.conv(x)), stochastic=self.training)
