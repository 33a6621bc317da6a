"""Per-image reconstruction losses with the trainer's common signature.

Every loss is called as ``loss(recon, target, flow, valid)`` with recon and target (B, T, 3, H, W) in [0, 1]
(T = 1 for single images, T = 2 for consecutive-frame pairs), flow (B, 2, H, W) or None and valid
(B, 1, H, W) or None, and returns an unweighted scalar; the weight lives beside the loss in the config
(``{_target_: ..., weight: w}``, taken off before instantiation) and the trainer multiplies by it.
These per-image losses ignore flow and flatten T; ``per_image = True`` tells the trainer they apply to
single-image batches too (losses without it, such as flow consistency, are only given pairs).
"""

from __future__ import annotations

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor, nn


class _PerImageLoss(nn.Module):
    per_image = True

    @staticmethod
    def _flat(recon: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if recon.shape != target.shape or recon.dim() != 5:
            raise ValueError(f"expected recon and target (B, T, 3, H, W) alike, got {tuple(recon.shape)} "
                             f"and {tuple(target.shape)}")
        return recon.flatten(0, 1), target.flatten(0, 1)


class L1Loss(_PerImageLoss):
    """Mean absolute error (the paper's training loss)."""

    def forward(self, recon: Tensor, target: Tensor, flow: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        r, t = self._flat(recon, target)
        return (r - t).abs().mean()


class L2Loss(_PerImageLoss):
    """Mean squared error."""

    def forward(self, recon: Tensor, target: Tensor, flow: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        r, t = self._flat(recon, target)
        return (r - t).square().mean()


class MSSSIMLoss(_PerImageLoss):
    """1 - MS-SSIM (pytorch-msssim, dyadic, data_range 1).

    pytorch-msssim always downsamples 4 times and needs min(H, W) > 16 * (win_size - 1): 176-px crops with the
    standard 11-px window, or 64-px crops with ``win_size=3``. 32-px crops (the paper's) cannot use it.
    ``scale_weights`` defaults to the standard five (Wang et al. 2003).
    """

    def __init__(self, win_size: int = 11, scale_weights: list[float] | None = None) -> None:
        super().__init__()
        self.win_size = win_size
        self.scale_weights = list(scale_weights) if scale_weights is not None else None

    def forward(self, recon: Tensor, target: Tensor, flow: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        r, t = self._flat(recon, target)
        need = 16 * (self.win_size - 1)
        if min(r.shape[-2:]) <= need:
            raise ValueError(f"MS-SSIM with win_size={self.win_size} needs crops larger than {need} px, "
                             f"got {r.shape[-1]}x{r.shape[-2]}; use a larger crop or win_size=3 with crops >= 64")
        score = ms_ssim(r.float().clamp(0, 1), t.float(), data_range=1.0, win_size=self.win_size,
                        weights=self.scale_weights)
        return 1 - score


WeightedLoss = tuple[str, nn.Module, float]  # (name, loss, weight)


def iteration_weights(iterations: int, ramp: float = 1.0) -> Tensor:
    """(iterations,) weights ``ramp ** t`` normalised to mean 1; 1.0 weighs every iteration alike (the paper).

    Later iterations fix ever smaller residuals, so under equal weights their share of the gradient shrinks and
    quality stops growing with rate; ``ramp > 1`` moves capacity from low to high rates.
    """
    if ramp <= 0:
        raise ValueError(f"iteration ramp must be > 0, got {ramp}")
    weights = torch.tensor([float(ramp) ** t for t in range(iterations)])
    return weights / weights.mean()


def weighted_total(losses: list[WeightedLoss], recons: list[Tensor], target: Tensor, flow: Tensor | None,
                   valid: Tensor | None, ramp: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """Sum over losses of weight x mean over iterations; ``recons`` are (B, T, 3, H, W) in [0, 1] per iteration.

    Iteration t counts ``iteration_weights(len(recons), ramp)[t]`` in the mean. Single-image batches (flow None)
    skip losses without ``per_image``. Returns the total and each loss's (weighted-mean) value.
    """
    total = target.new_zeros(())
    parts: dict[str, float] = {}
    per_iteration = iteration_weights(len(recons), ramp).to(target.device)
    for name, loss, weight in losses:
        if flow is None and not getattr(loss, "per_image", False):
            continue
        value = (torch.stack([loss(r, target, flow, valid) for r in recons]) * per_iteration).mean()
        total = total + weight * value
        parts[name] = float(value.detach())
    return total, parts
