"""Recurrent layers updated only around the coded blocks (codec/sparse.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codec import sparse
from codec.layers import make_cell
from codec.model import Codes, RNNCodec
from codec.precision import compute_precision


@pytest.mark.parametrize(("kernel", "stride"), [(1, 1), (1, 2), (3, 1), (3, 2)])
def test_conv_at_equals_the_dense_convolution_there(kernel: int, stride: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 6, 11, 14)
    weight, bias = torch.randn(5, 6, kernel, kernel), torch.randn(5)
    dense = F.conv2d(x, weight, bias, stride, kernel // 2)[0]
    width = dense.shape[-1]
    index = torch.tensor([0, 3, width - 1, width, dense[0].numel() - 1])  # corners and edges: zero padding
    got = sparse.conv_at(x, weight, bias, stride, index, width)
    assert torch.allclose(got.T, dense.reshape(5, -1)[:, index], atol=1e-5)


def test_conv_at_gradients() -> None:
    torch.manual_seed(0)
    x, weight = torch.randn(1, 2, 5, 6, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    index = torch.tensor([0, 7, 29])
    assert torch.autograd.gradcheck(lambda a, w: sparse.conv_at(a, w, None, 1, index, 6), (x.requires_grad_(),
                                                                                          weight.requires_grad_()))


@pytest.mark.parametrize("unit", ["lstm", "gru", "residual_gru"])
@pytest.mark.parametrize("hidden_kernel", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dense_fraction", [1.0, 0.0])  # gathered windows, or dense convolutions then kept
def test_step_updates_the_positions_and_keeps_the_rest(unit: str, hidden_kernel: int, stride: int,
                                                        dense_fraction: float, monkeypatch) -> None:
    monkeypatch.setattr(sparse, "DENSE_FRACTION", dense_fraction)
    torch.manual_seed(1)
    cell = make_cell(unit, 5, 4, 3, stride, hidden_kernel)
    x0, x1 = torch.randn(1, 5, 12, 16), torch.randn(1, 5, 12, 16)
    out0, state = sparse.step(cell, x0, None, None)
    positions = torch.rand(12 // stride, 16 // stride) < 0.3
    out1, new = sparse.step(cell, x1, state, positions)
    dense_out, dense_state = cell(x1, state[:-1])
    assert torch.allclose(out1, torch.where(positions, dense_out, out0), atol=1e-6)
    for got, updated, old in zip(new[:-1], dense_state, state[:-1], strict=True):
        assert torch.allclose(got, torch.where(positions, updated, old), atol=1e-6)
    assert new[-1] is out1
    # From the first iteration, positions never updated hold zeros.
    first, _ = sparse.step(cell, x1, None, positions)
    assert torch.allclose(first, torch.where(positions, cell(x1, None)[0], 0.0), atol=1e-6)


def test_step_everywhere_is_the_dense_cell_exactly() -> None:
    torch.manual_seed(2)
    cell = make_cell("residual_gru", 5, 4, 3, 1, 3)
    x = torch.randn(1, 5, 8, 8)
    out, state = sparse.step(cell, x, None, torch.ones(8, 8, dtype=torch.bool))
    assert torch.equal(out, cell(x, None)[0])
    again, _ = sparse.step(cell, x, state, None)
    assert torch.equal(again, cell(x, state[:-1])[0])


def test_region_is_the_sent_blocks_and_their_neighbours() -> None:
    active = torch.zeros(5, 6, dtype=torch.bool)
    active[2, 3] = True
    expected = torch.zeros(5, 6, dtype=torch.bool)
    expected[1:4, 2:5] = True
    assert torch.equal(sparse.region(active), expected)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sparse_iterations_decode_exactly_what_the_encoder_reconstructed(precision: str, monkeypatch) -> None:
    """Later iterations keep a few blocks, so their layers run on gathered windows; the decoder must still
    reproduce the encoder's reconstruction bit for bit, at either precision."""
    torch.manual_seed(3)
    model = RNNCodec(width=0.125).eval()
    x = torch.rand(1, 3, 96, 160) - 0.5
    calls = []
    gru = sparse._gru
    monkeypatch.setattr(sparse, "_gru", lambda *a: calls.append(a[3].float().mean().item()) or gru(*a))

    def keep(t: int, before, after, bits) -> torch.Tensor:
        kept = torch.zeros(bits.shape[-2:], dtype=torch.bool)
        kept[: 3 - t % 2, : 5 - t] = True  # a shrinking corner
        return kept

    with compute_precision(precision, x.device):
        codes = model.encode(x, 4, keep=keep)
        decoded = model.decode(codes)
    assert calls and max(calls) <= sparse.DENSE_FRACTION  # the gathered path ran
    assert codes.counts.max() == 4 and (codes.counts == 0).sum() > 0
    assert torch.equal(decoded, codes.recon)


def test_training_with_block_counts_is_what_the_decoder_runs() -> None:
    """``forward(counts=...)`` (dense, one mask per image of the batch) trains the model as the coder runs it:
    unsent bits are 0, finished blocks keep their reconstruction, and :meth:`decode` of those bits and counts
    (sparse, one image) gives the same reconstruction; counts of every iteration are the plain forward exactly."""
    torch.manual_seed(4)
    model = RNNCodec(width=0.125).eval()
    x = (torch.rand(2, 3, 64, 96) - 0.5) * 0.5
    counts = torch.tensor([[[3, 0, 0, 2, 0, 1], [0, 0, 1, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 0, 0, 2, 0]],
                           [[3] * 6, [3, 2, 1, 0, 1, 2], [0] * 6, [1] * 6]])
    bits: list[torch.Tensor] = []
    with torch.no_grad():
        recons = model(x, 3, bits_out=bits, counts=counts)
        assert all(torch.equal(a, b) for a, b in zip(model(x, 3), model(x, 3, counts=torch.full_like(counts, 3)),
                                                        strict=True))
    for t, b in enumerate(bits):
        assert torch.equal(b.abs(), (counts > t)[:, None].expand_as(b).float())
    finished = (counts == 1).repeat_interleave(16, -2).repeat_interleave(16, -1)[:, None].expand_as(recons[0])
    assert torch.equal(recons[2][finished], recons[0][finished])
    never = (counts == 0).repeat_interleave(16, -2).repeat_interleave(16, -1)[:, None].expand_as(recons[0])
    assert bool((recons[2][never] == 0).all())
    for i in range(2):
        codes = Codes(bits=torch.stack([b[i] for b in bits]).to(torch.int8).numpy(),
                      counts=counts[i].to(torch.uint8).numpy(), height=64, width=96, recon=None)
        assert torch.allclose(model.decode(codes), recons[-1][i : i + 1].clamp(-0.5, 0.5), atol=1e-5)
