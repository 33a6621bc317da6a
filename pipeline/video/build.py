"""Build the video coder and the flow-consistency scorer from the composed config: the one place a coder is made.

``run``, ``decode``, ``preprocess`` and ``evaluate``'s ``rnn_*`` codecs all call :func:`make_coder`, so a setting
means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from codec.coder import ImageCodec
from codec.precision import resolve
from pipeline.video.coder import Motion, VideoCoder
from pipeline.video.loop_filter import LoopFilter
from pipeline.video.rate import RateControl
from pipeline.video.sequence import PairScore


def make_coder(codec: Mapping[str, Any], motion: Motion | Mapping[str, Any], rate: Mapping[str, Any], mode: str,
               gop: int, **rate_overrides: Any) -> VideoCoder:
    """A :class:`VideoCoder` from the ``codec``, ``motion`` and ``rate`` config groups (nodes or plain dicts).

    ``rate_overrides`` replace single rate settings (e.g. ``quality=36`` for one point of a sweep).
    """
    if isinstance(motion, Mapping):
        motion = instantiate(motion)
    rate_settings = OmegaConf.to_container(rate, resolve=True) if isinstance(rate, DictConfig) else dict(rate)
    return VideoCoder(ImageCodec.load(codec["weights"]), ImageCodec.load(codec["residual_weights"]), motion,
                      mode=mode, gop=int(gop), rate=RateControl(**{**rate_settings, **rate_overrides}),
                      residual_gain=float(codec["residual_gain"]),
                      loop_filter=LoopFilter(codec["loop_filter"]) if codec.get("loop_filter") else None,
                      precision=resolve(str(codec.get("precision", "fp32")), torch.device("cpu")))


def build_coder(cfg: DictConfig) -> VideoCoder:
    """The closed-loop coder named by ``cfg.mode``, ``cfg.gop``, ``cfg.rate``, ``cfg.codec`` and ``cfg.motion``."""
    torch.manual_seed(cfg.seed)
    return make_coder(cfg.codec, cfg.motion, cfg.rate, cfg.mode, cfg.gop)


def build_flow_score(cfg: DictConfig) -> PairScore | None:
    """Per-pair flow consistency with the estimator, resolution and mask of ``cfg.flow.consistency``."""
    if not cfg.get("score_flow", True):
        return None
    from flow.metrics import flow_consistency

    options = OmegaConf.to_container(cfg.flow.consistency, resolve=True)

    def score(original1, original2, decoded1, decoded2) -> tuple[float, float]:
        result = flow_consistency([original1, original2], [decoded1, decoded2], **options)
        scale = result["scale"]
        return result["epe"], result["reliable_fraction"] * original1.shape[0] * original1.shape[1] * scale**2

    return score
