"""Propagation-aware lambda (macroblock-tree): block costs, propagation through motion, the coder's lookahead."""

import cv2
import numpy as np
import pytest

from pipeline.video import lookahead
from pipeline.video.lookahead import FLOOR, BlockCosts, analyse, half_luma, propagate, propagation_weights, satd
from pipeline.video.rate import RateControl


def _texture(seed: int, size=(96, 160)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (3, 3), 0)


def test_satd_is_zero_for_flat_blocks_and_grows_with_contrast():
    flat = np.full((16, 24), 7.0, np.float32)
    assert np.array_equal(satd(flat - 7.0), np.zeros((2, 3)))
    checker = np.indices((8, 8)).sum(0) % 2 * 2.0 - 1.0  # one Hadamard basis pattern: a single coefficient of 64
    assert satd(checker.astype(np.float32))[0, 0] == pytest.approx(64 / 8)
    assert satd(3 * checker.astype(np.float32))[0, 0] == pytest.approx(3 * 64 / 8)


def test_half_luma_covers_the_16_px_block_grid():
    assert half_luma(_texture(0, (100, 150))).shape == (56, 80)  # ceil(100/16) * 8, ceil(150/16) * 8


def test_a_repeated_frame_costs_the_floor_to_predict_and_does_not_move():
    frame = half_luma(_texture(1))
    costs = analyse(frame, frame)
    assert np.allclose(costs.inter, FLOOR, atol=1.0) and np.all(costs.intra > 2 * FLOOR)
    assert np.abs(costs.motion).max() < 0.05
    alone = analyse(frame, None)
    assert np.array_equal(alone.inter, alone.intra)


def test_motion_is_measured_in_blocks():
    noise = np.random.default_rng(2).integers(0, 256, (96, 320)).astype(np.uint8)
    big = cv2.normalize(cv2.GaussianBlur(noise, (7, 7), 0), None, 0, 255, cv2.NORM_MINMAX)
    current, previous = big[:, 40:120], big[:, 32:112]  # content 8 px (one block) to the right in previous
    motion = analyse(current, previous).motion
    assert np.median(motion[..., 0]) == pytest.approx(1.0, abs=0.05) and np.median(np.abs(motion[..., 1])) < 0.05


def _costs(inter_fraction: float, motion=(0.0, 0.0), shape=(4, 6)) -> BlockCosts:
    intra = np.full(shape, 1000.0)
    return BlockCosts(intra, intra * inter_fraction, np.broadcast_to(np.float32(motion), (*shape, 2)).copy())


def test_propagation_follows_reference_chains():
    # Perfectly predicted followers (inter at 0) each pass on all they carry: n followers, n times intra.
    for followers in (1, 3):
        inherited = propagate([_costs(1.0)] + [_costs(0.0)] * followers)
        assert np.allclose(inherited, 1000.0 * followers)
    # A follower that predicts nothing (inter = intra, a scene cut) passes on nothing, nor what is behind it.
    assert np.allclose(propagate([_costs(1.0), _costs(1.0), _costs(0.0)]), 0.0)
    assert np.allclose(propagate([_costs(1.0)]), 0.0)


def test_propagation_lands_where_the_motion_points():
    inherited = propagate([_costs(1.0), _costs(0.5, motion=(1.0, 0.0))])  # content came from one block right
    assert np.allclose(inherited[:, 0], 0.0) and np.allclose(inherited[:, 1:], 500.0)
    half = propagate([_costs(1.0), _costs(0.5, motion=(0.5, 0.0))])  # half a block: split between two
    assert np.allclose(half[:, 0], 250.0) and np.allclose(half[:, 1:], 500.0)


def test_weights_follow_x264s_qp_offset():
    # x264 lowers QP by strength * log2((intra + propagated) / intra); lambda halves every 3 QP.
    weights = propagation_weights([_costs(1.0), _costs(0.0)], 2.0)
    assert np.allclose(weights, 2.0 ** (2.0 / 3.0))
    assert np.allclose(propagation_weights([_costs(1.0), _costs(0.0)], 0.0), 1.0)


def test_rate_control_checks_the_propagation_settings():
    with pytest.raises(ValueError, match="rate.propagation must be >= 0"):
        RateControl(propagation=-1.0)
    with pytest.raises(ValueError, match="rate.lookahead >= 1"):
        RateControl(propagation=2.0, lookahead=0)


def test_lookahead_weights_each_frame_by_the_rest_of_its_gop(monkeypatch):
    from test_video_coder import _codec

    from flow.motion import BlockMotion
    from pipeline.frames import Frame
    from pipeline.video.coder import VideoCoder

    seen = []
    real = lookahead.propagation_weights
    monkeypatch.setattr(lookahead, "propagation_weights", lambda costs, s: seen.append(len(costs)) or real(costs, s))
    coder = VideoCoder(_codec(0), _codec(1), BlockMotion(search=16), gop=4,
                       rate=RateControl(propagation=2.0, lookahead=2))
    still = _texture(3)
    frames = [Frame(still, f"f{i}", i) for i in range(7)]
    out = list(coder._look_ahead(frames))
    assert [f.name for f, _ in out] == [f"f{i}" for i in range(7)]
    assert seen == [3, 3, 2, 1, 3, 2, 1]  # the frame and up to 2 after it, never past the GOP's end (frame 4)
    first, last = out[0][1], out[3][1]
    assert np.all(first > 1.5) and np.allclose(last, 1.0)  # a still scene: frame 0's blocks feed frames 1-2
