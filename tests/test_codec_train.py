"""Training: losses' common signature, a 2-step run by subprocess into a tmp dir, resume, init; CLI round trip."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from codec.data import CropSource, Pair
from codec.losses import L1Loss, L2Loss, MSSSIMLoss, iteration_weights, weighted_total
from codec.model import RNNCodec
from codec.zoo import load_model, save_model
from pipeline.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent


def train_config(**overrides):
    """The shipped training defaults (conf/train/cpu.yaml, their one source) with ``overrides``."""
    from dataclasses import fields

    from hydra import compose, initialize_config_dir

    from codec.train import TrainConfig
    from pipeline.paths import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        train = compose("config").train
    return TrainConfig(**{**{f.name: train[f.name] for f in fields(TrainConfig)}, **overrides})


def test_losses_signature_and_weighting() -> None:
    recon, target = torch.rand(2, 2, 3, 64, 64), torch.rand(2, 2, 3, 64, 64)
    assert torch.isclose(L1Loss()(recon, target, None, None), (recon - target).abs().mean())
    assert torch.isclose(L2Loss()(recon, target, None, None), (recon - target).square().mean())
    assert float(MSSSIMLoss(win_size=3)(target, target, None, None)) < 1e-5
    assert float(MSSSIMLoss(win_size=3)(recon, target, None, None)) > 0.1
    with pytest.raises(ValueError, match="needs crops larger"):
        MSSSIMLoss()(recon, target, None, None)

    class PairOnly(torch.nn.Module):
        def forward(self, recon, target, flow, valid):
            return flow.abs().mean()

    losses = [("l1", L1Loss(), 2.0), ("pair", PairOnly(), 10.0)]
    total, parts = weighted_total(losses, [recon, target], target, None, None)
    assert set(parts) == {"l1"} and torch.isclose(total, (recon - target).abs().mean())  # mean of 2 iterations
    total, parts = weighted_total(losses, [target], target, torch.ones(2, 2, 64, 64), None)
    assert set(parts) == {"l1", "pair"} and float(total) == pytest.approx(10.0)


def test_iteration_ramp_weighs_later_iterations_more() -> None:
    assert torch.equal(iteration_weights(4), torch.ones(4))
    weights = iteration_weights(3, ramp=2.0)
    assert torch.allclose(weights, torch.tensor([1.0, 2.0, 4.0]) * 3 / 7)
    with pytest.raises(ValueError, match="ramp must be > 0"):
        iteration_weights(3, ramp=0.0)
    recon, target = torch.zeros(1, 1, 3, 64, 64), torch.ones(1, 1, 3, 64, 64)
    # Only the second iteration errs: its weight 2 x 2/3 scales the mean of [0, 1].
    total, _ = weighted_total([("l1", L1Loss(), 1.0)], [target, recon], target, None, None, ramp=2.0)
    assert float(total) == pytest.approx(2 / 3)


@pytest.mark.slow
def test_flow_loss_config_trains_on_pairs(tmp_path: Path) -> None:
    """conf/loss/l1_flow.yaml builds (the weight is taken off before instantiation) and trains on pairs."""
    from omegaconf import OmegaConf

    from codec.model import ModelConfig
    from codec.train import train
    from pipeline.commands.train import build_losses

    losses = build_losses(OmegaConf.load(REPO / "conf" / "loss" / "l1_flow.yaml"))
    assert [(n, w) for n, _, w in losses] == [("l1", 1.0), ("flow", 0.1)]
    frame = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    source = CropSource([], [Pair(frame, frame, np.zeros((40, 40, 2), np.float32))])
    cfg = train_config(steps=1, batch=1, iterations=2, pair_fraction=1.0, threads=1)
    train(ModelConfig(width=0.0625), losses, source, cfg, tmp_path)
    assert "flow=" in (tmp_path / "log.csv").read_text()


def test_bf16_training_runs_the_network_in_bf16_and_auto_keeps_fp32_on_a_cpu(tmp_path: Path, monkeypatch) -> None:
    from codec import train as training
    from codec.model import ModelConfig

    seen = []  # the dtype each step's last decoder output leaves the network in
    decode_step = RNNCodec.decode_step

    def recording(self, *args, **kwargs):
        out, state = decode_step(self, *args, **kwargs)
        seen.append(out.dtype)
        return out, state

    monkeypatch.setattr(RNNCodec, "decode_step", recording)
    frame = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for precision in ("auto", "bf16"):
        cfg = train_config(steps=1, batch=1, crop=32, iterations=2, threads=1, device="cpu", precision=precision)
        training.train(ModelConfig(width=0.0625), [("l1", L1Loss(), 1.0)], CropSource([frame]), cfg,
                       tmp_path / precision)
    assert seen == [torch.float32] * 2 + [torch.bfloat16] * 2  # two iterations each
    assert training.training_precision("auto", torch.device("cuda")) == "bf16"
    with pytest.raises(ValueError, match="train.precision='fp16'"):
        training.training_precision("fp16", torch.device("cpu"))


def test_crop_source_pairs_and_valid() -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    flow = np.zeros((48, 64, 2), np.float32)
    flow[..., 0] = 40.0  # everything moves 40 px right: most of a 32-px crop leaves it
    source = CropSource([frame], [Pair(frame, frame, flow)])
    target, f, valid = source.sample(np.random.default_rng(0), 3, 32, pairs=True)
    assert target.shape == (3, 2, 3, 32, 32) and f.shape == (3, 2, 32, 32) and valid.shape == (3, 1, 32, 32)
    assert float(valid.sum()) == 0.0
    target, f, valid = source.sample(np.random.default_rng(0), 2, 32)
    assert target.shape == (2, 1, 3, 32, 32) and f is None and valid is None


def _train_args(tmp: Path, steps: int, extra: list[str] = ()) -> list[str]:
    images = tmp / "images"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "a.png"), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    return ["train", f"train.steps={steps}", "train.batch=2", "train.iterations=2",
            "train.checkpoint_every=1", "train.threads=1", f"train.out_dir={tmp / 'run'}", "train.sources.kodak=null",
            "train.sources.cityscapes=null", "train.sources.dashcam=null", "train.sources.sample=null",
            f"train.sources.images=[{images}]", "codec.model.width=0.0625", f"hydra.run.dir={tmp / 'hydra'}", *extra]


@pytest.mark.slow
def test_train_two_steps_then_resume_then_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [sys.executable, "-m", "pipeline", *_train_args(tmp_path, 2, [f"train.export={tmp_path / 'exported'}"])]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    meta = json.loads((tmp_path / "run" / "last.json").read_text())
    assert meta["step"] == 2 and meta["model"]["width"] == 0.0625
    assert (tmp_path / "exported.safetensors").is_file()
    assert cli_main(_train_args(tmp_path, 3)) == 0
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # resumed at step 2, not restarted
    assert json.loads((tmp_path / "run" / "last.json").read_text())["step"] == 3

    # CLI: encode and decode with the exported weights, then decode a prefix.
    image = tmp_path / "images" / "a.png"
    weights = f"codec.weights={tmp_path / 'exported'}"
    cli = [sys.executable, "-m", "pipeline"]
    enc = subprocess.run([*cli, "encode", str(image), str(tmp_path / "a.bin"), "codec.iterations=3", weights,
                          f"hydra.run.dir={tmp_path / 'hydra'}"], capture_output=True, text=True, cwd=REPO)
    assert enc.returncode == 0, enc.stderr[-2000:]
    hydra_dir = f"hydra.run.dir={tmp_path / 'hydra'}"
    assert cli_main(["decode", str(tmp_path / "a.bin"), str(tmp_path / "b.png"), weights,
                     "codec.decode_iterations=2", hydra_dir]) == 0
    assert cv2.imread(str(tmp_path / "b.png")).shape == (64, 80, 3)
    assert cli_main(["decode", str(image), str(tmp_path / "c.png"), weights, hydra_dir]) == 2
    assert "unknown format" in capsys.readouterr().err


@pytest.mark.slow
def test_init_checkpoint_must_match_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    save_model(RNNCodec(width=0.0625, unit="lstm"), tmp_path / "init")
    assert cli_main(_train_args(tmp_path, 1, [f"train.init={tmp_path / 'init'}"])) == 2
    assert "init weights" in capsys.readouterr().err


def test_schedule_ends_with_steps_or_time_budget() -> None:
    from codec.train import lr_at, progress

    cfg = train_config(steps=100, lr=1e-3, lr_min=1e-5, max_minutes=10)
    assert progress(cfg, 0, 0.0) == 0.0 and lr_at(cfg, 0.0) == pytest.approx(1e-3)
    assert progress(cfg, 50, 60.0) == 0.5  # step-bound
    assert progress(cfg, 10, 300.0) == 0.5  # time-bound on a slow machine
    assert progress(cfg, 10, 900.0) == 1.0 and lr_at(cfg, 1.0) == pytest.approx(1e-5)
    assert progress(train_config(steps=100, max_minutes=None), 10, 1e6) == 0.1  # no time budget
    assert progress(train_config(steps=100, max_minutes=0), 0, 0.0) == 1.0  # no time: nothing trains


@pytest.mark.slow
def test_init_may_switch_reconstruction(tmp_path: Path) -> None:
    """An additive model fine-tunes as scaled-additive: same layers, the per-iteration gains become trainable."""
    additive = RNNCodec(width=0.0625, reconstruction="additive")
    save_model(additive, tmp_path / "init")
    args = _train_args(tmp_path, 1, [f"train.init={tmp_path / 'init'}", "codec.model.reconstruction=scaled_additive"])
    assert cli_main(args) == 0
    meta = json.loads((tmp_path / "run" / "last.json").read_text())
    assert meta["model"]["reconstruction"] == "scaled_additive"
    trained = load_model(tmp_path / "run" / "last")
    assert trained.log_gain.requires_grad and not torch.equal(trained.log_gain, additive.log_gain)


def test_conditional_model_starts_as_the_unconditional_one_and_trains_on_pairs(tmp_path: Path) -> None:
    """Residual training: (frame, prediction) pairs, frame-domain loss; a conditional model initialised from an
    unconditional one computes exactly what it did (zero condition layers), then learns to use the prediction."""
    from codec.model import ModelConfig
    from codec.train import train

    torch.manual_seed(0)
    plain = RNNCodec(width=0.0625).eval()
    save_model(plain, tmp_path / "init")
    conditional = RNNCodec(ModelConfig(width=0.0625, condition=True)).eval()
    conditional.load_state_dict(plain.state_dict(), strict=False)
    x, cond = torch.rand(1, 3, 32, 32) - 0.5, torch.rand(1, 3, 32, 32) - 0.5
    with torch.no_grad():
        assert torch.equal(conditional(x, 2, cond)[-1], plain(x, 2)[-1])
    with pytest.raises(ValueError, match="needs a condition image"):
        conditional(x, 1)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    prediction = np.clip(frame.astype(int) + rng.integers(-8, 9, frame.shape), 0, 255).astype(np.uint8)
    source = CropSource([np.concatenate([frame, prediction], axis=-1)])
    cfg = train_config(steps=2, batch=2, crop=32, iterations=2, threads=1, residual_gain=2.0)
    last = train(ModelConfig(width=0.0625, condition=True), [("l1", L1Loss(), 1.0)], source, cfg, tmp_path / "run",
                 init=tmp_path / "init")
    trained = load_model(last.with_suffix(""))
    assert trained.config.condition and float(trained.enc_cond.weight.detach().abs().sum()) > 0


def test_block_counts_skip_the_quiet_blocks_and_stop_the_others_at_random() -> None:
    from codec.train import block_counts

    torch.manual_seed(5)
    x = torch.zeros(64, 3, 64, 64)
    x[:, :, :, 32:] = 0.3  # the right half of every image holds all the residual energy
    counts = block_counts(x, 6, share=0.5)
    assert counts.shape == (64, 4, 4) and int(counts.min()) >= 0 and int(counts.max()) == 6
    masked = (counts < 6).flatten(1).any(1)
    assert 16 < int(masked.sum()) < 48  # about half the images
    assert bool((counts[~masked] == 6).all())  # the others: every block, every iteration
    skipped = (counts[masked] == 0).flatten(1, 2)  # (images, 4 x 4), the quiet blocks in columns 0 and 1
    quiet = torch.arange(16) % 4 < 2
    assert bool(skipped.any()) and not bool(skipped.all(1).any())  # up to 90 % skipped
    assert bool(skipped[:, quiet].all(1)[skipped[:, ~quiet].any(1)].all())  # the quiet ones first
    assert len(counts[masked][counts[masked] > 0].unique()) == 6  # the others stop after 1..6
    assert bool((block_counts(x, 6, share=0.0) == 6).all())


def test_rate_loss_prices_bits_by_their_context(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from codec.entropy import Prior
    from codec.losses import RateLoss

    prior = Prior.uniform(32)
    prior.counts[..., 1] = 3  # every context expects +1 three times out of four
    save_file(prior.arrays(), str(tmp_path / "p.entropy.safetensors"))
    loss = RateLoss(str(tmp_path / "p.entropy.safetensors"))
    ones = torch.ones(2, 32, 4, 4, requires_grad=True)
    bpp = loss(ones, None)
    assert float(bpp.detach()) == pytest.approx(32 * -np.log2(0.75) / 256, rel=1e-5)
    assert float(loss(-torch.ones(2, 32, 4, 4), None)) == pytest.approx(32 * 2 / 256, rel=1e-5)
    (grad,) = torch.autograd.grad(bpp, ones)
    assert bool((grad < 0).all())  # raising a bit towards the expected +1 lowers the rate
    half_sent = torch.ones(2, 32, 4, 4)
    half_sent[..., 2:] = 0  # unsent blocks (their bits 0) cost nothing
    assert float(loss(half_sent, None)) == pytest.approx(float(bpp.detach()) / 2, rel=1e-5)
    recons = [torch.rand(2, 1, 3, 64, 64)]
    with pytest.raises(ValueError, match="needs the model's bits"):
        weighted_total([("rate", loss, 1.0)], recons, recons[0], None, None)
    total, parts = weighted_total([("rate", loss, 0.5)], recons, recons[0], None, None, bits=[ones.detach()])
    assert float(total) == pytest.approx(0.5 * float(bpp.detach())) and "rate" in parts


def test_net_rate_loss_prices_bits_as_the_context_net_codes_them() -> None:
    from codec.context import NetBitCoder
    from codec.entropy import Prior
    from codec.losses import NetRateLoss

    path = REPO / "codec/weights/residual.entropy.safetensors"
    prior = Prior.from_arrays(load_file(str(path)), 32)
    loss = NetRateLoss(str(path))
    rng = np.random.default_rng(0)

    def correlated_bits() -> np.ndarray:  # bits with structure across positions and channels, like real codes
        x = rng.normal(size=(32, 12, 16))
        x[:, 1:] += x[:, :-1]
        x[:16] += x[16:]
        return np.where(x + 0.8 > 0, 1, -1).astype(np.int8)

    first, second = correlated_bits(), correlated_bits()
    coder = NetBitCoder(prior.net, prior.order, 32)
    coded_first = coder.cost(first).sum()
    coder.encode(first, np.ones((12, 16), bool))
    coded_second = coder.cost(second).sum()
    bits = torch.from_numpy(second[None]).float().requires_grad_()
    estimate = loss(bits, torch.from_numpy(first[None]).float(), 1)
    assert float(estimate.detach()) * 12 * 16 * 256 == pytest.approx(coded_second, rel=0.02)
    assert float(loss(torch.from_numpy(first[None]).float(), None, 0)) * 12 * 16 * 256 == pytest.approx(
        coded_first, rel=0.02)
    (grad,) = torch.autograd.grad(estimate, bits)
    # The bit the gradient most wants flipped (grad * bit > 0: the net expects the other sign) costs less flipped.
    flip = (grad * bits.detach()).argmax()
    flipped = bits.detach().flatten().clone()
    flipped[flip] = -flipped[flip]
    assert float(loss(flipped.view_as(bits), torch.from_numpy(first[None]).float(), 1)) < float(estimate.detach())
    with pytest.raises(ValueError, match="no learned context net"):
        NetRateLoss(str(REPO / "codec/weights/intra.entropy.safetensors"))


@pytest.mark.slow
def test_a_configured_source_that_is_missing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = _train_args(tmp_path, 1, [f"train.sources.kodak={tmp_path / 'no-kodak'}"])
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "train.sources.kodak" in err and "no-kodak" in err and "=null" in err


def test_closed_loop_pairs_join_consecutive_p_frames_with_their_flow(tmp_path: Path) -> None:
    """Consecutive P-frames of one sequence and quality form pairs (none across qualities or gaps), their flow is
    the frames' motion, and a residual model trains on them with the flow loss."""
    from codec.model import ModelConfig
    from codec.train import train
    from flow.losses import FlowConsistencyLoss
    from pipeline.commands.train import closed_loop_pairs

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 120, 3)).astype(np.uint8), (0, 0), 2.0)
    frames = {k: np.ascontiguousarray(texture[:, 20 - 2 * k : 116 - 2 * k]) for k in range(1, 4)}  # 2 px right each
    for name, k, quality in (("cs_seqA", 1, 30), ("cs_seqA", 2, 30), ("cs_seqA", 3, 30), ("cs_seqA", 1, 40),
                             ("cs_seqB", 1, 30), ("cs_seqB", 3, 30)):
        np.save(tmp_path / f"{name}_{k:04d}_q{quality}.npy", np.concatenate([frames[k], frames[k] // 2], axis=-1))
    pairs = closed_loop_pairs(tmp_path)
    assert len(pairs) == 2
    assert np.array_equal(pairs[0].first[..., :3], frames[1]) and np.array_equal(pairs[0].second[..., :3], frames[2])
    assert pairs[0].first.shape == (64, 96, 6) and pairs[0].flow.shape == (64, 96, 2)
    interior = pairs[1].flow[16:-16, 16:-16]
    assert np.median(interior[..., 0]) == pytest.approx(2.0, abs=0.3)
    assert np.median(interior[..., 1]) == pytest.approx(0.0, abs=0.3)

    cfg = train_config(steps=1, batch=1, crop=32, iterations=2, pair_fraction=1.0, threads=1, residual_gain=2.0)
    losses = [("l1", L1Loss(), 1.0), ("flow", FlowConsistencyLoss(), 0.5)]
    train(ModelConfig(width=0.0625, condition=True), losses, CropSource([], pairs), cfg, tmp_path / "run")
    assert "flow=" in (tmp_path / "run" / "log.csv").read_text()

    np.save(tmp_path / "cs_seqA_0004_q30.npy", np.zeros((64, 96, 3), np.uint8))
    with pytest.raises(ValueError, match="seqA at quality 30"):
        closed_loop_pairs(tmp_path)
    np.save(tmp_path / "stray.npy", np.zeros((64, 96, 6), np.uint8))
    with pytest.raises(ValueError, match="stray.npy"):
        closed_loop_pairs(tmp_path)
