"""Differentiable flow-consistency loss for training the codec (torch + kornia warping).

The reconstruction should change over time the way the originals do. With the originals' forward
flow F (t -> t+1) and its reliable-pixel mask M, warp frame t+1 back onto frame t (sample at x + F(x))
for both videos and compare their temporal residuals:

    d_rec = W(rec_t+1, F) - rec_t,   d_orig = W(orig_t+1, F) - orig_t,
    loss = sum M * charbonnier(d_rec - d_orig) / (3 * sum M).

Flicker or motion the originals do not have (e.g. residual noise that changes from frame to frame)
raises it; a reconstruction equal to the originals gives charbonnier(0), whatever F is.
"""

from __future__ import annotations

import kornia
import numpy as np
import torch
from torch import nn

from flow.dense import estimate_flow
from flow.occlusion import occlusion_mask


def warp_tensor(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, H, W) ``image`` at x + flow(x), flow (B, 2, H, W) in pixels; borders replicated."""
    b, _, h, w = image.shape
    grid = kornia.geometry.create_meshgrid(h, w, normalized_coordinates=False, device=image.device,
                                        dtype=image.dtype)  # (1, H, W, 2) as (x, y)
    map_x = grid[..., 0].expand(b, h, w) + flow[:, 0]
    map_y = grid[..., 1].expand(b, h, w) + flow[:, 1]
    return kornia.geometry.transform.remap(image, map_x, map_y, mode="bilinear", padding_mode="border",
                                           align_corners=True)


class FlowConsistencyLoss(nn.Module):
    """Temporal inconsistency of a reconstruction relative to the originals (scalar, lower is better).

    forward(recon, target, flow=None, valid=None):
      recon, target: (B, T=2, 3, H, W) frames t and t+1 in [0, 1];
      flow: (B, 2, H, W) originals' forward flow t -> t+1 in pixels; None means zero motion (plain
        temporal differences are compared);
      valid: (B, 1, H, W) reliable-pixel mask (1 = use) of that flow; None means all pixels whose
        flow target lies inside the frame.
    eps: Charbonnier epsilon (in [0, 1] intensity units).
    """

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, recon: torch.Tensor, target: torch.Tensor, flow: torch.Tensor | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        if recon.shape != target.shape or recon.ndim != 5 or recon.shape[1] != 2:
            raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} must both be "
                             "(B, 2, C, H, W): frames t and t+1")
        b, _, _, h, w = recon.shape
        if flow is None:
            flow = recon.new_zeros(b, 2, h, w)
        if flow.shape != (b, 2, h, w):
            raise ValueError(f"flow has shape {tuple(flow.shape)}, expected {(b, 2, h, w)}")
        flow = flow.to(recon.dtype)
        if valid is None:
            grid = kornia.geometry.create_meshgrid(h, w, normalized_coordinates=False, device=recon.device,
                                                dtype=recon.dtype).permute(0, 3, 1, 2)
            pos = grid + flow
            valid = ((pos[:, 0] >= 0) & (pos[:, 0] <= w - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= h - 1))[:, None]
        if valid.shape != (b, 1, h, w):
            raise ValueError(f"valid has shape {tuple(valid.shape)}, expected {(b, 1, h, w)}")
        valid = valid.to(recon.dtype)
        # One warp for both videos: stack them along the channel axis.
        nxt = torch.cat([recon[:, 1], target[:, 1]], dim=1)
        warped = warp_tensor(nxt, flow)
        c = recon.shape[2]
        d_rec = warped[:, :c] - recon[:, 0]
        d_orig = warped[:, c:] - target[:, 0]
        penalty = torch.sqrt((d_rec - d_orig) ** 2 + self.eps**2)
        return (penalty * valid).sum() / (valid.sum() * c).clamp_min(1.0)


def reference_flow(target: np.ndarray, method: str = "dis", preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """The ``flow``/``valid`` inputs of the loss for a batch of original frame pairs (not differentiable).

    target: (B, 2, 3, H, W) float in [0, 1] (numpy or a CPU tensor's ``.numpy()``). Returns flow
    (B, 2, H, W) float32 (forward t -> t+1) and valid (B, 1, H, W) bool (forward-backward occlusion test).
    """
    target = np.asarray(target)
    if target.ndim != 5 or target.shape[1] != 2 or target.shape[2] != 3:
        raise ValueError(f"target has shape {target.shape}, expected (B, 2, 3, H, W)")
    frames = np.clip(np.round(target.transpose(0, 1, 3, 4, 2) * 255), 0, 255).astype(np.uint8)
    flows, masks = [], []
    kwargs = {"preset": preset} if method == "dis" else {}
    for pair in frames:
        fwd = estimate_flow(pair[0], pair[1], method, **kwargs)
        bwd = estimate_flow(pair[1], pair[0], method, **kwargs)
        flows.append(fwd.transpose(2, 0, 1))
        masks.append(occlusion_mask(fwd, bwd)[None])
    return np.stack(flows).astype(np.float32), np.stack(masks)
