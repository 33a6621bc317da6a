"""The learned context model: exact integer arithmetic, bit-exact round trips, its training on real codes."""

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from codec import bitstream
from codec.context import EXACT, ContextNet, IterationContext, NetBitCoder, groups, n_features
from codec.context_train import bit_features, main, quantise, train_float
from codec.entropy import BitCoder, Prior, bit_coder, fit_prior
from codec.model import Codes
from tests.test_codec_bitstream import random_code


def correlated_code(seed: int, t: int = 3, h: int = 12, w: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Codes of mostly -1 bits whose channel 5 copies channel 9 (0.72 bits of entropy per bit at most)."""
    bits, counts = random_code(seed, t, h, w, p=0.2)
    bits[:, 5] = bits[:, 9]
    return bits, counts


@pytest.fixture(scope="module")
def trained() -> tuple[Prior, list[tuple[np.ndarray, np.ndarray]]]:
    torch.manual_seed(0)
    codes = [correlated_code(seed) for seed in range(6)]
    plan = fit_prior(codes)
    x, y = zip(*(bit_features(b, c, plan.order) for b, c in codes), strict=True)
    x, y = np.concatenate(x), np.concatenate(y)
    float_net = train_float(x, y, epochs=8)
    net = quantise(float_net, x)
    # Quantisation costs less than 1 % of the float net's cross-entropy.
    with torch.no_grad():
        p_float = torch.sigmoid(float_net(torch.from_numpy(x))[:, 0]).double().numpy()
    p_int = net.p1(x)
    entropy = [-np.mean(np.where(y > 0, np.log2(p), np.log2(1 - p))) for p in (p_float, p_int)]
    assert entropy[1] < 1.01 * entropy[0]
    return Prior(plan.counts, plan.order, plan.parents, net), codes


def test_integer_net_is_exact_on_extreme_inputs(trained) -> None:
    """Float32 BLAS and int64 arithmetic agree on every layer, even at the largest inputs the coder forms."""
    net = trained[0].net
    rng = np.random.default_rng(1)
    x = rng.choice([-4.0, -1.0, 0.0, 1.0, 4.0], size=(500, n_features(32))).astype(np.float32)
    x[:50] = 4.0 * np.sign(net.w1.sum(axis=1))  # pushes layer 1 to its largest sums
    s = [int(v) for v in net.shifts]
    h = np.clip((x.astype(np.int64) @ net.w1.astype(np.int64) + net.b1.astype(np.int64)) >> s[0], 0, 255)
    h = np.clip((h @ net.w2.astype(np.int64) + net.b2.astype(np.int64)) >> s[1], 0, 255)
    steps = (h @ net.w3.astype(np.int64) + net.b3.astype(np.int64))[:, 0] >> s[2]
    limit = (len(net.table) - 1) // 2
    assert np.array_equal(net.logit_index(x), np.clip(steps, -limit, limit) + limit)


def test_net_round_trip_and_saving(trained) -> None:
    prior, codes = trained
    bits, counts = correlated_code(99)  # not among the training codes
    code = Codes(bits=bits, counts=counts, height=12 * 16, width=16 * 16)
    chunks = bitstream.codes_to_chunks(code, prior)
    out = bitstream.chunks_to_codes(chunks, prior)
    assert np.array_equal(out.bits, bits) and np.array_equal(out.counts, counts)
    assert sum(map(len, chunks[1:])) * 8 < 0.8 * np.sum(bits != 0)


def test_cost_estimate_is_what_the_coder_spends(trained) -> None:
    prior, _ = trained
    bits, counts = correlated_code(7)
    coder = bit_coder(32, prior)
    assert isinstance(coder, NetBitCoder)
    for t in range(len(bits)):
        estimate = prior.estimate_bits(bits[t], bits[t - 1] if t else None, t)
        spent = 8 * len(coder.encode(bits[t], counts > t))
        assert estimate[counts <= t].sum() == 0
        assert abs(estimate.sum() - spent) <= 32 + 0.01 * spent  # the range coder's flush and rounding


def test_features_see_only_what_the_decoder_has() -> None:
    """A bit's features do not change when bits coded after it change."""
    bits, counts = random_code(3, t=2)
    order = np.arange(32)[::-1].copy()
    active = counts > 1
    first = IterationContext(bits[0], 1)
    other = bits[1].copy()
    seen = []
    for c, half, ys, xs in groups(active, order):
        seen.append(first.features(c, half, ys, xs))
        first.set(c, ys, xs, bits[1][c, ys, xs])
        if half:
            first.finish(c)
    last = order[-1]  # the last group coded: the second checkerboard half of the last channel
    second = (np.add.outer(np.arange(active.shape[0]), np.arange(active.shape[1])) % 2 == 1) & active
    other[last][second] = -other[last][second]
    ctx = IterationContext(bits[0], 1)
    for i, (c, half, ys, xs) in enumerate(groups(active, order)):
        assert np.array_equal(ctx.features(c, half, ys, xs), seen[i])
        ctx.set(c, ys, xs, other[c, ys, xs])
        if half:
            ctx.finish(c)


def test_prior_file_keeps_the_net_and_the_model_id_names_it(trained, tmp_path) -> None:
    prior, codes = trained
    save_file(prior.arrays(), str(tmp_path / "p.safetensors"))
    again = Prior.from_arrays(load_file(str(tmp_path / "p.safetensors")), 32)
    assert again.digest_bytes() == prior.digest_bytes()
    x, _ = bit_features(*codes[0], prior.order)
    assert np.array_equal(again.net.logit_index(x), prior.net.logit_index(x))
    assert isinstance(bit_coder(32, again), NetBitCoder)
    plain = Prior(prior.counts, prior.order, prior.parents)
    assert plain.digest_bytes() != prior.digest_bytes()
    assert isinstance(bit_coder(32, plain), BitCoder)


def test_damaged_or_inexact_nets_are_refused(trained) -> None:
    arrays = trained[0].arrays()
    wide = dict(arrays, ctx_w1=arrays["ctx_w1"] * 0 + EXACT // 100)
    with pytest.raises(ValueError, match="2\\*\\*24"):
        ContextNet.from_arrays(wide, 32)
    with pytest.raises(ValueError, match="integers"):
        ContextNet.from_arrays(dict(arrays, ctx_w2=arrays["ctx_w2"] + 0.5), 32)
    with pytest.raises(ValueError, match="shape"):
        ContextNet.from_arrays(arrays, 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        NetBitCoder(trained[0].net, trained[0].order, 32).decode(b"\x01\x02\x03", np.ones((4, 4), bool))


def test_training_cli_writes_a_prior_the_coder_reads(tmp_path, capsys) -> None:
    codes = [correlated_code(seed) for seed in range(4)]
    paths = []
    for i, (bits, counts) in enumerate(codes):
        paths.append(tmp_path / f"c{i}.npz")
        np.savez(paths[-1], bits=bits, counts=counts)
    save_file(fit_prior(codes).arrays(), str(tmp_path / "m.entropy.safetensors"))
    assert main([str(tmp_path / "m"), *map(str, paths[:3]), "--val", str(paths[3]), "--out", str(tmp_path / "n"),
                 "--epochs", "3"]) == 0
    assert "val: coded/raw" in capsys.readouterr().out
    prior = Prior.from_arrays(load_file(str(tmp_path / "n.entropy.safetensors")), 32)
    assert prior.net is not None


def test_incremental_first_layer_is_the_features_product(trained) -> None:
    """The coder's running first-layer sums equal features @ w1 + b1 exactly, group by group."""
    prior, _ = trained
    bits, counts = correlated_code(11)
    fast, slow = IterationContext(bits[0], 1, prior.net), IterationContext(bits[0], 1)
    for c, half, ys, xs in groups(counts > 1, prior.order):
        assert np.array_equal(fast.layer1(c, half, ys, xs), slow.features(c, half, ys, xs) @ prior.net.w1 +
                              prior.net.b1)
        for ctx in (fast, slow):
            ctx.set(c, ys, xs, bits[1][c, ys, xs])
            if half:
                ctx.finish(c)
