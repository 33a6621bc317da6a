import cv2
import numpy as np
import pytest
from test_flow_synthetic import shifted, textured

from flow.compensation import compensate


def test_integer_vectors_reproduce_the_shift() -> None:
    ref = textured(64, 96)
    cur = shifted(ref, 5, -3)
    mv = np.tile(np.float32([-5, 3]), (4, 6, 1))
    pred = compensate(ref, mv, 16)
    assert np.array_equal(pred[8:-8, 8:-8], cur[8:-8, 8:-8])


def test_subpel_vectors_interpolate() -> None:
    ref = textured(64, 96, seed=1)
    cur = shifted(ref, 0.5, 0.25)
    mv = np.tile(np.float32([-0.5, -0.25]), (4, 6, 1))
    pred = compensate(ref, mv, 16)
    assert np.abs(pred.astype(int) - cur)[4:-4, 4:-4].max() <= 1


def test_cubic_matches_linear_at_whole_pixels_and_keeps_more_detail_between() -> None:
    ref = textured(64, 96, seed=3)
    whole = np.tile(np.float32([2, -1]), (4, 6, 1))
    assert np.array_equal(compensate(ref, whole, 16, interpolation="cubic"), compensate(ref, whole, 16))
    # A detailed picture sampled twice as densely, then split into its even and odd columns: the odd ones are
    # the even ones half a pixel on, exactly.
    rng = np.random.default_rng(4)
    dense = cv2.resize(rng.integers(0, 256, (16, 48, 3)).astype(np.float32), (192, 64), interpolation=cv2.INTER_CUBIC)
    dense = np.clip(dense, 0, 255).astype(np.uint8)
    ref, cur = np.ascontiguousarray(dense[:, ::2]), dense[:, 1::2]
    half = np.tile(np.float32([0.5, 0]), (4, 6, 1))
    errors = {k: np.abs(compensate(ref, half, 16, interpolation=k).astype(int) - cur)[:, 4:-4].mean()
              for k in ("linear", "cubic")}
    assert errors["cubic"] < 0.6 * errors["linear"]
    with pytest.raises(ValueError, match="interpolation 'nearest' is unknown"):
        compensate(ref, whole, 16, interpolation="nearest")


def test_obmc_equals_plain_for_uniform_motion_and_smooths_block_edges() -> None:
    ref = textured(64, 64, seed=2)
    uniform = np.tile(np.float32([1.25, -2]), (4, 4, 1))
    assert np.abs(compensate(ref, uniform, 16, obmc=True).astype(int) - compensate(ref, uniform, 16)).max() <= 1
    flat = np.zeros((64, 64, 3), np.uint8)
    flat[:, 32:] = 200  # a vertical edge; vectors that fetch one side or the other make block edges
    mv = np.zeros((4, 4, 2), np.float32)
    mv[:, :2, 0] = 40  # left blocks fetch the bright side
    mv[:, 2:, 0] = -40  # right blocks fetch the dark side
    plain = compensate(flat, mv, 16)[:, :, 0].astype(int)
    overlapped = compensate(flat, mv, 16, obmc=True)[:, :, 0].astype(int)
    # plain jumps by 200 at the block edge x=32; OBMC ramps over a block
    assert np.abs(np.diff(plain[8], axis=0)).max() == 200
    assert np.abs(np.diff(overlapped[8], axis=0)).max() <= 200 / 16 + 1


def test_borders_are_replicated_and_sizes_padded() -> None:
    ref = textured(50, 70, seed=3)
    mv = np.full((4, 5, 2), -100, np.float32)  # far outside: the top-left pixel everywhere
    pred = compensate(ref, mv, 16)
    assert pred.shape == ref.shape and np.all(pred == ref[0, 0])


def test_bad_vector_fields() -> None:
    ref = textured(64, 64)
    with pytest.raises(ValueError, match="expected \\(4, 4, 2\\)"):
        compensate(ref, np.zeros((3, 4, 2), np.float32), 16)
    with pytest.raises(ValueError, match="NaN"):
        compensate(ref, np.full((4, 4, 2), np.nan, np.float32), 16)
    with pytest.raises(ValueError, match="uint8"):
        compensate(ref.astype(np.float32), np.zeros((4, 4, 2), np.float32), 16)


def test_a_reduced_reference_with_scaled_vectors_predicts_the_reduced_frame() -> None:
    import cv2

    from flow.motion import BlockMotion

    ref = cv2.GaussianBlur(textured(128, 192, seed=4), (0, 0), 2)  # detail that survives 1/4 size
    rng = np.random.default_rng(0)
    mv = np.round(rng.uniform(-6, 6, (8, 12, 2)) * 4).astype(np.float32) / 4  # quarter-pel, per block
    motion = BlockMotion(block=16, obmc=True)
    full = motion.compensate(ref, mv)
    for factor in (2, 4):
        size = (192 // factor, 128 // factor)
        small = motion.compensate(cv2.resize(ref, size, interpolation=cv2.INTER_AREA), mv, factor)
        expected = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
        assert small.shape == expected.shape
        # Sampling a smaller picture blurs a little differently: close, not equal.
        error = np.abs(small.astype(int) - expected).mean()
        assert error < 0.3 * np.abs(small.astype(int) - np.roll(expected, 2, 1)).mean()  # a 2-px miss is far worse
    with pytest.raises(ValueError, match="at 1/4 size"):
        motion.compensate(ref, mv, 4)  # a full-size reference is not a reduced one


def test_sharpened_sampling_changes_only_fractional_positions() -> None:
    ref = textured(64, 64, seed=5)
    whole = np.tile(np.float32([3, -2]), (4, 4, 1))
    half = np.tile(np.float32([3.5, -2.5]), (4, 4, 1))
    for obmc in (False, True):
        assert np.array_equal(compensate(ref, whole, 16, obmc, sharpen=0.7), compensate(ref, whole, 16, obmc))
        inner = np.s_[8:-8, 8:-8]
        diff = compensate(ref, half, 16, obmc, sharpen=0.7)[inner].astype(int) - compensate(ref, half, 16, obmc)[inner]
        assert np.abs(diff).mean() > 1  # Lanczos keeps detail that bilinear averages away
