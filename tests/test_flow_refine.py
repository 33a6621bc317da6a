import numpy as np
import pytest
from test_flow_synthetic import shifted, textured

from flow.compensation import compensate
from flow.motion import BlockMotion
from flow.refine import GRIDS, Windows, refine_vectors
from flow.vector_coding import encode_vectors


def _sse(cur: np.ndarray, ref: np.ndarray, mv: np.ndarray, obmc: bool = True) -> float:
    prediction = compensate(ref, mv, 16, obmc, interpolation="cubic").astype(np.float64)
    return float(np.square(prediction - cur).sum())


def _noisy_field(ref: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame that moved by (2.25, -1) px, and that motion with a quarter of its vectors knocked off by noise."""
    cur = shifted(ref, -2.25, 1.0)
    rows, cols = -(-ref.shape[0] // 16), -(-ref.shape[1] // 16)
    mv = np.tile(np.float32([2.25, -1.0]), (rows, cols, 1))
    rng = np.random.default_rng(seed)
    hit = rng.random((rows, cols)) < 0.25
    mv[hit] += (rng.integers(-6, 7, (int(hit.sum()), 2)) / 4).astype(np.float32)
    return cur, mv


def _window_sse(cur: np.ndarray, prediction: np.ndarray, block: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) squared error of ``prediction`` over each block's window: one block beyond its centre."""
    error = np.square(prediction.astype(np.float64) - cur).sum(-1)
    half = block // 2
    return np.array([[error[max(r * block - half, 0) : r * block + 3 * half,
                            max(c * block - half, 0) : c * block + 3 * half].sum() for c in range(cols)]
                     for r in range(rows)])


@pytest.mark.parametrize("obmc", [True, False])
@pytest.mark.parametrize("block", [8, 16, 32])
def test_window_scores_follow_the_decoders_prediction_through_moves(obmc: bool, block: int) -> None:
    rng = np.random.default_rng(1)
    ref, cur = textured(100, 130, seed=2), textured(100, 130, seed=3)  # the last blocks cut at every size
    rows, cols = -(-100 // block), -(-130 // block)
    mv = (np.round(rng.normal(0, 3, (rows, cols, 2)) * 4) / 4).astype(np.float32)
    windows = Windows(cur, ref, mv, block, obmc, "cubic")
    for a, b in GRIDS:
        moved = mv.copy()
        moved[a::2, b::2] += (np.round(rng.normal(0, 2, moved[a::2, b::2].shape) * 4) / 4).astype(np.float32)
        vectors = np.stack([mv[a::2, b::2], moved[a::2, b::2]])
        scores = windows.sse(a, b, vectors)
        for k, field in enumerate((mv, moved)):  # within the decoder's rounding to uint8
            prediction = compensate(ref, field, block, obmc, interpolation="cubic")
            assert scores[k] == pytest.approx(_window_sse(cur, prediction, block, rows, cols)[a::2, b::2], rel=0.01)
        pick = rng.integers(0, 2, scores.shape[1:])
        mv[a::2, b::2] = windows.move(a, b, vectors, pick)  # the next grid is scored against the moved blocks
    with pytest.raises(ValueError, match="last ones scored"):
        windows.move(1, 1, vectors, pick)


@pytest.mark.parametrize("obmc", [True, False])
def test_without_a_rate_term_only_better_predictions_are_taken(obmc: bool) -> None:
    ref = textured(96, 160, seed=4)
    cur, noisy = _noisy_field(ref, seed=5)
    refined = refine_vectors(cur, ref, noisy, 16, 0.0, 4, obmc, "cubic", passes=2)
    assert _sse(cur, ref, refined, obmc) < 0.5 * _sse(cur, ref, noisy, obmc)  # the knocked-off blocks come back


def test_a_rate_term_trades_prediction_for_bits_and_keeps_the_unit() -> None:
    ref = textured(96, 160, seed=6)
    cur, noisy = _noisy_field(ref, seed=7)
    noisy += np.random.default_rng(8).integers(-1, 2, noisy.shape).astype(np.float32) * 0.25  # noise everywhere
    bits = 8 * len(encode_vectors(noisy, 16))
    lam = 1e3
    refined = refine_vectors(cur, ref, noisy, 16, lam, 4, True, "cubic", passes=2)
    refined_bits = 8 * len(encode_vectors(refined, 16))
    assert refined_bits < 0.6 * bits
    assert _sse(cur, ref, refined) + lam * refined_bits < _sse(cur, ref, noisy) + lam * bits
    whole = np.round(noisy)
    assert np.array_equal(refine_vectors(cur, ref, whole, 16, lam, 1, True, "cubic"),
                          np.round(refine_vectors(cur, ref, whole, 16, lam, 1, True, "cubic")))


def test_motion_refines_the_field_it_sends_and_the_decoder_follows() -> None:
    rng = np.random.default_rng(10)
    ref = np.clip(128 + rng.normal(0, 3, (128, 192, 3)), 0, 255).astype(np.uint8)  # right half: flat, noisy
    ref[:, :96] = textured(128, 192, seed=9)[:, :96]
    cur = np.clip(shifted(ref, 1.75, -0.5).astype(np.int16) + rng.integers(-3, 4, ref.shape), 0, 255).astype(np.uint8)
    plain = BlockMotion(block=16, search=16, interpolation="cubic")
    refining = BlockMotion(block=16, search=16, interpolation="cubic", refine=2)
    lam = 100.0
    costs = []
    for motion in (plain, refining):
        mv = motion.estimate(cur, ref, rate_lambda=lam)
        data = motion.encode(mv, cur.shape)
        assert np.array_equal(motion.decode(data, cur.shape), mv)
        costs.append(_sse(cur, ref, mv) + lam * 8 * len(data))
    assert costs[1] < costs[0]
    assert np.array_equal(refining.estimate(cur, ref), plain.estimate(cur, ref))  # no lambda: no refinement


def test_refine_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="motion.refine"):
        BlockMotion(refine=-1)


@pytest.mark.parametrize("shape", [(16, 64), (10, 10), (20, 17)])
def test_fields_one_block_high_or_wide_are_refined_too(shape: tuple[int, int]) -> None:
    ref = textured(*shape, seed=11)
    cur = shifted(ref, -1.0, 0.0)
    mv = np.zeros((-(-shape[0] // 16), -(-shape[1] // 16), 2), np.float32)
    mv[0, 0] = 3.0  # off: its predicted vector (0) predicts better and costs less
    refined = refine_vectors(cur, ref, mv, 16, 1.0, 4, True, "cubic", passes=3)
    assert refined.shape == mv.shape
    assert np.array_equal(refined[0, 0], [0.0, 0.0])
    assert _sse(cur, ref, refined) < _sse(cur, ref, mv)
