"""Per-image reconstruction losses with the trainer's common signature.

Every loss is called as ``loss(recon, target, flow, valid)`` with recon and target (B, T, 3, H, W) in [0, 1]
(T = 1 for single images, T = 2 for consecutive-frame pairs), flow (B, 2, H, W) or None and valid
(B, 1, H, W) or None, and returns an unweighted scalar; the weight lives beside the loss in the config
(``{_target_: ..., weight: w}``, taken off before instantiation) and the trainer multiplies by it.
These per-image losses ignore flow and flatten T; ``per_image = True`` tells the trainer they apply to
single-image batches too (losses without it, such as flow consistency, are only given pairs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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


class RateLoss(nn.Module):
    """Estimated coded bits per pixel of one iteration's bits under an entropy prior (``STEM.entropy.safetensors``).

    Called as ``loss(bits, previous, t)`` with iteration ``t``'s straight-through bits (B, C, h, w) in {-1, +1}
    and the previous iteration's (or None). Each bit costs -log2 of its probability in its coding context (previous
    iteration, checkerboard neighbours, parent channels: the counts branch of
    :meth:`codec.entropy.Prior.estimate_bits` in torch, the contexts from the detached bits; a prior's learned
    context net is not used here), so the gradient pushes each bit towards the symbol its context expects: the
    encoder learns to send predictable bits where detail does not pay.
    """

    uses_bits = True

    def __init__(self, prior: str) -> None:
        super().__init__()
        from safetensors.numpy import load_file

        from codec.entropy import N_CHAN, N_PARENTS, N_SPATIAL

        arrays = load_file(prior)
        counts = torch.from_numpy(arrays["counts"].astype("float64"))
        self.register_buffer("cost1", -torch.log2(counts[..., 1] / counts.sum(-1)).float())
        self.register_buffer("cost0", -torch.log2(counts[..., 0] / counts.sum(-1)).float())
        self.register_buffer("parents", torch.from_numpy(arrays["parents"].astype("int64")))
        self.n_parents, self.n_spatial, self.n_chan = N_PARENTS, N_SPATIAL, N_CHAN

    def forward(self, bits: Tensor, previous: Tensor | None = None, t: int = 0) -> Tensor:
        b = bits.detach().round().long()
        batch, channels, h, w = b.shape
        prev = torch.zeros_like(b) if previous is None else previous.detach().round().long()
        around = _neighbour_sum(b)
        yy, xx = torch.meshgrid(torch.arange(h, device=b.device), torch.arange(w, device=b.device), indexing="ij")
        ctx_space = torch.where((yy + xx) % 2 == 1, around + 5, torch.zeros_like(around))
        with_absent = torch.cat([b + 1, torch.ones_like(b[:, :1])], dim=1)  # parent -1 reads "absent" (1)
        ctx_chan = torch.zeros_like(b)
        for k in range(self.n_parents):
            ctx_chan = ctx_chan * 3 + with_absent[:, self.parents[:, k]]
        ctx = ((prev + 1) * self.n_spatial + ctx_space) * self.n_chan + ctx_chan
        channel = torch.arange(channels, device=b.device)[None, :, None, None].expand_as(ctx)
        c1, c0 = self.cost1[channel, ctx], self.cost0[channel, ctx]
        cost = ((1 + bits) / 2 * c1 + (1 - bits) / 2 * c0) * b.abs()  # unsent bits (0) cost nothing
        return cost.sum(dim=(1, 2, 3)).mean() / (h * w * 256)


class NetRateLoss(nn.Module):
    """Estimated coded bits per pixel of one iteration's bits under a prior's learned context net
    (:mod:`codec.context`, the model the residual coder codes with), as :class:`RateLoss` prices them by counts.

    Called as ``loss(bits, previous, t)``. Each bit's context is what the decoder holds when it reaches it (the
    previous iteration, the channels coded before it in the prior's order, its own channel's first checkerboard
    half in the second half, its channel, half and iteration), every block sent, taken from the detached bits.
    The integer net runs in float without its floors (a smooth stand-in, within a few per cent of the coder's
    bits); the straight-through bits carry the gradient: each bit is pushed towards what the net expects.
    """

    uses_bits = True

    def __init__(self, prior: str) -> None:
        super().__init__()
        from safetensors.numpy import load_file

        from codec.context import LOGIT_RANGE, LOGIT_STEPS, T_MAX, ContextNet

        arrays = load_file(prior)
        if "ctx_w1" not in arrays:
            raise ValueError(f"{prior} holds no learned context net; price the bits with codec.losses.RateLoss")
        order = torch.from_numpy(arrays["order"].astype("int64"))
        net = ContextNet.from_arrays(arrays, order.numel())
        scales = [2.0 ** -int(s) for s in net.shifts]
        for i, (w, b) in enumerate(((net.w1, net.b1), (net.w2, net.b2), (net.w3, net.b3))):
            self.register_buffer(f"w{i + 1}", torch.from_numpy(w) * scales[i])
            self.register_buffer(f"b{i + 1}", torch.from_numpy(b) * scales[i])
        self.w3.div_(LOGIT_STEPS)
        self.b3.div_(LOGIT_STEPS)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel())
        self.register_buffer("before", (rank[None, :] < rank[:, None]).float())  # [c, k]: k is coded before c
        self.t_max, self.logit_max = T_MAX, float(LOGIT_RANGE)

    def forward(self, bits: Tensor, previous: Tensor | None = None, t: int = 0) -> Tensor:
        b = bits.detach().round().float()
        batch, channels, h, w = b.shape
        prev = torch.zeros_like(b) if previous is None else previous.detach().round().float()
        w1 = self.w1
        parts = w1.split([channels] * 4 + [1, 1, channels, w1.shape[0] - 4 * channels - 2 - channels])
        w_prev, w_prev_nb, w_cur, w_cur_nb, w_own, w_half, w_channel, w_t = parts

        def per_position(x: Tensor, weight: Tensor) -> Tensor:  # (B, C, h, w) @ (C, H1) -> (B, h, w, H1)
            return torch.einsum("bkyx,kn->byxn", x, weight)

        fixed = per_position(prev, w_prev) + per_position(_neighbour_sum(prev), w_prev_nb) + self.b1
        fixed = fixed + w_t[min(t, self.t_max)]
        around = _neighbour_sum(b)
        # The channels coded before each one: (B, C, h, w, H1) summed over the earlier channels k.
        earlier = torch.einsum("bkyx,kn->bkyxn", b, w_cur) + torch.einsum("bkyx,kn->bkyxn", around, w_cur_nb)
        sums = torch.einsum("ck,bkyxn->bcyxn", self.before, earlier) + fixed[:, None]
        yy, xx = torch.meshgrid(torch.arange(h, device=b.device), torch.arange(w, device=b.device), indexing="ij")
        half = ((yy + xx) % 2).to(b.dtype)[None, None, :, :, None]  # second checkerboard half
        sums = sums + half * (around[..., None] * w_own[0] + w_half[0]) + w_channel[None, :, None, None]
        hidden = (F.relu(sums).clamp(max=255) @ self.w2 + self.b2).relu().clamp(max=255)
        logit = (hidden @ self.w3 + self.b3)[..., 0].clamp(-self.logit_max, self.logit_max)
        # -log2 P(bit): softplus(-logit) for +1, softplus(logit) for -1, in bits.
        cost = ((1 + bits) / 2 * F.softplus(-logit) + (1 - bits) / 2 * F.softplus(logit)) / math.log(2)
        return cost.sum(dim=(1, 2, 3)).mean() / (h * w * 256)


def _neighbour_sum(x: Tensor) -> Tensor:
    """(B, C, h, w) -> (B, C, h, w): each position's four neighbours summed (zero outside)."""
    p = F.pad(x, (1, 1, 1, 1))
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


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
                   valid: Tensor | None, ramp: float = 1.0,
                   bits: list[Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
    """Sum over losses of weight x mean over iterations; ``recons`` are (B, T, 3, H, W) in [0, 1] per iteration.

    Iteration t counts ``iteration_weights(len(recons), ramp)[t]`` in the mean. Single-image batches (flow None)
    skip losses without ``per_image``. Returns the total and each loss's (weighted-mean) value.
    """
    total = target.new_zeros(())
    parts: dict[str, float] = {}
    per_iteration = iteration_weights(len(recons), ramp).to(target.device)
    for name, loss, weight in losses:
        if getattr(loss, "uses_bits", False):
            if bits is None:
                raise ValueError(f"loss {name!r} needs the model's bits, but none were recorded")
            values = [loss(b, bits[t - 1] if t else None, t) for t, b in enumerate(bits)]
            value = torch.stack(values).mean()  # bits per pixel, over iterations
        elif flow is None and not getattr(loss, "per_image", False):
            continue
        else:
            value = (torch.stack([loss(r, target, flow, valid) for r in recons]) * per_iteration).mean()
        total = total + weight * value
        parts[name] = float(value.detach())
    return total, parts
