"""The training loop: Adam with a cosine schedule, per-iteration losses, safetensors checkpoints and resume.

``out_dir`` receives ``last.safetensors`` + ``last.json`` (model config, step, train config), ``last_optim.pt``
(optimizer state) and ``log.csv``. Running again with the same ``out_dir`` resumes from the last checkpoint.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from atomic import temporary_path
from codec.data import CropSource
from codec.losses import WeightedLoss, weighted_total
from codec.model import ModelConfig, RNNCodec
from codec.precision import PRECISIONS, compute_precision
from codec.zoo import load_model, read_meta, save_model


@dataclass
class TrainConfig:
    """The training settings. Their defaults live in one place, ``conf/train/cpu.yaml`` (which documents each)."""

    steps: int
    batch: int
    crop: int  # multiples of 32
    iterations: int
    iteration_ramp: float  # iteration t's loss weight grows as ramp ** t (1.0: all alike, the paper)
    lr: float
    lr_min: float
    pair_fraction: float  # share of steps on consecutive-frame pairs (flow losses)
    checkpoint_every: int
    max_minutes: float | None  # training-time budget over all resumes; the schedule ends with it
    seed: int
    threads: int
    device: str  # auto | cpu | cuda
    precision: str  # auto (bf16 on a GPU, fp32 on a CPU) | fp32 | bf16: the arithmetic of the forward pass
    # Residual training: images are (frame, prediction) pairs (6 channels); the model codes
    # (frame - prediction) * residual_gain (conditional models also see the prediction) and the losses
    # compare prediction + decoded residual with the frame. None: plain images.
    residual_gain: float | None
    block_masks: float  # residual training: share of crops coded as the coder codes P-frames (block_counts)


def progress(cfg: TrainConfig, step: int, seconds: float) -> float:
    """Fraction of the budget used: steps, or training time when ``max_minutes`` runs out first.

    On a shared CPU the step rate varies several-fold, so a step-only schedule could stop mid-decay.
    ``max_minutes`` None: no time budget; 0 (or less): none left, so nothing trains.
    """
    done = step / cfg.steps
    if cfg.max_minutes is not None:
        done = 1.0 if cfg.max_minutes <= 0 else max(done, seconds / (60 * cfg.max_minutes))
    return min(done, 1.0)


def lr_at(cfg: TrainConfig, fraction: float) -> float:
    """Cosine decay from ``lr`` to ``lr_min`` as the budget fraction goes from 0 to 1."""
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * fraction))


def train(model_config: ModelConfig, losses: list[WeightedLoss], source: CropSource, cfg: TrainConfig,
          out_dir: str | Path, init: str | Path | None = None) -> Path:
    """Train (or resume) into ``out_dir``; ``init`` names weights to start from. Returns the last checkpoint.

    ``losses`` are (name, module, weight); ``source`` gives (B, T, 3, H, W) crops in [0, 1].
    """
    if cfg.crop % 32:
        raise ValueError(f"crop must be a multiple of 32, got {cfg.crop}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    last = out_dir / "last"
    step, seconds = 0, 0.0
    if last.with_suffix(".json").is_file():
        model = load_model(last, device).train()
        meta = read_meta(last)
        step, seconds = int(meta["step"]), float(meta.get("seconds", 0.0))
    elif init is not None:
        model = _init_model(init, model_config, device)
    else:
        torch.manual_seed(cfg.seed)
        model = RNNCodec(model_config).to(device).train()
    losses = [(name, loss.to(device), float(weight)) for name, loss, weight in losses]
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    optim_path = out_dir / "last_optim.pt"
    if step and optim_path.is_file():
        optim.load_state_dict(torch.load(optim_path, map_location=device))
    log_path = out_dir / "log.csv"
    new_log = not log_path.is_file()
    start = time.monotonic() - seconds  # training time so far, carried over resumes
    amp = compute_precision(training_precision(cfg.precision, device), device)
    with log_path.open("a", newline="") as log_file, tqdm(total=cfg.steps, initial=step, desc="train") as bar:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "loss", "parts", "lr", "seconds"])
        while step < cfg.steps and progress(cfg, step, time.monotonic() - start) < 1.0:
            # Seed per step so a resumed run draws the same crops it would have drawn uninterrupted.
            rng = np.random.default_rng([cfg.seed, step])
            torch.manual_seed(cfg.seed * 1_000_003 + step)
            pairs = bool(source.pairs) and rng.random() < cfg.pair_fraction
            target, flow, valid = source.sample(rng, cfg.batch, cfg.crop, pairs=pairs)
            target = target.to(device)
            flow = flow.to(device) if flow is not None else None
            valid = valid.to(device) if valid is not None else None
            lr = lr_at(cfg, progress(cfg, step, time.monotonic() - start))
            for group in optim.param_groups:
                group["lr"] = lr
            bits: list[torch.Tensor] | None = [] if any(getattr(m, "uses_bits", False) for _, m, _ in losses) else None
            with amp:
                recons, target = _reconstruct(model, target, cfg, bits)
            total, parts = weighted_total(losses, recons, target, flow, valid, cfg.iteration_ramp, bits)
            optim.zero_grad(set_to_none=True)
            total.backward()
            optim.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{float(total.detach()):.4f}")
            log.writerow([step, f"{float(total.detach()):.6f}", " ".join(f"{k}={v:.5f}" for k, v in parts.items()),
                          f"{lr:.3g}", f"{time.monotonic() - start:.1f}"])
            finished = step == cfg.steps or progress(cfg, step, time.monotonic() - start) >= 1.0
            if step % cfg.checkpoint_every == 0 or finished:
                log_file.flush()
                _checkpoint(model, optim, last, step, time.monotonic() - start, cfg)
    return last.with_suffix(".safetensors")


def training_precision(setting: str, device: torch.device) -> str:
    """``train.precision`` resolved on ``device``: auto is bf16 on a GPU and fp32 on a CPU."""
    if setting == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if setting not in PRECISIONS:
        raise ValueError(f"train.precision={setting!r} is unknown; expected auto or one of {PRECISIONS}")
    return setting


def _reconstruct(model: RNNCodec, target: torch.Tensor, cfg: TrainConfig,
                 bits: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(B, T, C, H, W) batch in [0, 1] -> per-iteration reconstructions and the target, both (B, T, 3, H, W).

    Plain images (C = 3) are coded as they are. (frame, prediction) pairs (C = 6) code the gained residual, and
    the reconstruction is taken back to the frame domain: prediction + decoded residual / gain. Each
    iteration's bits are appended to ``bits`` when given (rate losses).
    """
    b, t = target.shape[:2]
    if cfg.residual_gain is None:
        recons = model(target.flatten(0, 1) - 0.5, cfg.iterations, bits_out=bits)
        return [(r.float() + 0.5).unflatten(0, (b, t)) for r in recons], target
    if target.shape[2] != 6:
        raise ValueError(f"residual training needs (frame, prediction) pairs with 6 channels, got {target.shape[2]}")
    frame, prediction = target[:, :, :3].flatten(0, 1), target[:, :, 3:].flatten(0, 1)
    x = ((frame - prediction) * cfg.residual_gain).clamp(-0.5, 0.5)
    cond = prediction - 0.5 if model.config.condition else None
    counts = block_counts(x, cfg.iterations, cfg.block_masks) if cfg.block_masks > 0 else None
    recons = model(x, cfg.iterations, cond, bits, counts)
    return ([(prediction + r.float() / cfg.residual_gain).unflatten(0, (b, t)) for r in recons],
            frame.unflatten(0, (b, t)))


