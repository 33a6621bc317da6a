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
