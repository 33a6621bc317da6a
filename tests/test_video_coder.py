"""The closed-loop video coder with small random-weight codecs: exactness, modes, rate control, errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from codec.coder import ImageCodec
from codec.model import ModelConfig, RNNCodec
from flow.motion import BlockMotion
from flow.vector_coding import stream_block
from pipeline.frames import Frame
from pipeline.video import container
from pipeline.video.coder import VideoCoder
from pipeline.video.rate import RateControl

SIZE = (160, 96)  # not a multiple of 32 in height: exercises padding


def _codec(seed: int) -> ImageCodec:
    torch.manual_seed(seed)
    return ImageCodec(RNNCodec(ModelConfig(width=0.125)).eval())


@pytest.fixture(scope="module")
def codecs():
    return _codec(0), _codec(1)


@pytest.fixture(scope="module")
def frames():
    """Four frames of a textured scene panning right by 3 px a frame."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (SIZE[1], SIZE[0] + 40, 3), dtype=np.uint8), (5, 5), 0)
    return [np.ascontiguousarray(base[:, 3 * i : 3 * i + SIZE[0]]) for i in range(4)]


def _code(coder: VideoCoder, frames):
    names = [f"f{i}.png" for i in range(len(frames))]
    coded = list(coder.encode(Frame(f, n, i) for i, (f, n) in enumerate(zip(frames, names, strict=True))))
    data = container.encode_header(coder.header(names, *frames[0].shape[:2]))
    data += b"".join(container.encode_record(c.record) for c in coded)
    return coded, data


@pytest.mark.parametrize(("mode", "rate"), [("intra", RateControl("iterations", iterations=2)),
                                            ("diff", RateControl("iterations", iterations=2)),
                                            ("mc", RateControl("iterations", iterations=2)),
                                            ("mc", RateControl("rdo", quality=20, max_iterations=3)),
                                            ("mc", RateControl("rdo", quality=20, distortion="ssim")),
                                            ("mc", RateControl("rdo", quality=20, distortion="flow")),
                                            ("mc", RateControl("rdo", quality=20, aq_strength=0.0)),
                                            ("mc", RateControl("rdo", quality=20, propagation=2.0, lookahead=2)),
                                            ("intra", RateControl("rdo", quality=20, max_iterations=3)),
                                            ("mc", RateControl("bpp", max_iterations=4, bpp=0.3))])
def test_decoder_reproduces_encoder_bit_for_bit(codecs, frames, mode, rate):
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode=mode, gop=3, rate=rate)
    coded, data = _code(coder, frames)
    decoded = list(coder.decode(data))
    assert [name for name, _ in decoded] == ["f0.png", "f1.png", "f2.png", "f3.png"]
    for c, (_, image) in zip(coded, decoded, strict=True):
        assert image.shape == frames[0].shape and image.dtype == np.uint8
        assert np.array_equal(c.decoded, image)
    expected = ["I"] * 4 if mode == "intra" else ["I", "P", "P", "I"]
    assert [c.record.type for c in coded] == expected


def test_rdo_with_coarse_motion_fields_decodes_bit_for_bit(codecs, frames):
    # With alternatives, each P-frame may send a 32x32 field or merged regions (vectors dearer at quality 63).
    motion = BlockMotion(search=16, alternatives=[[32, True], [32, False]])
    vector_bytes = []
    for quality in (10, 63):
        coder = VideoCoder(*codecs, motion, mode="mc", gop=4, rate=RateControl(quality=quality))
        coded, data = _code(coder, frames)
        for c, (_, image) in zip(coded, coder.decode(data), strict=True):
            assert np.array_equal(c.decoded, image)
        assert all(stream_block(c.record.blobs[0]) in (16, 32) for c in coded[1:])
        vector_bytes.append(sum(len(c.record.blobs[0]) for c in coded[1:]))
    assert vector_bytes[1] <= vector_bytes[0]


def test_rdo_quality_trades_bits_for_distortion(codecs, frames):
    results = []
    for quality in (10, 30, 50):
        coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", rate=RateControl(quality=quality))
        coded, _ = _code(coder, frames)
        error = np.mean([np.mean((c.decoded.astype(float) - f) ** 2) for c, f in zip(coded, frames, strict=True)])
        results.append((sum(c.bits for c in coded), error))
    (bits_hi, err_hi), (bits_mid, err_mid), (bits_lo, err_lo) = results
    assert bits_hi > bits_mid > bits_lo and err_hi < err_mid < err_lo


