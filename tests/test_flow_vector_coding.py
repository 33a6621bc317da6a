import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flow.vector_coding import decode_vectors, encode_vectors, med, merge_index, predict, vector_bits


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
    # the first row and column send their residuals (up to 32 bits a block), the rest about a bit at most
    rows, cols = board.shape
    assert vector_bits(data) < 32 * (rows + cols) + (rows - 1) * (cols - 1)


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
