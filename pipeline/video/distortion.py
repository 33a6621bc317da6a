"""Block distortion measures for rate-distortion decisions: squared error, weighted per block.

All take the frame being coded as (1, 3, H, W) float in [0, 255] (H, W multiples of 16) and return
(1, 1, H/16, W/16) weights with mean 1, so one lambda means about the same for each:

- ``mse``: plain squared error (weight 1).
- ``ssim``: SSIM-motivated weights (Wang et al.'s SSIM-based RDO; Johnston et al. 2018 weight errors by local
  SSIM): an error costs SSIM in proportion to 1 / (2 var + C2), so flat blocks, where it shows, weigh more.
- ``flow``: weights by the block's smaller structure-tensor eigenvalue (Shi-Tomasi cornerness), the image
  structure an optical-flow estimator's data term locks on to: errors there move the estimated flow.

:func:`adaptive_weights` multiplies any of them: x264's adaptive quantisation (aq-mode 1) as a distortion weight,
(2 var + C2) ** -strength, so texture, which masks errors, gets fewer bits than flat blocks. Strength 1 is the
``ssim`` weighting; x264's default moves lambda by about var ** -0.35.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.video.rate import BLOCK

C2 = (0.03 * 255) ** 2  # SSIM's contrast constant for 8-bit data


def block_weights(kind: str, frame: Tensor) -> Tensor:
    """(1, 3, H, W) in [0, 255] -> (1, 1, H/16, W/16) weights, mean 1, for distortion ``kind``."""
    if kind == "mse":
        return torch.ones_like(F.avg_pool2d(frame[:, :1], BLOCK))
    if kind == "ssim":
        return adaptive_weights(frame, 1.0)
    if kind != "flow":
        raise ValueError(f"distortion {kind!r} is unknown; expected mse, ssim or flow")
    weights = _cornerness(frame.mean(1, keepdim=True)) + 1.0  # flat blocks keep a floor weight
    return weights / weights.mean()


def adaptive_weights(frame: Tensor, strength: float) -> Tensor:
    """(1, 3, H, W) in [0, 255] -> (1, 1, H/16, W/16) weights (2 var + C2) ** -strength of each block's luma
    variance, mean 1 (all ones at strength 0)."""
    luma = frame.mean(1, keepdim=True)
    variance = F.avg_pool2d(luma**2, BLOCK) - F.avg_pool2d(luma, BLOCK) ** 2
    weights = (2 * variance.clamp(min=0) + C2) ** -strength
    return weights / weights.mean()


def _cornerness(luma: Tensor) -> Tensor:
    """Smaller eigenvalue of each block's structure tensor (mean of gradient products), (1, 1, H/16, W/16)."""
    gx = F.pad(luma[..., :, 2:] - luma[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    gy = F.pad(luma[..., 2:, :] - luma[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    xx, yy, xy = (F.avg_pool2d(g, BLOCK) for g in (gx * gx, gy * gy, gx * gy))
    half_trace, det = (xx + yy) / 2, xx * yy - xy * xy
    return half_trace - (half_trace**2 - det).clamp(min=0).sqrt()
