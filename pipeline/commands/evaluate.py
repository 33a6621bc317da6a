"""``python -m pipeline evaluate``: code the dataset with every codec in ``eval.compare`` and write the report.

Outputs go to the Hydra run directory: ``report.html`` (self-contained), ``results.json``, ``results.csv``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from codec.precision import native_bf16
from pipeline.config_hash import config_hash
from pipeline.evaluation.cache import ResultCache
from pipeline.evaluation.codecs import VideoCodec
from pipeline.evaluation.report import write_report
from pipeline.evaluation.sweep import evaluate_codecs
from pipeline.paths import REPO_DIR

log = logging.getLogger("drivecodec.evaluate")


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


# Source that decides a cached score besides the config: the scoring code, and ours for our codecs.
_SCORING_CODE = ["pipeline/evaluation/metrics.py", "pipeline/evaluation/flow_scores.py", "pipeline/image_quality.py",
                 "flow"]
_OUR_CODE = ["codec", "pipeline/video", "pipeline/evaluation/rnn.py"]
# Training-data tools beside the coder: they code nothing that is scored, so editing them keeps the cache.
_NOT_CODING = {"pipeline/video/closed_loop_data.py", "pipeline/video/residual_data.py",
               "pipeline/video/vector_prior.py"}
_HASHED = {".py", ".safetensors"}  # in folders: code and weights (codec/weights), so a retrained model rescores


def cache_key(cfg: DictConfig, name: str) -> str:
    """What a cached point of codec ``name`` depends on: its settings and weights, the metric settings, the
    library versions and the source of the code that codes and scores it (a wrapped codec's too)."""
    settings = config_hash(cfg, [f"eval.codecs.{name}", "eval.flow_metrics", "eval.pictures", "seed"])
    files = list(_SCORING_CODE)
    spec = cfg.eval.codecs[name]
    while spec is not None:
        target = str(spec["_target_"])
        files.append(target.rsplit(".", 1)[0].replace(".", "/") + ".py")
        if target.startswith("pipeline.evaluation.rnn."):
            files += _OUR_CODE
            settings += f" native bf16 {native_bf16(torch.device('cpu'))}"  # what codec.precision=auto becomes
        if spec.get("weights"):  # a restoration net or ComCNN system: their code and its weights
            files += ["codec/restoration.py", "codec/comcnn.py", f"{spec.weights}.safetensors", f"{spec.weights}.json"]
        spec = spec.get("codec") if isinstance(spec.get("codec"), DictConfig) and "_target_" in spec.codec else None
    digest = hashlib.sha256(settings.encode())
    for name_ in (av.__version__, cv2.__version__, torch.__version__):
        digest.update(name_.encode())
    skipped = {REPO_DIR / rel for rel in _NOT_CODING}
    for rel in files:
        path = REPO_DIR / rel  # weights may be named by absolute paths, anywhere
        for file in sorted(p for p in path.rglob("*") if p.suffix in _HASHED) if path.is_dir() else [path]:
            if file not in skipped:
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


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
    codecs = build_codecs(ev)
    flow_metrics = {name: instantiate(spec) for name, spec in ev.flow_metrics.items()}
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    cache = ResultCache(ev.cache_dir, force=bool(ev.force)) if ev.get("cache_dir") else None
    keys = {name: cache_key(cfg, name) for name in ev.compare} if cache is not None else None
    evaluation = evaluate_codecs(load_sequences(cfg.dataset, ev.max_frames), codecs, flow_metrics,
                                 instantiate(ev.pictures.flow_estimator), visual_frame=int(ev.pictures.frame),
                                 crop=tuple(ev.pictures.crop), seed=int(cfg.seed), cache=cache, cache_keys=keys)
    paths = write_report(evaluation, out_dir, reference=ev.reference, intra_reference=ev.intra_reference,
                         config_yaml=OmegaConf.to_yaml(cfg, resolve=True))
    lines = [f"{'codec':<10} {'point':>6} {'bpp':>8} {'PSNR':>7} {'MS-SSIM':>8} {'flow':>8} {'enc ms':>8} "
             f"{'dec ms':>8}"]
    for codec, points in evaluation.curves.items():
        for p in points:
            lines.append(f"{codec:<10} {p['point']!s:>6} {p['bpp']:8.4f} {p['psnr']:7.2f} {p['msssim']:8.4f} "
                         f"{p.get('flow_consistency', float('nan')):8.4f} {1000 * p['encode_s_per_frame']:8.1f} "
                         f"{1000 * p['decode_s_per_frame']:8.1f}")
    log.info("%s", "\n".join(lines))
    log.info("report: %s", paths["html"])
    return 0
