"""Entropy coder and image bitstream: exact round trips, determinism, truncation, corruption (fuzzed)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec import bitstream
from codec.coder import ImageCodec
from codec.entropy import BitCoder, Prior, decode_counts, encode_counts, fit_plan, fit_prior
from codec.model import RNNCodec


def random_code(seed: int, t: int = 4, h: int = 6, w: int = 9, p: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bits = np.where(rng.random((t, 32, h, w)) < p, 1, -1).astype(np.int8)
    counts = rng.integers(1, t + 1, (h, w)).astype(np.uint8)
    for k in range(t):
        bits[k][:, counts <= k] = 0
    return bits, counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entropy_round_trip_and_saving(seed: int) -> None:
    bits, counts = random_code(seed, h=16, w=24)
    enc, dec = BitCoder(), BitCoder()
    chunks = [enc.encode(bits[t], counts > t) for t in range(len(bits))]
    out = np.stack([dec.decode(c, counts > t) for t, c in enumerate(chunks)])
    assert np.array_equal(out, bits)
    raw = int(np.sum(bits != 0))
    assert sum(len(c) for c in chunks) * 8 < 0.85 * raw  # p = 0.2 has 0.72 bits of entropy per bit


def test_fitted_prior_round_trip() -> None:
    bits, counts = random_code(5)
    prior = fit_prior([(bits, counts)])
    chunks = [BitCoder(prior=prior).encode(bits[0], counts > 0)]
    assert np.array_equal(BitCoder(prior=prior).decode(chunks[0], counts > 0), bits[0])
    with pytest.raises(ValueError, match="entropy prior counts"):
        BitCoder(prior=Prior(prior.counts[:3], prior.order, prior.parents))
    with pytest.raises(ValueError, match="permutation"):
        BitCoder(prior=Prior(prior.counts, np.zeros(32, np.int64), prior.parents))
    later = prior.parents.copy()
    later[prior.order[0], 0] = prior.order[1]  # the first channel coded cannot depend on the second
    with pytest.raises(ValueError, match="coded before"):
        BitCoder(prior=Prior(prior.counts, prior.order, later))


def test_plan_puts_a_channel_after_the_one_that_predicts_it() -> None:
    """Channel 7 copies channel 20 and channel 3 is its negation: the plan codes 7 or 20 first and gives the
    later ones the earlier as a parent, and the fitted prior codes the copies almost for free."""
    rng = np.random.default_rng(0)
    bits = np.where(rng.random((4, 32, 16, 16)) < 0.5, 1, -1).astype(np.int8)
    bits[:, 7] = bits[:, 20]
    bits[:, 3] = -bits[:, 20]
    counts = np.full((16, 16), 4, np.uint8)
    order, parents = fit_plan([bits])
    first = min((7, 20, 3), key=lambda c: list(order).index(c))
    for c in {7, 20, 3} - {first}:
        assert first in parents[c]
    prior = fit_prior([(bits, counts)])
    plain = sum(len(BitCoder().encode(bits[t], counts > t)) for t in range(1))
    planned = sum(len(BitCoder(prior=prior).encode(bits[t], counts > t)) for t in range(1))
    assert planned < plain * 31 / 32


def test_encoder_rejects_bits_outside_the_mask() -> None:
    bits, counts = random_code(0)
    with pytest.raises(ValueError, match="exactly where active"):
        BitCoder().encode(bits[1], np.ones_like(counts, dtype=bool))


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    torch.manual_seed(0)
    return ImageCodec(RNNCodec(width=0.0625))


@pytest.fixture(scope="module")
def coded(codec: ImageCodec) -> tuple[np.ndarray, bytes]:
    image = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    return image, codec.compress(image, 3)


def test_truncation_after_each_chunk_decodes_at_that_rate(codec: ImageCodec, coded) -> None:
    image, data = coded
    _, chunks = bitstream.unpack(data)
    assert len(chunks) == 4
    full = codec.decode(codec.chunks_to_codes(chunks))
    for k in (1, 2, 3):
        cut = data[: len(bitstream.pack(codec.model_id, chunks[: 1 + k]))]  # the full file cut after chunk k
        out = codec.decompress(cut)
        expect = codec.decompress(data, k)
        assert out.shape == image.shape and np.array_equal(out, expect)
    assert np.array_equal(codec.decompress(data), ((full[0].permute(1, 2, 0) + 0.5) * 255).round().byte().numpy())
    with pytest.raises(ValueError, match="meta chunk and at least one"):
        codec.decompress(data[: len(bitstream.pack(codec.model_id, chunks[:1]))])


def test_foreign_and_mismatched_files(codec: ImageCodec, coded) -> None:
    _, data = coded
    with pytest.raises(ValueError, match="not a drivecodec image"):
        codec.decompress(b"\x89PNG\r\n\x1a\n" + data[8:])
    with pytest.raises(ValueError, match="version"):
        codec.decompress(data[:4] + b"\x07" + data[5:])
    with pytest.raises(ValueError, match=f"older drivecodec in image format version {bitstream.VERSION - 1}"):
        codec.decompress(data[:4] + bytes([bitstream.VERSION - 1]) + data[5:])
    other = ImageCodec(RNNCodec(width=0.0625, unit="lstm"))
    with pytest.raises(ValueError, match="made by model"):
        other.decompress(data)
    with pytest.raises(ValueError, match="unexpected bytes"):
        codec.decompress(data + b"\x00" * 12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_corrupt_files_raise_value_error(codec: ImageCodec, coded, data) -> None:
    _, good = coded
    kind = data.draw(st.sampled_from(["flip", "cut", "random", "splice"]))
    if kind == "flip":
        pos = data.draw(st.integers(0, len(good) - 1))
        bad = good[:pos] + bytes([good[pos] ^ data.draw(st.integers(1, 255))]) + good[pos + 1 :]
    elif kind == "cut":
        bad = good[: data.draw(st.integers(0, len(good) - 1))]
    elif kind == "random":
        bad = data.draw(st.binary(max_size=200))
    else:
        bad = good[:23] + data.draw(st.binary(max_size=64))
    try:
        out = codec.decompress(bad)
    except ValueError:
        return
    # Only a cut exactly between chunks may decode, and then it gives a proper image.
    assert kind == "cut" and out.shape == (40, 70, 3) and out.dtype == np.uint8


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_count_map_round_trip_is_exact(h: int, w: int, iterations: int, seed: int) -> None:
    counts = np.random.default_rng(seed).integers(0, iterations + 1, (h, w))
    assert np.array_equal(decode_counts(encode_counts(counts, iterations), (h, w), iterations), counts)


def test_smooth_count_maps_cost_little() -> None:
    counts = np.zeros((32, 64), np.int64)
    counts[8:20, 10:40] = 3  # one coded region in a skipped frame
    assert len(encode_counts(counts, 3)) < 0.05 * counts.size  # well under half a bit per block


def test_bit_estimate_follows_the_prior() -> None:
    bits = np.where(np.random.default_rng(0).random((32, 4, 5)) < 0.5, 1, -1).astype(np.int8)
    bits[:, 0, 0] = 0  # not transmitted: costs nothing
    uniform = Prior.uniform(32).estimate_bits(bits)
    assert uniform.shape == (4, 5) and uniform[0, 0] == 0 and np.allclose(uniform.ravel()[1:], 32)
    skewed = Prior.uniform(32)
    skewed.counts[..., 1] = 9  # every context expects +1
    cost = skewed.estimate_bits(np.ones((32, 4, 5), np.int8))
    assert np.allclose(cost, 32 * -np.log2(0.9))


def test_meta_chunk_validation() -> None:
    with pytest.raises(ValueError, match="impossible size"):
        bitstream.parse_meta(bitstream._META.pack(0, 10, 1, 32))
    with pytest.raises(ValueError, match="count map has 3 bytes"):
        bitstream.parse_meta(bitstream._META.pack(32, 32, 1, 32) + b"jnk")


SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from codec.coder import ImageCodec
from codec.model import RNNCodec
torch.manual_seed(0)
codec = ImageCodec(RNNCodec(width=0.0625))
image = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
if sys.argv[2] == "encode":
    sys.stdout.buffer.write(codec.compress(image, 3))
else:
    data = open(sys.argv[3], "rb").read()
    codes = codec.chunks_to_codes(__import__("codec.bitstream").bitstream.unpack(data)[1])
    ref = codec.encode(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5, 3)
    assert np.array_equal(codes.bits, ref.bits) and np.array_equal(codes.counts, ref.counts)
    sys.stdout.write(str(len(codec.decompress(data).tobytes())))
"""


