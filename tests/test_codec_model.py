"""RNN codec model: shapes, progressive decoding, padding, units and reconstruction modes, SABR, weights."""

import numpy as np
import pytest
import torch

from codec.binarizer import binarize
from codec.model import RNNCodec
from codec.zoo import load, load_model, save_model

TINY = {"width": 0.0625}


def tiny(**kwargs) -> RNNCodec:
    torch.manual_seed(0)
    return RNNCodec(**TINY, **kwargs).eval()


@pytest.mark.parametrize("unit", ["lstm", "gru", "residual_gru"])
@pytest.mark.parametrize("reconstruction", ["one_shot", "additive", "scaled_additive"])
def test_forward_shapes_and_closed_loop(unit: str, reconstruction: str) -> None:
    model = tiny(unit=unit, reconstruction=reconstruction)
    x = torch.rand(2, 3, 32, 64) - 0.5
    recons = model(x, 3)
    assert len(recons) == 3 and all(r.shape == x.shape for r in recons)
    codes = model.encode(x[:1], 3)
    assert codes.bits.shape == (3, 32, 2, 4) and set(np.unique(codes.bits)) <= {-1, 1}
    # The encoder's reconstruction is the decoder's; deterministic bits match the training forward pass.
    assert torch.equal(codes.recon, model.decode(codes))
    assert torch.allclose(codes.recon, recons[-1][:1].clamp(-0.5, 0.5), atol=1e-5)


def test_progressive_prefix_decode_and_odd_size() -> None:
    model = tiny()
    x = torch.rand(1, 3, 37, 51) - 0.5
    codes = model.encode(x, 4)
    assert codes.padded_size == (64, 64) and codes.bits.shape == (4, 32, 4, 4)
    full = model(torch.nn.functional.pad(x, (0, 13, 0, 27), mode="replicate"), 4)
    for k in range(1, 5):
        out = model.decode(codes, k)
        assert out.shape == (1, 3, 37, 51)
        assert torch.allclose(out, full[k - 1].clamp(-0.5, 0.5)[..., :37, :51], atol=1e-5)
    with pytest.raises(ValueError, match="cannot decode 5"):
        model.decode(codes, 5)


def test_blocks_that_stop_get_no_bits_and_freeze() -> None:
    model = tiny()
    x = torch.rand(1, 3, 64, 64) - 0.5
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[:2, :] = False  # the top half drops its second iteration, so it finishes with one
    calls = []

    def decide(t: int, before: torch.Tensor, after: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        calls.append((t, tuple(before.shape), tuple(after.shape), tuple(bits.shape)))
        assert torch.equal(before.clamp(-0.5, 0.5), before) and not torch.equal(before, after)
        return keep if t == 1 else torch.ones(4, 4, dtype=torch.bool)

    codes = model.encode(x, 4, decide)
    assert [c[0] for c in calls] == [0, 1, 2, 3]  # every iteration is decided, the last one too
    assert calls[0][1:] == ((1, 3, 64, 64), (1, 3, 64, 64), (1, 32, 4, 4))
    assert np.all(codes.counts[:2] == 1) and np.all(codes.counts[2:] == 4)
    assert np.all(codes.bits[1:, :, :2] == 0) and np.all(codes.bits[:, :, 2:] != 0)
    rec = model.decode(codes)
    assert torch.equal(rec, codes.recon)  # the decoder step was redone without the dropped bits
    first = model.decode(codes, 1)
    assert torch.equal(rec[..., :32, :], first[..., :32, :])  # stopped blocks keep their reconstruction


def test_a_dropped_iteration_is_not_half_applied() -> None:
    """Blocks that drop an iteration decode as if it had never been computed: the same as stopping before it."""
    model = tiny()
    x = torch.rand(1, 3, 64, 64) - 0.5
    dropped = model.encode(x, 3, lambda t, *_: torch.full((4, 4), t < 2))
    stopped = model.encode(x, 2)
    assert np.array_equal(dropped.bits, stopped.bits) and torch.equal(dropped.recon, stopped.recon)


def test_nothing_kept_codes_nothing() -> None:
    model = tiny()
    codes = model.encode(torch.rand(1, 3, 64, 64) - 0.5, 4, lambda t, *_: torch.zeros(4, 4, dtype=torch.bool))
    assert codes.iterations == 1 and not codes.counts.any() and not codes.bits.any()
    assert not codes.recon.any() and torch.equal(model.decode(codes), codes.recon)


def test_coding_ends_when_every_block_has_stopped() -> None:
    model = tiny()
    codes = model.encode(torch.rand(1, 3, 64, 64) - 0.5, 6, lambda t, *_: torch.full((4, 4), t < 2))
    assert codes.iterations == 2 and np.all(codes.counts == 2)
    assert torch.equal(model.decode(codes), codes.recon)


def test_straight_through_gradient() -> None:
    x = torch.linspace(-1, 1, 101, requires_grad=True)
    for stochastic in (False, True):
        y = binarize(x, stochastic)
        assert set(y.detach().unique().tolist()) <= {-1.0, 1.0}
        (grad,) = torch.autograd.grad((y * torch.arange(101.0)).sum(), x)
        assert torch.equal(grad, torch.arange(101.0))
    model = tiny().train()
    model(torch.rand(1, 3, 32, 32) - 0.5, 2)[-1].sum().backward()
    assert model.enc_conv.weight.grad is not None and model.enc_conv.weight.grad.abs().sum() > 0


def test_stochastic_bits_are_unbiased() -> None:
    x = torch.full((20000,), 0.4)
    assert abs(float(binarize(x, True).mean()) - 0.4) < 0.03


def test_save_load_roundtrip_and_corrupt(tmp_path) -> None:
    model = tiny(unit="lstm")
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config and loaded.model_id() == model.model_id()
    (tmp_path / "m.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_model(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_model(tmp_path / "absent")
    save_model(tiny(unit="gru"), tmp_path / "g")
    (tmp_path / "m.safetensors").write_bytes((tmp_path / "g.safetensors").read_bytes())
    with pytest.raises(ValueError, match="do not match"):
        load_model(tmp_path / "m")


def test_shipped_weights_load() -> None:
    model = load()
    assert model.config.bits == 32
    x = torch.zeros(1, 3, 32, 32)
    assert model.decode(model.encode(x, 2)).shape == (1, 3, 32, 32)