def test_rdo_skips_p_frame_blocks_the_prediction_already_gets_right(codecs, frames):
    # A still scene: after the I-frame, coding a residual buys nothing, so every P-frame block is skipped.
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", rate=RateControl(quality=30))
    coded, _ = _code(coder, [frames[0]] * 3)
    assert coded[0].skipped == 0.0
    assert all(p.skipped == 1.0 and p.iterations == 0.0 for p in coded[1:])


def test_rdo_gives_i_frames_a_lower_lambda(codecs, frames):
    rate = RateControl(quality=30, ip_ratio=4.0)
    assert rate.lagrangian("I") == pytest.approx(rate.lagrangian("P") / 4)
    assert RateControl(quality=33).lagrangian("P") == pytest.approx(2 * rate.lagrangian("P"))
    from codec.zoo import WEIGHTS_DIR

    trained = (ImageCodec.load(WEIGHTS_DIR / "intra"), codecs[1])  # random weights gain nothing past iteration 1
    flat = VideoCoder(*trained, BlockMotion(search=16), mode="intra", rate=RateControl(quality=30, ip_ratio=1.0))
    boosted = VideoCoder(*trained, BlockMotion(search=16), mode="intra", rate=rate)
    assert _code(boosted, frames[:1])[0][0].bits > _code(flat, frames[:1])[0][0].bits


def test_p_frames_skip_blocks_whose_prediction_is_good_enough(codecs, frames):
    # A still scene and a skip threshold every prediction of it reaches: P-frames send vectors only.
    rate = RateControl("iterations", iterations=2, psnr=5.0)
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", rate=rate)
    coded, _ = _code(coder, [frames[0]] * 3)
    for p in coded[1:]:
        assert p.skipped == 1.0 and p.iterations == 0.0
        assert p.residual_bits < coded[0].residual_bits / 4


def test_skip_off_codes_every_block(codecs, frames):
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc",
                       rate=RateControl("iterations", iterations=2, skip=False))
    coded, _ = _code(coder, [frames[0]] * 3)
    assert all(c.skipped == 0.0 for c in coded)


def test_bpp_mode_keeps_to_the_budget(codecs, frames):
    rate = RateControl("bpp", max_iterations=6, bpp=0.15)
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="intra", rate=rate)
    coded, _ = _code(coder, frames[:2])
    pixels = SIZE[0] * SIZE[1]
    for c in coded:
        assert c.iterations < 6  # the budget cut iterations
        assert c.bits <= 0.15 * pixels or c.iterations <= 1


def test_more_iterations_cost_more_bits(codecs, frames):
    low = VideoCoder(*codecs, BlockMotion(search=16), mode="intra", rate=RateControl("iterations", iterations=1))
    high = VideoCoder(*codecs, BlockMotion(search=16), mode="intra", rate=RateControl("iterations", iterations=4))
    (c_low,), _ = _code(low, frames[:1])
    (c_high,), _ = _code(high, frames[:1])
    assert c_high.bits > c_low.bits


def test_wrong_weights_and_damage_give_clear_errors(codecs, frames):
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", rate=RateControl("iterations", iterations=1))
    _, data = _code(coder, frames[:3])
    other = VideoCoder(_codec(5), codecs[1], BlockMotion(search=16))
    with pytest.raises(ValueError, match="intra model"):
        list(other.decode(data))
    for motion in (BlockMotion(search=16, obmc=False), BlockMotion(search=16, interpolation="cubic")):
        with pytest.raises(ValueError, match="motion settings"):
            list(VideoCoder(*codecs, motion).decode(data))
    with pytest.raises(ValueError, match=r"frame 2 \(f2.png\)"):
        list(coder.decode(data[:-3]))


def test_bad_configuration_is_rejected(codecs):
    with pytest.raises(ValueError, match="mode='fast'"):
        VideoCoder(*codecs, BlockMotion(), mode="fast")
    with pytest.raises(ValueError, match="rate.mode"):
        RateControl("constant")
    with pytest.raises(ValueError, match="rate.distortion"):
        RateControl(distortion="vmaf")
    with pytest.raises(ValueError, match="rate.quality"):
        RateControl(quality=-1)


def test_conditional_residual_model_decodes_bit_for_bit(codecs, frames):
    torch.manual_seed(3)
    model = RNNCodec(ModelConfig(width=0.125, condition=True)).eval()
    with torch.no_grad():
        for conv in (model.enc_cond, *model.dec_cond):
            conv.weight.normal_(0, 0.1)  # trained-looking: the prediction changes what is coded
    coder = VideoCoder(codecs[0], ImageCodec(model), BlockMotion(search=16), mode="mc",
                       rate=RateControl(quality=20))
    coded, data = _code(coder, frames)
    for c, (_, image) in zip(coded, coder.decode(data), strict=True):
        assert np.array_equal(c.decoded, image)
    assert coded[1].prediction is not None and coded[1].prediction.shape == frames[0].shape


