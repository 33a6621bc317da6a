"""Forward-backward consistency occlusion mask (Ruder, Dosovitskiy and Brox, GCPR 2016).

A pixel of frame t is unreliable when the backward flow at its forward target does not bring it back,

    |w_fw + w_bw(x + w_fw)|^2 > 0.01 (|w_fw|^2 + |w_bw(x + w_fw)|^2) + 0.5,

or when it is on a motion boundary, |grad u|^2 + |grad v|^2 > 0.01 |w_fw|^2 + 0.002, or when its forward
target leaves the frame. This is the mask used by Lai et al. 2018 for the temporal warping error.
"""

from __future__ import annotations

import numpy as np

from flow.warp import check_flow, inside_mask, warp


def occlusion_mask(forward: np.ndarray, backward: np.ndarray, consistency: float = 0.01, offset: float = 0.5,
                   boundaries: bool = True) -> np.ndarray:
    """(H, W) bool mask of *reliable* (non-occluded) pixels of frame t.

    forward: (H, W, 2) flow t -> t+1; backward: (H, W, 2) flow t+1 -> t, same size.
    """
    forward, backward = check_flow(forward, "forward flow"), check_flow(backward, "backward flow")
    if forward.shape != backward.shape:
        raise ValueError(f"forward flow {forward.shape} and backward flow {backward.shape} differ in size")
    back_at_target = warp(backward, forward)
    fb = forward + back_at_target
    occluded = (fb**2).sum(-1) > consistency * ((forward**2).sum(-1) + (back_at_target**2).sum(-1)) + offset
    if boundaries:
        du_y, du_x = np.gradient(forward[..., 0])
        dv_y, dv_x = np.gradient(forward[..., 1])
        gradient = du_x**2 + du_y**2 + dv_x**2 + dv_y**2
        occluded |= gradient > 0.01 * (forward**2).sum(-1) + 0.002
    return ~occluded & inside_mask(forward)
