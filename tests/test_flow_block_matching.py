from pathlib import Path

import hydra
import numpy as np
import pytest
from omegaconf import OmegaConf
from test_flow_synthetic import shifted, textured

from flow.block_matching import estimate_block_motion, grid_shape, pyramid_levels
from flow.motion import BlockMotion

REPO = Path(__file__).resolve().parent.parent


def _interior(mv: np.ndarray, margin: int) -> np.ndarray:
    return mv[margin:-margin, margin:-margin]


@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (0, 0), (-7, 5)])
def test_integer_shift_is_found_exactly(dx: int, dy: int) -> None:
    ref = textured(128, 192)
    cur = shifted(ref, dx, dy)  # cur(x) = ref(x - d): backward vector is -d
    mv = estimate_block_motion(cur, ref, block=16, search=16)
    assert mv.shape == (8, 12, 2) and mv.dtype == np.float32
    inner = _interior(mv, 1)
    assert np.all(inner == np.float32([-dx, -dy]))


def test_large_motion_found_coarse_to_fine() -> None:
    ref = textured(256, 384, seed=1)
    cur = shifted(ref, -45, 20)
    mv = estimate_block_motion(cur, ref, block=16, search=64)
    assert pyramid_levels(16, 64) == 3
    inner = mv[2:-3, 2:-5]  # away from the replicated borders the shift drags in
    assert (np.abs(inner - np.float32([45, -20])).max(-1) == 0).mean() > 0.95


@pytest.mark.parametrize(("dx", "dy"), [(2.25, -1.5), (-0.75, 0.5)])
def test_subpel_shift_to_quarter_pel(dx: float, dy: float) -> None:
    ref = textured(128, 192, seed=2)
    cur = shifted(ref, dx, dy)
    mv = estimate_block_motion(cur, ref, block=16, search=16, decimate=1)
    assert np.all(np.round(mv * 4) == mv * 4)  # quarter-pel grid
    inner = _interior(mv, 1)
    assert np.median(inner[..., 0]) == -dx and np.median(inner[..., 1]) == -dy
    assert (np.abs(inner - np.float32([-dx, -dy])).max(-1) <= 0.25).mean() > 0.9


def test_integer_only_and_search_limit() -> None:
    ref = textured(96, 128, seed=3)
    cur = shifted(ref, 1.5, 0)
    mv = estimate_block_motion(cur, ref, block=8, search=4, subpel=False)
    assert np.all(mv == np.round(mv)) and np.abs(mv).max() <= 4


def test_previous_field_is_a_candidate() -> None:
    ref = textured(96, 128, seed=4)
    cur = shifted(ref, 3, 3)
    nby, nbx = grid_shape(cur.shape, 16)
    previous = np.full((nby, nbx, 2), -3, np.float32)
    mv = estimate_block_motion(cur, ref, block=16, search=8, previous=previous)
    assert np.all(_interior(mv, 1) == -3)
    with pytest.raises(ValueError, match="previous vector field"):
        estimate_block_motion(cur, ref, block=16, search=8, previous=previous[:-1])


def test_sizes_not_multiple_of_block_are_padded() -> None:
    ref = textured(100, 150, seed=5)
    mv = estimate_block_motion(shifted(ref, 2, 1), ref, block=16, search=8)
    assert mv.shape == (7, 10, 2)
    assert np.all(mv[1:-2, 1:-2] == np.float32([-2, -1]))


def test_bad_input() -> None:
    a, b = textured(64, 64), textured(64, 80)
    with pytest.raises(ValueError, match="must share its size"):
        estimate_block_motion(a, b)
    with pytest.raises(ValueError, match="block size 12"):
        estimate_block_motion(a, a, block=12)
    with pytest.raises(ValueError, match="uint8"):
        estimate_block_motion(a.astype(np.float32), a)


def test_motion_object_from_config_round_trip() -> None:
    motion = hydra.utils.instantiate(OmegaConf.load(REPO / "conf" / "motion" / "block.yaml"))
    assert isinstance(motion, BlockMotion) and motion.block == 16 and motion.search == 64
    ref = textured(120, 200, seed=6)
    cur = shifted(ref, 4.5, -2)
    mv = motion.estimate(cur, ref)
    prediction = motion.compensate(ref, mv)
    assert prediction.shape == cur.shape and prediction.dtype == np.uint8
    err_mc = np.abs(prediction.astype(int) - cur)[16:-16, 16:-16].mean()
    err_zero = np.abs(ref.astype(int) - cur)[16:-16, 16:-16].mean()
    assert err_mc < 0.2 * err_zero
    data = motion.encode(mv)
    assert isinstance(data, bytes)
    assert np.array_equal(motion.decode(data, cur.shape), mv)
    with pytest.raises(ValueError, match="block grid"):
        motion.decode(data, (240, 200, 3))


def test_rate_penalty_keeps_flat_regions_on_their_neighbours() -> None:
    from flow.vector_coding import encode_vectors

    rng = np.random.default_rng(8)
    ref = np.clip(128 + rng.normal(0, 2, (96, 160, 3)), 0, 255).astype(np.uint8)  # flat: only noise
    cur = np.clip(128 + rng.normal(0, 2, (96, 160, 3)), 0, 255).astype(np.uint8)
    free = estimate_block_motion(cur, ref, block=16, search=32, lam=0.0)
    penalised = estimate_block_motion(cur, ref, block=16, search=32, lam=0.5)
    assert len(encode_vectors(penalised, 16)) < 0.5 * len(encode_vectors(free, 16))


def test_a_large_lambda_picks_the_coarse_field_and_the_decoder_follows() -> None:
    motion = BlockMotion(block=16, search=16, alternatives=[[32, True], [32, False]])
    ref = textured(128, 192, seed=9)
    cur = np.concatenate([shifted(ref, 3.25, 1)[:, :80], shifted(ref, -2.5, 0)[:, 80:]], axis=1)  # 80: mid-32-block
    fine = motion.estimate(cur, ref, rate_lambda=1.0)  # vectors are nearly free: the 16-px field fits the edge
    coarse = motion.estimate(cur, ref, rate_lambda=1e6)  # vectors are dear: a 32-px field wins
    assert fine.shape[:2] == (8, 12) and coarse.shape[:2] == (4, 6)
    assert len(motion.encode(coarse, cur.shape)) < len(motion.encode(fine, cur.shape))
    for mv in (fine, coarse):
        data = motion.encode(mv, cur.shape)
        back = motion.decode(data, cur.shape)
        assert np.array_equal(back, mv)
        assert np.array_equal(motion.compensate(ref, back), motion.compensate(ref, mv))


def test_integer_fields_are_coded_in_integer_units() -> None:
    from flow.vector_coding import decode_vectors, encode_vectors

    rng = np.random.default_rng(3)
    field = rng.integers(-20, 21, (16, 24, 2)).astype(np.float32)
    integer, quarter = encode_vectors(field, 16), encode_vectors(field + 0.25, 16)
    assert np.array_equal(decode_vectors(integer, (16, 24), 16), field)
    assert len(integer) < len(quarter)