def test_bf16_streams_name_their_precision_and_decode_bit_for_bit_with_it(codecs, frames):
    rate = RateControl(quality=20, max_iterations=3)
    bf16 = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", gop=3, rate=rate, precision="bf16")
    coded, data = _code(bf16, frames)
    assert container.decode_header(data)[0]["precision"] == "bf16"
    fp32 = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", gop=3, rate=rate)
    for c, (_, image) in zip(coded, fp32.decode(data), strict=True):  # the stream's precision, not the coder's
        assert np.array_equal(c.decoded, image)
    reference, _ = _code(fp32, frames)
    assert any(not np.array_equal(a.decoded, b.decoded) for a, b in zip(coded, reference, strict=True))
    with pytest.raises(ValueError, match="precision='fp16'"):
        VideoCoder(*codecs, BlockMotion(), precision="fp16")


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(native, expected, monkeypatch):
    from codec import precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision.resolve("auto", torch.device("cpu")) == expected
    assert precision.resolve("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision='half'"):
        precision.resolve("half", torch.device("cpu"))


def test_evaluation_adapter_builds_the_run_coder():
    from omegaconf import OmegaConf

    from codec.zoo import WEIGHTS_DIR
    from pipeline.evaluation.rnn import RNNVideoCodec

    codec_cfg = {"weights": str(WEIGHTS_DIR / "intra"), "residual_weights": str(WEIGHTS_DIR / "residual"),
                 "residual_gain": 2.0}
    rate = OmegaConf.create({"mode": "rdo", "quality": 30})
    codec = RNNVideoCodec("rnn_mc", "mc", "quality", [40, 20], codec_cfg, BlockMotion(search=16), rate, gop=30)
    assert codec.points() == [40, 20] and codec.point_name == "rate.quality"  # lowest rate first
    rng = np.random.default_rng(0)
    clip = [np.ascontiguousarray(cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (5, 5), 0))] * 2
    out = codec.code(clip, 40)
    out.check(clip, codec.name, 40)
    assert out.bits[0] > 0
    with pytest.raises(ValueError, match="sweep='speed'"):
        RNNVideoCodec("rnn_mc", "mc", "speed", [1], codec_cfg, BlockMotion(search=16), rate, gop=30)


def test_in_loop_filter_feeds_the_reference_and_decodes_bit_for_bit(codecs, frames, tmp_path):
    from codec.restoration import RestorationConfig, RestorationNet, save_restoration
    from pipeline.video.loop_filter import LoopFilter

    torch.manual_seed(4)
    net = RestorationNet(RestorationConfig(channels=8, depth=3, cond=2))
    torch.nn.init.normal_(net.body[-1].weight, std=0.05)  # a filter that changes pixels, by block counts too
    save_restoration(net, tmp_path / "loop", {"codec": "rnn_mc"})
    rate = RateControl(quality=20, max_iterations=3)
    plain = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", gop=3, rate=rate)
    filtered = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", gop=3, rate=rate,
                          loop_filter=LoopFilter(tmp_path / "loop"))
    coded, data = _code(filtered, frames)
    unfiltered, plain_data = _code(plain, frames)
    for c, u, (_, image) in zip(coded, unfiltered, filtered.decode(data), strict=True):
        assert np.array_equal(c.decoded, image)
        assert not np.array_equal(c.decoded, u.decoded)
        assert c.condition.shape == (2, 6, 10)  # 96x160 frames: 6 x 10 blocks of 16 px
    # The I-frame is coded the same either way; the P-frame after it predicts from the filtered frame.
    assert coded[0].record.blobs == unfiltered[0].record.blobs
    assert not np.array_equal(coded[1].prediction, unfiltered[1].prediction)
    with pytest.raises(ValueError, match="in-loop filter"):
        list(plain.decode(data))
    with pytest.raises(ValueError, match="in-loop filter"):
        list(filtered.decode(plain_data))
    save_restoration(RestorationNet(RestorationConfig(channels=8, depth=3, cond=1)), tmp_path / "one", {})
    with pytest.raises(ValueError, match="expected 2"):
        LoopFilter(tmp_path / "one")


def _with_heads(codec: ImageCodec) -> ImageCodec:
    from test_scaled import _head

    return ImageCodec(codec.model, codec.prior, {2: _head(codec.model, 2)})


