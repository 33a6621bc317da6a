"""Training the decoder heads of :mod:`codec.scaled`: the model codes random crops as its encoder would (frozen,
deterministic bits), each head decodes those bits at its size, and the loss compares the result with the
area-downscaled original.

The loss is the mean over iterations and heads of log(squared error): a PSNR gap weighs the same at every
rate (a plain mean would be ruled by the first, noisiest iterations), and the acceptance test is a PSNR gap at
every iteration count. The log's baseline is the same figure for "full decode, then downscale".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atomic import write_bytes
from codec.data import CropSource
from codec.model import RNNCodec
from codec.restoration_train import FitConfig, fit, start
from codec.scaled import (
    TRUNK,
    HeadConfig,
    ScaledHead,
    area_downscale,
    head_stem,
    load_head,
    save_head,
    with_memory,
)


@dataclass
class CodedBatch:
    """A batch as the frozen model codes it, ready for any number of head steps.

    features: per iteration, what a head reads (the trunk's output, (B, C, H/4, W/4)); frame: (B, 3, H, W) in
    [0, 1]; prediction: (B, 3, H, W) in [0, 1] of a residual model's pairs (else None); baselines: {factor: mean
    over iterations of log squared error of "full decode, then downscale"}.
    """

    features: list[Tensor]
    frame: Tensor
    prediction: Tensor | None
    residual_gain: float | None
    condition: bool
    baselines: dict[int, float]

    def to_frame(self, recon: Tensor, factor: int) -> Tensor:
        """A reconstruction at 1 / factor size in the frame domain, [0, 1]."""
        if self.prediction is None:
            return recon + 0.5
        return area_downscale(self.prediction, factor) + recon / self.residual_gain


@torch.no_grad()
def code_batch(model: RNNCodec, batch: Tensor, iterations: int, factors: list[int],
               residual_gain: float | None = None) -> CodedBatch:
    """Code a batch (B, 3, H, W) of images in [0, 1], or (B, 6, H, W) (frame, prediction) pairs of a residual model
    (``residual_gain`` as in :class:`codec.train.TrainConfig`), with deterministic bits, as the encoder does."""
    if residual_gain is None:
        frame, prediction = batch, None
        x = batch - 0.5
    else:
        frame, prediction = batch[:, :3], batch[:, 3:]
        x = ((frame - prediction) * residual_gain).clamp(-0.5, 0.5)
    cond = prediction - 0.5 if model.config.condition else None
    bits: list[Tensor] = []
    full = model(x, iterations, cond, bits)
    features, state = [], [None] * TRUNK
    for t in range(iterations):
        feature, state = model.decode_trunk(bits[t], state)
        features.append(feature)
    coded = CodedBatch(features, frame, prediction, residual_gain, model.config.condition, {})
    for factor in factors:
        target = area_downscale(frame, factor)
        coded.baselines[factor] = float(np.mean([
            torch.log(F.mse_loss(coded.to_frame(area_downscale(r.clamp(-0.5, 0.5), factor), factor), target))
            for r in full]))
    return coded


def head_loss(model: RNNCodec, heads: nn.ModuleDict, coded: CodedBatch) -> tuple[Tensor, float]:
    """(loss, baseline): mean over iterations and heads ({str(f): head}) of log squared error against the
    area-downscaled frame, and the same for "full decode, then downscale"."""
    losses = []
    for key, head in heads.items():
        factor = int(key)
        target = area_downscale(coded.frame, factor)
        cond = area_downscale(coded.prediction, factor) - 0.5 if coded.condition else None
        recon, state = None, None
        for t, feature in enumerate(coded.features):
            out, state = head(feature, cond, state)
            recon = model.update(t, recon, out)
            losses.append(torch.log(F.mse_loss(coded.to_frame(recon, factor), target) + 1e-10))
    return torch.stack(losses).mean(), float(np.mean([coded.baselines[int(k)] for k in heads]))


@dataclass
class HeadSet:
    """The heads one run trains together (one model's), saved in every checkpoint's JSON."""

    factors: list[int]  # 2 and / or 4
    hidden: int
    memory: int = 0  # recurrent state channels of each head (codec.scaled.HeadConfig)
    init: str | None = None  # a model stem whose heads to start from (grown a memory if they have none); None: fresh


def train_heads(model: RNNCodec, heads: HeadSet, source: CropSource, cfg: FitConfig, iterations: int,
                out_dir: str | Path, meta: dict, residual_gain: float | None = None, reuse: int = 1) -> Path:
    """Train (or resume) ``heads`` on ``model``'s frozen trunk into ``out_dir/last`` (``last.json`` and each head as
    ``last.half`` / ``last.quarter``). Each coded batch serves ``reuse`` steps: coding it (the whole model, every
    iteration) costs many times a head's step. Returns that stem."""
    model.eval().requires_grad_(False)

    def build(spec: HeadSet) -> nn.ModuleDict:
        if spec.init is None:
            return nn.ModuleDict({str(f): ScaledHead(model, HeadConfig(f, spec.hidden, spec.memory))
                                  for f in spec.factors})
        grown = {}
        for f in spec.factors:
            head = load_head(head_stem(spec.init, f), model)
            if (head.config.hidden, head.config.memory) not in ((spec.hidden, 0), (spec.hidden, spec.memory)):
                raise ValueError(f"heads.init: {head_stem(spec.init, f)} has hidden={head.config.hidden} and "
                                 f"memory={head.config.memory}, the config asks for hidden={spec.hidden} and "
                                 f"memory={spec.memory}")
            grown[str(f)] = with_memory(head, model, spec.memory) if spec.memory and not head.config.memory else head
        return nn.ModuleDict(grown)

    def load(stem: Path) -> tuple[nn.ModuleDict, dict]:
        meta = json.loads(stem.with_name(stem.name + ".json").read_text())
        return nn.ModuleDict({str(f): load_head(head_stem(stem, f), model) for f in heads.factors}), meta

    def save(net: nn.ModuleDict, stem: Path, extra: dict) -> None:
        for key, head in net.items():
            save_head(head, model, head_stem(stem, int(key)), extra)
        write_bytes(stem.with_name(stem.name + ".json"), json.dumps(extra, indent=2).encode())  # progress last

    last = Path(out_dir) / "last"
    net, step, seconds = start(last, load, "heads", heads, build, cfg.seed)

    current: dict[str, Any] = {"batch": None, "served": reuse}

    def batch_loss(rng: np.random.Generator) -> tuple[Tensor, float]:
        if current["served"] == reuse:
            crops, _, _ = source.sample(rng, cfg.batch, cfg.crop)
            current.update(batch=code_batch(model, crops[:, 0], iterations, heads.factors, residual_gain), served=0)
        current["served"] += 1
        return head_loss(model, net, current["batch"])

    fit(net, batch_loss, cfg, last, save, {**meta, "heads": asdict(heads)}, step, seconds)
    return last
