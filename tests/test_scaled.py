"""Decoder heads that decode the same codes at 1/2 and 1/4 size (codec/scaled.py): shapes, adaptive blocks,
training, weights and errors. Small random-weight models keep it fast."""

import cv2
import numpy as np
import pytest
import torch

from codec.coder import ImageCodec, to_tensor
from codec.data import CropSource
from codec.model import ModelConfig, RNNCodec
from codec.restoration_train import FitConfig
from codec.scaled import (
    HeadConfig,
    ScaledHead,
    factor_of,
    head_stem,
    load_head,
    load_heads,
    save_head,
    with_memory,
)
from codec.scaled_train import HeadSet, code_batch, head_loss, train_heads


def _model(seed: int = 0, condition: bool = False) -> RNNCodec:
    torch.manual_seed(seed)
    return RNNCodec(ModelConfig(width=0.125, condition=condition)).eval()


def _image(h: int = 80, w: int = 112, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def _head(model: RNNCodec, factor: int) -> ScaledHead:
    """A head with a non-zero output layer (a new one outputs zeros until trained)."""
    head = ScaledHead(model, HeadConfig(factor)).eval()
    torch.nn.init.normal_(head.out.weight, std=0.05)
    return head


def _with_heads(model: RNNCodec) -> ImageCodec:
    return ImageCodec(model, None, {f: _head(model, f) for f in (2, 4)})


@pytest.mark.parametrize(("scale", "shape"), [(1.0, (80, 112, 3)), (0.5, (40, 56, 3)), (0.25, (20, 28, 3))])
def test_one_stream_decodes_at_each_size(scale, shape):
    codec = _with_heads(_model())
    data = codec.compress(_image(), 3)
    assert codec.decompress(data, scale=scale).shape == shape
    assert codec.decompress(data, 2, scale=scale).shape == shape


def test_odd_sizes_round_up_and_uncoded_blocks_stay_empty_at_every_size():
    codec = _with_heads(_model())
    x = to_tensor(_image(70, 100))  # padded to 96 x 128: 6 x 8 blocks
    active = torch.ones(6, 8, dtype=torch.bool)
    active[:, :4] = False  # the left half is never coded
    codes = codec.encode(x, 2, active=active)
    for scale, factor in ((0.5, 2), (0.25, 4)):
        small = codec.decode(codes, scale=scale)
        assert small.shape == (1, 3, -(-70 // factor), -(-100 // factor))
        assert torch.all(small[..., : 64 // factor] == 0)  # four 16-px blocks = 64 px, scaled
        assert torch.any(small[..., 64 // factor :] != 0)


def test_a_conditional_model_decodes_with_its_condition_at_the_reduced_size():
    model = _model(condition=True)
    codec = _with_heads(model)
    x, cond = to_tensor(_image(64, 96, 1)) * 0.1, to_tensor(_image(64, 96, 2))
    codes = codec.encode(x, 2, cond=cond)
    small_cond = torch.nn.functional.avg_pool2d(cond, 2)
    assert codec.decode(codes, cond=small_cond, scale=0.5).shape == (1, 3, 32, 48)
    with pytest.raises(ValueError, match="condition image"):
        codec.decode(codes, cond=cond, scale=0.5)  # the full-size condition


def test_unsupported_scales_and_missing_heads_are_clear_errors():
    data = _with_heads(_model()).compress(_image(), 1)
    with pytest.raises(ValueError, match=r"scale=0.3 is not supported; expected one of 1.0, 0.5, 0.25"):
        _with_heads(_model()).decompress(data, scale=0.3)
    with pytest.raises(ValueError, match=r"scale=0.5 is not supported; expected one of 1.0$"):
        ImageCodec(_model()).decompress(data, scale=0.5)
    assert factor_of(0.25) == 4 and factor_of(1) == 1


def test_heads_are_saved_beside_their_model_and_refuse_another_trunk(tmp_path):
    model = _model()
    codec = _with_heads(model)
    for factor, head in codec.heads.items():
        save_head(head, model, head_stem(tmp_path / "m", factor))
    loaded = load_heads(tmp_path / "m", model)
    data = codec.compress(_image(), 2)
    assert np.array_equal(ImageCodec(model, None, loaded).decompress(data, scale=0.25),
                          codec.decompress(data, scale=0.25))
    with pytest.raises(ValueError, match="trained for model"):
        load_head(head_stem(tmp_path / "m", 2), _model(seed=1))


def test_training_closes_the_gap_to_full_decode_then_downscale_and_resumes(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)  # blocks of flat colour: what a random model's bits can tell apart
    images = [cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (128, 128),
                         interpolation=cv2.INTER_NEAREST) for _ in range(8)]
    cfg = FitConfig(steps=150, batch=4, crop=64, lr=1e-2, lr_min=1e-3, max_minutes=None,
                                 checkpoint_every=20, seed=0, threads=1)
    heads = HeadSet(factors=[2, 4], hidden=16)
    train_heads(model, heads, CropSource(images), FitConfig(**{**cfg.__dict__, "steps": 20}), 2,
                tmp_path, {"model": "test"})
    last = train_heads(model, heads, CropSource(images), cfg, 2, tmp_path, {"model": "test"}, reuse=3)  # resumes
    assert (tmp_path / "log.csv").read_text().count("\n") == 151  # header + 150 steps, none twice
    trained = torch.nn.ModuleDict({str(f): load_head(head_stem(last, f), model) for f in heads.factors})
    fresh = torch.nn.ModuleDict({str(f): ScaledHead(model, HeadConfig(f, heads.hidden)) for f in (2, 4)})
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    coded = code_batch(model, batch, 2, heads.factors)
    with torch.no_grad():
        before, baseline = head_loss(model, fresh, coded)
        after, _ = head_loss(model, trained, coded)
    # log squared error: a random model's full decode is barely better than grey (the new head's zeros); the
    # trained head beats both by 8 % of squared error or more (measured: 11 %)
    assert float(after) < min(float(before), baseline) - 0.08
    with pytest.raises(ValueError, match="another out_dir"):
        train_heads(model, HeadSet(factors=[2], hidden=8), CropSource(images), cfg, 2, tmp_path, {})


def test_a_head_reads_the_full_decoders_own_third_layer_and_starts_silent():
    model = _model()
    seen = []
    hook = model.dec_rnn[2].register_forward_hook(lambda _m, _i, out: seen.append(out[0]))
    bits = torch.randn(1, model.config.bits, 4, 6).sign()
    with torch.no_grad():
        model.decode_step(bits, None)
        hook.remove()
        features, _ = model.decode_trunk(bits, [None] * ScaledHead.trunk)
        out, state = ScaledHead(model, HeadConfig(2))(features)
    assert torch.equal(features, seen[0])  # (1, C, 16, 24): the exact trunk, at H/4
    assert out.shape == (1, 3, 32, 48) and torch.count_nonzero(out) == 0  # outputs zeros until trained
    assert state is None  # no memory


def test_a_head_grown_a_memory_starts_as_the_head_it_grew_from_and_decodes_sparsely():
    model = _model()
    head = _head(model, 2)
    grown = with_memory(head, model, 8).eval()
    codec = ImageCodec(model, None, {2: head})
    x = to_tensor(_image(64, 96))
    active = torch.ones(4, 6, dtype=torch.bool)
    active[:, :3] = False
    codes = codec.encode(x, 3, active=active)
    torch.nn.init.normal_(grown.cell.conv_x.weight, std=0.5)  # a state that moves; its output weights are zero
    # equal up to float rounding (the output convolution sums more, zero-weighted, channels)
    assert torch.allclose(ImageCodec(model, None, {2: grown}).decode(codes, scale=0.5),
                          codec.decode(codes, scale=0.5), atol=1e-6)
    torch.nn.init.normal_(grown.out.weight, std=0.05)
    small = ImageCodec(model, None, {2: grown}).decode(codes, scale=0.5)
    assert small.shape == (1, 3, 32, 48) and torch.all(small[..., :24] == 0) and torch.any(small[..., 24:] != 0)
    with pytest.raises(ValueError, match="memory already"):
        with_memory(grown, model, 8)


def test_memory_heads_train_from_the_heads_they_grow_from(tmp_path):
    model = _model()
    for factor in (2, 4):
        save_head(_head(model, factor), model, head_stem(tmp_path / "m", factor))
    rng = np.random.default_rng(0)
    images = [cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64),
                         interpolation=cv2.INTER_NEAREST) for _ in range(4)]
    cfg = FitConfig(steps=3, batch=2, crop=64, lr=1e-3, lr_min=1e-4, max_minutes=None, checkpoint_every=3, seed=0,
                    threads=1)
    heads = HeadSet(factors=[2], hidden=32, memory=4, init=str(tmp_path / "m"))
    last = train_heads(model, heads, CropSource(images), cfg, 2, tmp_path / "run", {"model": "test"})
    trained = load_head(head_stem(last, 2), model)
    assert trained.config.memory == 4 and trained.cell is not None
    again = train_heads(model, HeadSet(factors=[2], hidden=32, memory=4, init=str(last)), CropSource(images), cfg, 2,
                        tmp_path / "again", {"model": "test"})  # heads with a memory go on as they are
    assert load_head(head_stem(again, 2), model).config.memory == 4
    with pytest.raises(ValueError, match="hidden=32 and memory=4"):
        train_heads(model, HeadSet(factors=[2], hidden=32, memory=8, init=str(last)), CropSource(images), cfg, 2,
                    tmp_path / "grown", {})
    with pytest.raises(ValueError, match="hidden=32"):
        train_heads(model, HeadSet(factors=[2], hidden=16, memory=4, init=str(tmp_path / "m")), CropSource(images),
                    cfg, 2, tmp_path / "other", {})