def block_counts(x: torch.Tensor, iterations: int, share: float, max_skip: float = 0.9) -> torch.Tensor:
    """(B, 3, H, W) scaled residuals -> (B, H/16, W/16) int64 iterations per 16x16 block, as the video coder's
    rate control spends them on P-frames (:meth:`codec.model.RNNCodec.forward`'s ``counts``).

    In a random ``share`` of the images the blocks of least residual energy, a random 0..``max_skip`` of them, get
    none (the coder sends nothing for 76-97 % of P-frame blocks) and every other block stops after a random 1 ..
    ``iterations``; the rest code every block every iteration. Trained only densely, the model never sees a
    block whose neighbours send nothing, which is most coded blocks of a P-frame.
    """
    b, _, height, width = x.shape
    energy = x.detach().float().abs().unflatten(2, (height // 16, 16)).unflatten(4, (width // 16, 16)).mean((1, 3, 5))
    counts = torch.randint(1, iterations + 1, energy.shape, device=x.device)
    ranks = energy.flatten(1).argsort(1).argsort(1).view_as(energy)  # 0 = least energy
    skipped = ranks < (torch.rand(b, 1, 1, device=x.device) * max_skip * ranks[0].numel()).floor()
    masked = torch.rand(b, 1, 1, device=x.device) < share
    return torch.where(masked, counts.masked_fill(skipped, 0), iterations)


def _init_model(init: str | Path, model_config: ModelConfig, device: torch.device) -> RNNCodec:
    """Weights to fine-tune from. Only the reconstruction and ``condition`` may differ from ``model_config``: an
    additive model continues as scaled-additive (its per-iteration gains start untrained), an unconditional one
    as conditional (its condition layers start at zero, so it starts out computing what it did)."""
    model = load_model(init, device)
    switchable = {"reconstruction": model_config.reconstruction, "condition": model_config.condition}
    if replace(model.config, **switchable) != model_config:
        raise ValueError(f"init weights {init} were built with {model.config}, the config asks for {model_config}")
    if model.config != model_config:
        converted = RNNCodec(model_config).to(device)
        missing, unexpected = converted.load_state_dict(model.state_dict(), strict=False)
        if unexpected or any(not name.startswith(("enc_cond", "dec_cond")) for name in missing):
            raise ValueError(f"init weights {init} do not fit {model_config}: missing {missing}, extra {unexpected}")
        model = converted
    return model.train()


def _checkpoint(model: RNNCodec, optim: torch.optim.Optimizer, last: Path, step: int, seconds: float,
                cfg: TrainConfig) -> None:
    with temporary_path(last.with_name("last_optim.pt")) as tmp:
        torch.save(optim.state_dict(), tmp)
    # The JSON (with the step) is written last, so a crash in between resumes from a consistent pair.
    save_model(model, last, {"step": step, "seconds": round(seconds, 1), "train": asdict(cfg)})
