"""Block distortion weights of the rate control: mean 1, and adaptive quantisation favouring flat blocks."""

import numpy as np
import pytest
import torch

from codec.coder import ImageCodec
from codec.zoo import WEIGHTS_DIR
from flow.motion import BlockMotion
from pipeline.frames import Frame
from pipeline.video.coder import VideoCoder
from pipeline.video.distortion import C2, adaptive_weights
from pipeline.video.rate import RateControl


def _half_flat(height: int = 64, width: int = 128) -> np.ndarray:
    """uint8 (H, W, 3): a smooth gradient on the left half, strong noise texture on the right."""
    rng = np.random.default_rng(0)
    image = np.tile(np.linspace(80, 140, width, dtype=np.float32)[None, :, None], (height, 1, 3))
    image[:, width // 2 :] = rng.integers(0, 256, (height, width // 2, 1))
    return image.clip(0, 255).astype(np.uint8)


def _pixels(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()


def test_adaptive_weights_favour_flat_blocks_and_grow_with_strength():
    frame = _pixels(_half_flat())
    assert torch.equal(adaptive_weights(frame, 0.0), torch.ones(1, 1, 4, 8))
    ratios = []
    for strength in (0.3, 1.0):
        weights = adaptive_weights(frame, strength)
        assert weights.shape == (1, 1, 4, 8) and weights.mean().item() == pytest.approx(1.0)
        flat, textured = weights[..., :4].mean().item(), weights[..., 4:].mean().item()
        ratios.append(flat / textured)
    assert 1.0 < ratios[0] < ratios[1]


def test_adaptive_weights_follow_the_block_variance():
    # Two 16x16 blocks: flat (variance 0) and a 0 / 200 checkerboard (variance 100 ** 2), grey in all channels.
    image = np.full((16, 32, 3), 100.0, np.float32)
    image[:, 16:] = 200.0 * (np.indices((16, 16)).sum(0) % 2)[..., None]
    raw = np.array([C2, 2 * 100.0**2 + C2]) ** -0.3
    expected = torch.tensor(raw / raw.mean(), dtype=torch.float32).reshape(1, 1, 1, 2)
    torch.testing.assert_close(adaptive_weights(_pixels(image), 0.3), expected)


def test_negative_aq_strength_is_rejected():
    with pytest.raises(ValueError, match="rate.aq_strength"):
        RateControl(aq_strength=-0.1)


def test_adaptive_quantisation_moves_quality_to_flat_blocks():
    # The shipped intra model on an I-frame: with AQ the flat half's error falls against the textured half's.
    image = _half_flat(128, 256)
    codec = ImageCodec.load(WEIGHTS_DIR / "intra")
    ratios = []
    for strength in (0.0, 1.0):
        coder = VideoCoder(codec, codec, BlockMotion(), mode="intra",
                           rate=RateControl(quality=34, propagation=0.0, aq_strength=strength))
        error = (next(coder.encode([Frame(image, "f.png", 0)])).decoded.astype(float) - image) ** 2
        ratios.append(error[:, :128].mean() / error[:, 128:].mean())
    assert ratios[1] < 0.9 * ratios[0]  # 0.74 when written
