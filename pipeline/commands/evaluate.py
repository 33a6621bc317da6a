"""``python -m pipeline evaluate``: code the dataset with every codec in ``eval.compare`` and write the report.

Outputs go to the Hydra run directory: ``report.html`` (self-contained), ``results.json``, ``results.csv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pipeline.evaluation.codecs import VideoCodec
from pipeline.evaluation.report import write_report
from pipeline.evaluation.sweep import evaluate_codecs


def build_codecs(eval_cfg: DictConfig) -> list[VideoCodec]:
    """Instantiate ``eval.codecs[name]`` for every name in ``eval.compare``, checking the interface."""
    codecs = []
    for name in eval_cfg.compare:
        if name not in eval_cfg.codecs:
            raise ValueError(f"eval.compare names {name!r}, but eval.codecs has only {sorted(eval_cfg.codecs)}")
        codec = instantiate(eval_cfg.codecs[name])
        if not isinstance(codec, VideoCodec):
            raise ValueError(f"eval.codecs.{name} built a {type(codec).__name__}, which lacks the VideoCodec "
                             "interface (name, point_name, intra, points(), code(frames, point))")
        codecs.append(codec)
    return codecs


def load_sequences(dataset_cfg: DictConfig, max_frames: int | None) -> Iterator[tuple[str, list[np.ndarray]]]:
    """(name, uint8 (H, W, 3) RGB frames) per sequence of the configured dataset, at most ``max_frames`` each."""
    for sequence in instantiate(dataset_cfg):
        frames = [frame.image for frame in islice(sequence, max_frames)]
        yield sequence.name, frames


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise ValueError(f"evaluate takes no positional arguments, got {args}; options are key=value overrides")
    ev = cfg.eval
    if ev.reference not in ev.compare:
        raise ValueError(f"eval.reference={ev.reference} is not among eval.compare={list(ev.compare)}; "
                         "BD-rates need their reference evaluated")
    torch.set_num_threads(int(ev.threads))
    codecs = build_codecs(ev)
    flow_metrics = {name: instantiate(spec) for name, spec in ev.flow_metrics.items()}
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    evaluation = evaluate_codecs(load_sequences(cfg.dataset, ev.max_frames), codecs, flow_metrics,
                                 instantiate(ev.pictures.flow_estimator), visual_frame=int(ev.pictures.frame),
                                 crop=tuple(ev.pictures.crop), seed=int(cfg.seed))
    paths = write_report(evaluation, out_dir, reference=ev.reference, intra_reference=ev.intra_reference,
                         config_yaml=OmegaConf.to_yaml(cfg, resolve=True))
    print(f"{'codec':<10} {'point':>6} {'bpp':>8} {'PSNR':>7} {'MS-SSIM':>8} {'flow':>8} {'enc ms':>8} {'dec ms':>8}")
    for codec, points in evaluation.curves.items():
        for p in points:
            print(f"{codec:<10} {p['point']!s:>6} {p['bpp']:8.4f} {p['psnr']:7.2f} {p['msssim']:8.4f} "
                  f"{p.get('flow_consistency', float('nan')):8.4f} {1000 * p['encode_s_per_frame']:8.1f} "
                  f"{1000 * p['decode_s_per_frame']:8.1f}")
    print(f"report: {paths['html']}")
    return 0
