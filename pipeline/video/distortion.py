"""Block distortion measures for rate-distortion decisions: squared error, weighted per block.

All take the frame being coded as (1, 3, H, W) float in [0, 255] (H, W multiples of 16) and return
(1, 1, H/16, W/16) weights with mean 1, so one lambda means about the same for each:

- ``mse``: plain squared error (weight 1).
- ``ssim``: SSIM-motivated weights (Wang et al.'s SSIM-based RDO; Johnston et al. 2018 weight errors by local
  SSIM): an error costs SSIM in proportion to 1 / (2 var + C2), so flat blocks, where it shows, weigh more.
- ``flow``: weights by the block's smaller structure-tensor eigenvalue (Shi-Tomasi cornerness), the image
  structure an optical-flow estimator's data term locks on to: errors there move the estimated flow.
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
    luma = frame.mean(1, keepdim=True)
    if kind == "ssim":
        variance = F.avg_pool2d(luma**2, BLOCK) - F.avg_pool2d(luma, BLOCK) ** 2
        weights = 1.0 / (2 * variance.clamp(min=0) + C2)
    elif kind == "flow":
        weights = _cornerness(luma) + 1.0  # flat blocks keep a floor weight
    else:
        raise ValueError(f"distortion {kind!r} is unknown; expected mse, ssim or flow")
    return weights / weights.mean()


def _cornerness(luma: Tensor) -> Tensor:
    """Smaller eigenvalue of each block's structure tensor (mean of gradient products), (1, 1, H/16, W/16)."""
    gx = F.pad(luma[..., :, 2:] - luma[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    gy = F.pad(luma[..., 2:, :] - luma[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    xx, yy, xy = (F.avg_pool2d(g, BLOCK) for g in (gx * gx, gy * gy, gx * gy))
    half_trace, det = (xx + yy) / 2, xx * yy - xy * xy
    return half_trace - (half_trace**2 - det).clamp(min=0).sqrt()