@pytest.mark.slow
def test_cross_thread_count_determinism(tmp_path) -> None:
    """Encode with 1 torch thread, decode with 2 in another process: the bits agree exactly."""
    data = subprocess.run([sys.executable, "-c", SCRIPT, "1", "encode"], capture_output=True, check=True).stdout
    (tmp_path / "a.bin").write_bytes(data)
    out = subprocess.run([sys.executable, "-c", SCRIPT, "2", "decode", str(tmp_path / "a.bin")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == str(64 * 96 * 3)


def test_prior_file_is_loaded_and_checked(tmp_path) -> None:
    from safetensors.numpy import save_file

    from codec.zoo import save_model

    torch.manual_seed(0)
    save_model(RNNCodec(width=0.0625), tmp_path / "m")
    plain = ImageCodec.load(tmp_path / "m")
    assert plain.prior is None
    uniform = Prior.uniform()
    tripled = Prior(uniform.counts * 3, uniform.order, uniform.parents)
    save_file(tripled.arrays(), str(tmp_path / "m.entropy.safetensors"))
    with_prior = ImageCodec.load(tmp_path / "m")
    assert with_prior.prior is not None and with_prior.model_id != plain.model_id
    image = np.full((32, 32, 3), 100, np.uint8)
    assert with_prior.decompress(with_prior.compress(image, 2)).shape == (32, 32, 3)
    (tmp_path / "m.entropy.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="entropy prior"):
        ImageCodec.load(tmp_path / "m")
    save_file({**uniform.arrays(), "counts": uniform.counts[:4]}, str(tmp_path / "m.entropy.safetensors"))
    with pytest.raises(ValueError, match="shape"):
        ImageCodec.load(tmp_path / "m")


def test_sabr_codes_survive_chunks(codec: ImageCodec) -> None:
    """Spatially adaptive codes: the count map and the masked bits round-trip through the chunks exactly."""
    x = torch.rand(1, 3, 48, 80) - 0.5

    def keep(t: int, before: torch.Tensor, after: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        assert rate.shape == (4, 6) and bool((rate >= 0).all())
        kept = torch.ones(4, 6, dtype=torch.bool)
        kept[:t, :3] = False  # from the second iteration on, one more row of blocks stops each time
        return kept

    codes = codec.encode(x, 4, keep)
    chunks = codec.codes_to_chunks(codes)
    back = codec.chunks_to_codes(chunks)
    assert np.array_equal(back.bits, codes.bits) and np.array_equal(back.counts, codes.counts)
    assert codes.counts.min() == 1 and codes.counts.max() == 4
    assert torch.equal(codec.decode(back), codes.recon)
    prefix = codec.chunks_to_codes(chunks[:3])
    assert prefix.iterations == 2 and np.array_equal(prefix.counts, np.minimum(codes.counts, 2))
    assert torch.equal(codec.decode(prefix), codec.decode(codes, 2))
