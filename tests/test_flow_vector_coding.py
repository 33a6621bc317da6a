from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from omegaconf import OmegaConf
from safetensors.numpy import load_file

from flow.vector_coding import (
    VERSION,
    _encode,
    _Model,
    _Writer,
    decode_vectors,
    encode_vectors,
    field_unit,
    initial_counts,
    med,
    merge_index,
    observed_counts,
    predict,
    shipped_prior,
    vector_bits,
)
from pipeline.video import vector_prior
from pipeline.video.rate import RateControl

REPO = Path(__file__).resolve().parent.parent


@settings(max_examples=40, deadline=None)
@given(arrays(np.int32, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(2)),
              elements=st.integers(-512, 512)))
def test_round_trip_is_exact(q: np.ndarray) -> None:
    mv = q.astype(np.float32) / 4
    data = encode_vectors(mv, 16)
    assert data[:4] == b"DCMV"
    out = decode_vectors(data, mv.shape[:2], 16)
    assert out.dtype == np.float32 and np.array_equal(out, mv)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 10), st.integers(1, 10), st.just(2)), elements=st.integers(0, 3)))
def test_round_trip_with_merges(labels: np.ndarray) -> None:
    # A few distinct vectors in patches: many blocks copy a neighbour that is not their prediction.
    palette = np.float32([[0, 0], [7.25, -3.5], [-20, 11.75], [0.5, 40]])
    mv = palette[labels[..., 0]] + 2 * palette[labels[..., 1]]
    assert np.array_equal(decode_vectors(encode_vectors(mv, 16), mv.shape[:2], 16), mv)


def test_merges_copy_neighbours_off_the_prediction() -> None:
    # Two objects with unrelated motion: along the edge between them MED predicts a mix, a merge copies.
    q = np.zeros((6, 8, 2), np.int64)
    q[:, 4:] = [37, -52]
    q[3:, :3] = [-41, 29]
    index = merge_index(q)
    assert (index[0] == -1).all() and (index[:, 0] == -1).all()  # there the prediction is that neighbour
    assert (index >= 0).any()
    candidates = {0: (0, -1), 1: (-1, 0), 2: (-1, -1)}
    for y, x in zip(*np.nonzero(index >= 0), strict=True):
        dy, dx = candidates[int(index[y, x])]
        assert np.array_equal(q[y, x], q[y + dy, x + dx]) and not np.array_equal(q[y, x], predict(q)[y, x])
    assert (index[(q == predict(q)).all(-1)] == -1).all()


def test_merges_cost_less_than_residuals() -> None:
    # A checkerboard of two far-apart vectors: MED predicts the other one everywhere (a residual of 60+ px per
    # block), while every block equals its top-left neighbour.
    board = np.indices((32, 64)).sum(axis=0) % 2
    mv = np.float32([[30.25, -12.5], [-45, 20.75]])[board]
    data = encode_vectors(mv, 16)
    assert np.array_equal(decode_vectors(data), mv)
    assert (merge_index(np.round(mv * 4).astype(np.int64))[1:, 1:] == 2).all()
    # the first row and column send their residuals (up to 32 bits a block), the rest at most two bits (the
    # initial counts expect a left merge more often than a top-left one, so the first rows pay to learn it)
    rows, cols = board.shape
    assert vector_bits(data) < 32 * (rows + cols) + 2 * (rows - 1) * (cols - 1)


def test_smooth_fields_cost_few_bits() -> None:
    smooth = np.tile(np.float32([12.25, -3.5]), (64, 128, 1))
    rng = np.random.default_rng(0)
    noisy = np.round(rng.normal(0, 8, (64, 128, 2)) * 4).astype(np.float32) / 4
    assert vector_bits(encode_vectors(smooth, 16)) < 0.1 * 64 * 128
    assert vector_bits(encode_vectors(noisy, 16)) > 8 * 64 * 128


def test_med_follows_planes_and_stops_at_edges() -> None:
    left, top = np.array([4, 4, 4]), np.array([10, 10, 10])
    # top-left beyond both: an edge, so the nearer side; between them: the plane left + top - top-left
    assert med(left, top, np.array([12, 2, 7])).tolist() == [4, 10, 7]
    # a zoom (vectors linear in position) is predicted exactly away from the first row and column
    y, x = np.mgrid[0:16, 0:32]
    zoom = np.stack([3 * (x - 16), 2 * (y - 8)], axis=-1)
    assert np.array_equal(predict(zoom)[1:, 1:], zoom[1:, 1:])
    # so it costs about a bit per vector, mostly on the border (H.264's median of left, top and top-right
    # misses the vertical gradient everywhere: 2.6 bits per vector)
    assert vector_bits(encode_vectors(zoom.astype(np.float32) / 4, 16)) < 1.6 * zoom[..., 0].size


