"""``python -m pipeline train_heads heads=intra|residual``: train the decoder heads that decode a model's
bitstreams at 1/2 and 1/4 size (:mod:`codec.scaled`). Resumable; with ``heads.export=STEM`` (the model's own stem)
the heads of the recipe's ``factors`` are written as ``STEM.half`` / ``STEM.quarter`` with their recipe.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields

from omegaconf import DictConfig, OmegaConf

from codec.restoration_train import FitConfig
from codec.scaled import head_stem, load_head, save_head
from codec.scaled_train import HeadSet, train_heads
from codec.zoo import load_model
from pipeline.commands.train import load_sources

log = logging.getLogger("drivecodec.train_heads")


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise ValueError(f"train_heads takes no positional arguments, got {args}")
    hc = cfg.heads
    model = load_model(hc.model)
    source = load_sources(hc.sources, list(hc.exclude))
    train_cfg = FitConfig(**{f.name: hc.train[f.name] for f in fields(FitConfig)})
    heads = HeadSet(factors=[int(f) for f in hc.factors], hidden=int(hc.hidden), memory=int(hc.memory),
                    init=None if hc.init is None else str(hc.init))
    gain = None if hc.residual_gain is None else float(hc.residual_gain)
    meta = {"model": str(hc.model), "iterations": int(hc.iterations), "residual_gain": gain, "reuse": int(hc.reuse),
            "sources": OmegaConf.to_container(hc.sources, resolve=True), "exclude": list(hc.exclude)}
    last = train_heads(model, heads, source, train_cfg, int(hc.iterations), hc.out_dir, meta, gain, int(hc.reuse))
    if hc.get("export"):
        progress = json.loads(last.with_name(last.name + ".json").read_text())  # step, seconds, train settings
        recipe = {**progress, "config": OmegaConf.to_container(cfg.heads, resolve=True)}
        for factor in heads.factors:
            head = load_head(head_stem(last, factor), model)
            log.info("exported %s", save_head(head, model, head_stem(hc.export, factor), recipe))
    return 0
