import cv2
import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim

from pipeline.evaluation.codecs import VideoCodec
from pipeline.evaluation.image_codecs import OpenCVImageCodec
from pipeline.evaluation.video_codecs import PyAVCodec
from pipeline.image_quality import msssim, psnr


def moving_frames(n: int = 8, height: int = 64, width: int = 128, seed: int = 0) -> list[np.ndarray]:
    """A smooth random texture panning 3 px right and 2 px down per frame (uint8 (H, W, 3) RGB)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height + 2 * n, width + 3 * n, 3), dtype=np.uint8), (9, 9), 3)
    return [np.ascontiguousarray(base[2 * i : 2 * i + height, 3 * i : 3 * i + width]) for i in range(n)]


CODECS = {
    "jpeg": lambda: OpenCVImageCodec("jpeg", "jpeg", [20, 60, 90]),
    "webp": lambda: OpenCVImageCodec("webp", "webp", [20, 60, 90]),
    "x264": lambda: PyAVCodec("x264", "libx264", [22, 30, 38], gop=4, preset="medium"),
    "x265": lambda: PyAVCodec("x265", "libx265", [22, 30, 38], gop=4, preset="medium"),
    "av1": lambda: PyAVCodec("av1", "libsvtav1", [24, 40, 56], gop=4, preset=8),
}


@pytest.mark.parametrize("name", list(CODECS))
def test_baseline_codes_every_frame_and_rate_falls_along_the_sweep(name):
    frames = moving_frames()
    codec = CODECS[name]()
    assert isinstance(codec, VideoCodec)
    totals = []
    for point in codec.points():  # lowest rate first
        coded = codec.code(frames, point)
        coded.check(frames, name, point)
        assert all(b > 0 for b in coded.bits)
        assert coded.encode_seconds > 0 and coded.decode_seconds > 0
        assert np.mean([psnr(f, d) for f, d in zip(frames, coded.decoded, strict=True)]) > 25
        totals.append(sum(coded.bits))
    assert totals == sorted(totals) and totals[0] < totals[-1], totals


@pytest.mark.parametrize("name", ["x264", "x265", "av1"])
def test_video_baselines_put_i_frames_only_at_the_gop_period(name):
    codec = CODECS[name]()
    bits = codec.code(moving_frames(), codec.points()[1]).bits
    # gop=4: frames 0 and 4 are intra and cost far more than any predicted frame of this smooth pan.
    p_frames = [b for i, b in enumerate(bits) if i % 4]
    assert min(bits[0], bits[4]) > 2 * max(p_frames), bits


def test_bad_codec_settings_are_rejected():
    with pytest.raises(ValueError, match="needs even frame sizes"):
        PyAVCodec("x264", "libx264", [23]).code(moving_frames(height=63), 23)
    with pytest.raises(ValueError, match="encoder 'libfoo'"):
        PyAVCodec("foo", "libfoo", [23])
    with pytest.raises(ValueError, match=r"qualities .* \[0, 100\]"):
        OpenCVImageCodec("jpeg", "jpeg", [120])


def test_psnr_and_msssim_conventions():
    a = moving_frames(n=1, height=176, width=224)[0]
    assert psnr(a, a) == 100.0
    noisy = np.clip(a.astype(int) + 4, 0, 255).astype(np.uint8)
    assert 30 < psnr(a, noisy) < 37
    assert msssim(a, a) == pytest.approx(1.0)
    assert 0.9 < msssim(a, noisy) < 1.0
    assert np.isnan(msssim(a[:160], a[:160]))  # too small for five scales


@pytest.mark.parametrize("size", [(176, 224), (181, 333)])
def test_msssim_matches_pytorch_msssim(size):
    a = moving_frames(n=1, height=size[0], width=size[1], seed=3)[0]
    b = np.clip(a.astype(int) + np.random.default_rng(4).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    tensors = [torch.from_numpy(x).permute(2, 0, 1)[None].float() for x in (a, b)]
    assert msssim(a, b) == pytest.approx(float(ms_ssim(*tensors, data_range=255)), abs=1e-5)