def test_bad_streams_and_fields() -> None:
    mv = np.zeros((3, 4, 2), np.float32)
    data = encode_vectors(mv, 8)
    with pytest.raises(ValueError, match="magic"):
        decode_vectors(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="version"):
        decode_vectors(data[:4] + bytes([9]) + data[5:])
    with pytest.raises(ValueError, match="block 8, expected 16"):
        decode_vectors(data, (3, 4), 16)
    with pytest.raises(ValueError, match="truncated"):
        decode_vectors(data + b"x")
    with pytest.raises(ValueError, match="quarter-pel"):
        encode_vectors(mv + 0.1, 8)
    with pytest.raises(ValueError, match="NaN"):
        encode_vectors(mv * np.nan, 8)


def test_old_vector_streams_are_refused_by_version() -> None:
    data = encode_vectors(np.zeros((2, 3, 2), np.float32), 16)
    assert data[4] == VERSION == 5
    with pytest.raises(ValueError, match=r"version 4 is not supported \(expected 5\)"):
        decode_vectors(data[:4] + bytes([4]) + data[5:])


def test_initial_counts_keep_the_statistics_and_trust_them_by_how_often_they_were_seen() -> None:
    fitted = initial_counts({"x": np.array([[300, 100], [0, 0], [1, 3]])}, strength=64)["x"]
    assert fitted.tolist() == [[48, 16], [1, 1], [2, 4]]  # 3:1 at full strength; unseen: ones; rare: weak


def test_a_prior_of_the_wrong_shape_is_refused() -> None:
    prior = {name: counts.copy() for name, counts in shipped_prior().items()}
    prior["coded"] = prior["coded"][:1]
    with pytest.raises(ValueError, match="initial counts of shape"):
        _Model(prior)
    with pytest.raises(ValueError, match="elements"):
        _Model({"coded": prior["coded"]})


def test_the_shipped_prior_pays_on_a_field_it_was_not_fitted_on() -> None:
    # The embedded synthetic town (the prior was fitted on Cityscapes and dashcam fields), at the coder's P-frame
    # lambda for quality 38: starting from the prior costs fewer bits than starting from ones, and decodes exactly.
    frames = sorted((REPO / "data" / "sample" / "leftImg8bit_sequence").rglob("*.png"))[:2]
    ref, cur = (cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in frames)
    motion = instantiate(OmegaConf.load(REPO / "conf" / "motion" / "block.yaml"))
    mv = motion.estimate(cur, ref, None, RateControl(quality=38).lagrangian("P"))
    assert field_unit(mv) == 4
    data = encode_vectors(mv, 16)
    assert np.array_equal(decode_vectors(data, mv.shape[:2], 16), mv)
    from_ones = _Writer()
    _encode(mv, from_ones, _Model())
    ones_bytes = 4 * from_ones.coder.get_compressed().size
    assert len(data) - 11 < 0.95 * ones_bytes


def test_fitting_the_prior_from_fields(tmp_path: Path) -> None:
    y, x = np.mgrid[0:16, 0:32]
    zoom = np.stack([(x - 16) / 4, (y - 8) / 2], axis=-1).astype(np.float32)
    rng = np.random.default_rng(1)
    for k in range(3):
        np.save(tmp_path / f"field{k}.npy", zoom + np.round(rng.normal(0, 2, zoom.shape) * 4) / 4)
    np.save(tmp_path / "whole.npy", np.round(zoom))  # whole pixels: not what the prior serves, skipped
    out = tmp_path / "prior.safetensors"
    assert vector_prior.main([str(tmp_path), "--out", str(out)]) == 0
    fitted = load_file(str(out))
    assert set(fitted) == set(shipped_prior()) and all((v >= 1).all() for v in fitted.values())
    observed = sum(observed_counts(np.load(tmp_path / f"field{k}.npy"))["coded"] for k in range(3))
    assert np.array_equal(fitted["coded"], initial_counts({"coded": observed})["coded"])
    assert not list(tmp_path.glob(".prior.*"))  # no temporary file left
    np.save(tmp_path / "bad.npy", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(SystemExit, match=r"bad.npy: not a vector field \(motion vectors: expected a"):
        vector_prior.main([str(tmp_path / "bad.npy"), "--out", str(out)])
    np.save(tmp_path / "eighth.npy", zoom / 2)  # eighth-pel values
    with pytest.raises(SystemExit, match=r"eighth.npy: not a vector field \(.*1/4 pixel"):
        vector_prior.main([str(tmp_path / "eighth.npy"), "--out", str(out)])
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(SystemExit, match="text.npy: not a vector field"):
        vector_prior.main([str(tmp_path / "text.npy"), "--out", str(out)])
    with pytest.raises(SystemExit, match="none of the fields is in quarter pixels"):
        vector_prior.main([str(tmp_path / "whole.npy"), "--out", str(out)])
    with pytest.raises(ValueError, match="quarter-pel"):
        observed_counts(np.round(zoom))
