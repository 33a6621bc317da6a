"""One iteration's recurrent layers, computed only around the blocks it codes.

Past the first iterations of a spatially adaptive code few blocks are still sent (Cityscapes P-frames at quality
34: a quarter of the blocks in the first iteration, 2 % in the fourth), yet a dense step updates every position
of every layer. Here an iteration updates the layers' states and outputs only on the blocks within one block of
a sent one (:func:`region`); the others keep theirs. Freezing every unsent block cost 0.1 dB on Cityscapes
P-frames; freezing only those further away was lossless (codec/README). A convolution at a set of positions
gathers its windows and multiplies (:func:`conv_at`).

Encoder and decoder run the same function on the same region, so the encoder's reconstruction stays the
decoder's output bit for bit. A region that covers most of the image runs the dense convolutions and keeps the
region's values: the same numbers up to rounding, chosen by the same rule on both sides.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.layers import ConvGRUCell, ConvLSTMCell, ResidualGRUCell

DENSE_FRACTION = 0.3  # regions covering more of the image than this run dense convolutions (faster there)


def region(active: Tensor) -> Tensor:
    """([B,] h, w) bool blocks sent in this iteration -> ([B,] h, w) bool blocks whose recurrent layers it updates."""
    return F.max_pool2d(active.unsqueeze(-3).float(), 3, 1, 1).squeeze(-3) > 0


def at_scale(blocks: Tensor, scale: int) -> Tensor:
    """([B,] h, w) bool blocks -> ([B,] h * scale, w * scale) bool positions of a layer with ``scale`` positions
    per block."""
    return blocks.repeat_interleave(scale, -2).repeat_interleave(scale, -1)


def rows(x: Tensor) -> Tensor:
    """(1, C, H, W) -> (H * W, C), one row per position (a view of a channels-last tensor)."""
    return x[0].permute(1, 2, 0).reshape(-1, x.shape[1])


def conv_at(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int, index: Tensor, out_width: int) -> Tensor:
    """A convolution (zero padding ``k // 2``) evaluated at some output positions.

    x (1, C, H, W); weight (Co, C, k, k); index (N,) flat indices into the (Ho, ``out_width``) output grid
    -> (N, Co), equal to ``F.conv2d(x, weight, bias, stride, k // 2)`` at those positions up to rounding.
    """
    k, (height, width) = weight.shape[-1], x.shape[-2:]
    offsets = torch.arange(k, device=x.device) - k // 2
    ys = (index // out_width * stride)[:, None, None] + offsets[:, None]  # (N, k, 1)
    xs = (index % out_width * stride)[:, None, None] + offsets  # (N, 1, k)
    flat = (ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)).reshape(-1)
    windows = rows(x)[flat]  # (N * k * k, C)
    if k > 1:  # zero padding: windows reaching past the border
        inside = ((ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)).reshape(-1, 1)
        windows = windows * inside
    out = windows.reshape(index.numel(), k * k * x.shape[1]) @ weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).T
    return out if bias is None else out + bias


def step(cell: nn.Module, x: Tensor, state: tuple | None, positions: Tensor | None) -> tuple[Tensor, tuple]:
    """One iteration of a recurrent ``cell`` (:mod:`codec.layers`), updated only at ``positions``.

    x (1, Cin, H, W) the input; ``state`` None (first iteration) or what the last step returned: the cell's
    state followed by its output. positions (Ho, Wo) bool at the cell's output size, or None for all.
    -> (output (1, Cout, Ho, Wo), new state): outside ``positions`` the old state and output (zero at first).
    A batch (B, Cin, H, W) takes positions (B, Ho, Wo), one mask per image (training), and runs dense.
    """
    cell_state = None if state is None else state[:-1]
    if positions is None or bool(positions.all()):
        out, new = cell(x, cell_state)
        return out, (*new, out)
    if state is None:  # nothing computed yet: frozen positions hold zeros
        zeros = x.new_zeros(x.shape[0], cell.hidden, *positions.shape[-2:])
        cell_state = (zeros, zeros) if isinstance(cell, ConvLSTMCell) else (zeros,)
        out_before = zeros
    else:
        out_before = state[-1]
    if not bool(positions.any()):
        return out_before, (*cell_state, out_before)
    if positions.dim() == 3 or positions.float().mean() > DENSE_FRACTION:
        out, new = cell(x, cell_state)
        keep = positions.view(-1, 1, *positions.shape[-2:])
        out = torch.where(keep, out, out_before)
        return out, (*(torch.where(keep, a, b) for a, b in zip(new, cell_state, strict=True)), out)
    index = positions.reshape(-1).nonzero()[:, 0]
    width = positions.shape[1]
    if isinstance(cell, ConvLSTMCell):
        new_values, out_values = _lstm(cell, x, cell_state, index, width)
    elif isinstance(cell, ConvGRUCell):
        new_values, out_values = _gru(cell, x, cell_state[0], positions, index, width)
    else:
        raise TypeError(f"no sparse step for {type(cell).__name__}")
    out = _scatter(out_before, out_values, index)
    return out, (*(_scatter(a, v, index) for a, v in zip(cell_state, new_values, strict=True)), out)


def _scatter(full: Tensor, values: Tensor, index: Tensor) -> Tensor:
    """A channels-last copy of ``full`` (1, C, H, W) with ``values`` (N, C) at flat positions ``index``."""
    out = torch.empty_like(full, memory_format=torch.channels_last).copy_(full)
    rows(out)[index] = values.to(out.dtype)  # under bf16 autocast the two can differ
    return out


def _lstm(cell: ConvLSTMCell, x: Tensor, state: tuple, index: Tensor, width: int) -> tuple[tuple, Tensor]:
    h, c = state
    gates = (conv_at(x, cell.conv_x.weight, cell.conv_x.bias, cell.stride, index, width)
             + conv_at(h, cell.conv_h.weight, None, 1, index, width))
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * rows(c)[index] + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return (h_new, c_new), h_new


def _gru(cell: ConvGRUCell, x: Tensor, h: Tensor, positions: Tensor, index: Tensor,
         width: int) -> tuple[tuple, Tensor]:
    n, stride = cell.hidden, cell.stride
    wx, bx, wh = cell.conv_x.weight, cell.conv_x.bias, cell.conv_h.weight
    # The candidate's hidden convolution sees the reset-gated state around each position: with a k x k hidden
    # kernel the gates are needed on the positions within k // 2 of the region too.
    reach = wh.shape[-1] // 2
    gated = positions if not reach else F.max_pool2d(positions[None, None].float(), 2 * reach + 1, 1, reach)[0, 0] > 0
    gate_index = gated.reshape(-1).nonzero()[:, 0]
    zr = (conv_at(x, wx[: 2 * n], bx[: 2 * n], stride, gate_index, width)
          + conv_at(h, wh[: 2 * n], None, 1, gate_index, width))
    z, r = torch.sigmoid(zr).chunk(2, dim=1)
    h_rows = rows(h)
    gated_h = _scatter(h, r * h_rows[gate_index], gate_index)
    hn = conv_at(gated_h, wh[2 * n :], None, 1, index, width)
    xn = conv_at(x, wx[2 * n :], bx[2 * n :], stride, index, width)
    if reach:
        z = z[torch.searchsorted(gate_index, index)]
    h_old = h_rows[index]
    h_new = (1 - z) * h_old + z * torch.tanh(xn + hn)
    out = h_new
    if isinstance(cell, ResidualGRUCell):
        out = h_new + conv_at(x, cell.skip.weight, None, stride, index, width)
    return (h_new,), out
