"""Convolutional recurrent cells: ConvLSTM, ConvGRU and the paper's residual GRU.

Every cell maps ``(x (B, Cin, H, W), state)`` to ``(output (B, Cout, H/s, W/s), new_state)``; ``state`` is
``None`` on the first iteration (zeros are made to match the input). The input convolution carries the
stride, so a cell can downsample like the encoder's layers in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, ...]


class _ConvCell(nn.Module):
    """Shared plumbing: input conv (kernel, stride) and hidden conv producing ``gates * hidden`` channels."""

    gates = 1

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, stride: int = 1, hidden_kernel: int = 1) -> None:
        super().__init__()
        self.hidden = hidden
        self.stride = stride
        self.conv_x = nn.Conv2d(in_ch, self.gates * hidden, kernel, stride, kernel // 2)
        self.conv_h = nn.Conv2d(hidden, self.gates * hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)

    def _zeros(self, x: Tensor) -> Tensor:
        h, w = -(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride)
        return x.new_zeros(x.shape[0], self.hidden, h, w)


class ConvLSTMCell(_ConvCell):
    """Convolutional LSTM (1zb / Toderici): state ``(h, c)``, output ``h``."""

    gates = 4

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        h, c = state if state is not None else (self._zeros(x), self._zeros(x))
        i, f, g, o = (self.conv_x(x) + self.conv_h(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvGRUCell(_ConvCell):
    """Convolutional GRU: state ``(h,)``, output ``h``."""

    gates = 3

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        xz, xr, xn = self.conv_x(x).chunk(3, dim=1)
        if state is None:  # h = 0: every hidden convolution is exactly zero, so skip them
            z = torch.sigmoid(xz)
            h = z * torch.tanh(xn)
            return h, (h,)
        h = state[0]
        # The candidate uses the reset-gated hidden state, so its third of the hidden conv runs separately.
        weight, pad, n = self.conv_h.weight, self.conv_h.padding, self.hidden
        hz, hr = F.conv2d(h, weight[: 2 * n].contiguous(), None, 1, pad).chunk(2, dim=1)
        z, r = torch.sigmoid(xz + hz), torch.sigmoid(xr + hr)
        hn = F.conv2d(r * h, weight[2 * n :].contiguous(), None, 1, pad)
        h = (1 - z) * h + z * torch.tanh(xn + hn)
        return h, (h,)


class ResidualGRUCell(ConvGRUCell):
    """The paper's hybrid "residual GRU": a ConvGRU whose output adds a (strided 1x1) projection of its input."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, stride: int = 1, hidden_kernel: int = 1) -> None:
        super().__init__(in_ch, hidden, kernel, stride, hidden_kernel)
        self.skip = nn.Conv2d(in_ch, hidden, 1, stride, bias=False)

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        h, new_state = super().forward(x, state)
        return h + self.skip(x), new_state


CELLS: dict[str, type[_ConvCell]] = {"lstm": ConvLSTMCell, "gru": ConvGRUCell, "residual_gru": ResidualGRUCell}


def make_cell(unit: str, in_ch: int, hidden: int, kernel: int = 3, stride: int = 1,
              hidden_kernel: int = 1) -> _ConvCell:
    """Build a recurrent cell by name (``lstm``, ``gru`` or ``residual_gru``)."""
    if unit not in CELLS:
        raise ValueError(f"recurrent unit {unit!r} is unknown; expected one of {sorted(CELLS)}")
    return CELLS[unit](in_ch, hidden, kernel, stride, hidden_kernel)
