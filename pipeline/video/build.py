"""Build the video coder and the flow-consistency scorer from the composed config."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from codec.coder import ImageCodec
from pipeline.video.coder import VideoCoder
from pipeline.video.rate import RateControl
from pipeline.video.sequence import PairScore


def build_coder(cfg: DictConfig) -> VideoCoder:
    """The closed-loop coder named by ``cfg.mode``, ``cfg.gop``, ``cfg.rate``, ``cfg.codec`` and ``cfg.motion``."""
    torch.manual_seed(cfg.seed)
    intra = ImageCodec.load(cfg.codec.weights)
    residual = ImageCodec.load(cfg.codec.residual_weights)
    rate = RateControl(**OmegaConf.to_container(cfg.rate, resolve=True))
    return VideoCoder(intra, residual, instantiate(cfg.motion), mode=cfg.mode, gop=cfg.gop, rate=rate,
                      residual_gain=cfg.codec.residual_gain)


def build_flow_score(cfg: DictConfig) -> PairScore | None:
    """Per-pair flow consistency with the estimator, resolution and mask of ``cfg.flow.consistency``."""
    if not cfg.get("score_flow", True):
        return None
    from flow.metrics import flow_consistency

    options = OmegaConf.to_container(cfg.flow.consistency, resolve=True)

    def score(original1, original2, decoded1, decoded2) -> float:
        return flow_consistency([original1, original2], [decoded1, decoded2], **options)["epe"]

    return score