@pytest.mark.parametrize(("scale", "size"), [(0.5, (48, 80)), (0.25, (24, 40))])
def test_a_sequence_decodes_directly_at_reduced_size(codecs, frames, scale, size):
    coder = VideoCoder(*(_with_heads(c) for c in codecs), BlockMotion(search=16), mode="mc",
                       rate=RateControl(quality=20, max_iterations=3))
    coded, data = _code(coder, frames)
    small = list(coder.decode(data, scale=scale))
    assert [name for name, _ in small] == [f"f{i}.png" for i in range(4)]
    assert all(image.shape == (*size, 3) for _, image in small)
    # The I-frame is the intra stream decoded at half size (the loop's), area-downscaled at 1/4; full size still
    # decodes bit for bit.
    intra = coder.intra.decode(coder.intra.chunks_to_codes(coded[0].record.blobs), scale=0.5)
    half = np.round((intra[0] + 0.5).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    expected = half if scale == 0.5 else cv2.resize(half, size[::-1], interpolation=cv2.INTER_AREA)
    assert np.array_equal(small[0][1], expected)
    if scale == 0.25:  # every frame is the half-size loop's, downscaled
        halves = [image for _, image in coder.decode(data, scale=0.5)]
        for half, (_, image) in zip(halves, small, strict=True):
            assert np.array_equal(image, cv2.resize(half, size[::-1], interpolation=cv2.INTER_AREA))
    for c, (_, image) in zip(coded, coder.decode(data), strict=True):
        assert np.array_equal(c.decoded, image)


def test_reduced_size_needs_heads_and_no_in_loop_filter(codecs, frames):
    coder = VideoCoder(*codecs, BlockMotion(search=16), mode="mc", rate=RateControl("iterations", iterations=1))
    _, data = _code(coder, frames[:2])
    with pytest.raises(ValueError, match="scale=0.5 is not supported; expected one of 1.0$"):
        next(coder.decode(data, scale=0.5))
    with pytest.raises(ValueError, match="scale=2.0 is not supported"):
        next(coder.decode(data, scale=2.0))
    half_intra_only = VideoCoder(_with_heads(codecs[0]), codecs[1], BlockMotion(search=16), mode="mc")
    with pytest.raises(ValueError, match="scale=0.25 is not supported; expected one of 1.0$"):
        next(half_intra_only.decode(data, scale=0.25))


@pytest.mark.parametrize("prior", [[], ["--counts-prior"]])
def test_closed_loop_codes_are_what_the_stream_holds(tmp_path, prior: list[str]) -> None:
    """``closed_loop_data --codes`` stores each P-frame's residual codes (the context model's training data)."""
    from pipeline.video.closed_loop_data import main as closed_loop_data

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    assert closed_loop_data(["--out", str(tmp_path), "--codes", *prior, "--frames", "2", "--quality", "40",
                             "--size", "256x128", str(sample)]) == 0
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 1  # one sequence of two frames: one P-frame
    with np.load(files[0]) as data:
        bits, counts = data["bits"], data["counts"]
    assert bits.shape[1:] == (32, 128 // 16, 256 // 16) and counts.shape == bits.shape[2:]
    for t in range(bits.shape[0]):
        assert np.all(np.abs(bits[t][:, counts > t]) == 1) and np.all(bits[t][:, counts <= t] == 0)


def test_closed_loop_vectors_are_the_fields_the_stream_holds(tmp_path) -> None:
    """``closed_loop_data --vectors`` stores each P-frame's vector field (the vector prior's training data)."""
    from flow.vector_coding import decode_vectors, encode_vectors
    from pipeline.video.closed_loop_data import main as closed_loop_data

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    with pytest.raises(SystemExit):  # one kind of data per run
        closed_loop_data(["--out", str(tmp_path), "--codes", "--vectors", str(sample)])
    assert closed_loop_data(["--out", str(tmp_path), "--vectors", "--frames", "2", "--quality", "40",
                             "--size", "256x128", str(sample)]) == 0
    (file,) = tmp_path.glob("*.npy")  # one sequence of two frames: one P-frame
    field = np.load(file)
    assert field.dtype == np.float32 and field.shape in {(8, 16, 2), (4, 8, 2)}  # 16- or 32-px blocks
    assert np.abs(field).max() > 0 and np.array_equal(np.round(field * 4), field * 4)  # the sample moves; 1/4 px
    assert np.array_equal(decode_vectors(encode_vectors(field, 16)), field)


def test_closed_loop_data_reads_a_candidate_residual_model(tmp_path) -> None:
    """``--residual STEM`` codes with a model that has not shipped; a missing one is named in the error."""
    from pipeline.video.closed_loop_data import main as closed_loop_data

    with pytest.raises(FileNotFoundError, match="candidate.json"):
        closed_loop_data(["--out", str(tmp_path), "--residual", str(tmp_path / "candidate"), str(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing written
