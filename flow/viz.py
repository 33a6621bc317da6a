"""Middlebury colour-wheel pictures of flow (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", 2011): hue gives the direction, saturation the magnitude relative to ``max_flow``."""

from __future__ import annotations

import numpy as np

from flow.warp import check_flow

# Hue segments of the wheel: red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red.
_SEGMENTS = (15, 6, 4, 11, 13, 6)


def color_wheel() -> np.ndarray:
    """(55, 3) float RGB colours of the Middlebury wheel, 0..255."""
    ry, yg, gc, cb, bm, mr = _SEGMENTS
    ramps = [
        np.stack([np.full(ry, 255.0), 255.0 * np.arange(ry) / ry, np.zeros(ry)], 1),
        np.stack([255.0 - 255.0 * np.arange(yg) / yg, np.full(yg, 255.0), np.zeros(yg)], 1),
        np.stack([np.zeros(gc), np.full(gc, 255.0), 255.0 * np.arange(gc) / gc], 1),
        np.stack([np.zeros(cb), 255.0 - 255.0 * np.arange(cb) / cb, np.full(cb, 255.0)], 1),
        np.stack([255.0 * np.arange(bm) / bm, np.zeros(bm), np.full(bm, 255.0)], 1),
        np.stack([np.full(mr, 255.0), np.zeros(mr), 255.0 - 255.0 * np.arange(mr) / mr], 1),
    ]
    return np.concatenate(ramps)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None) -> np.ndarray:
    """(H, W, 2) flow -> uint8 (H, W, 3) RGB picture; magnitude ``max_flow`` (default: the largest) is
    full saturation, zero motion is white."""
    flow = check_flow(flow)
    u, v = np.nan_to_num(flow[..., 0]), np.nan_to_num(flow[..., 1])
    radius = np.sqrt(u**2 + v**2)
    scale = float(max_flow) if max_flow else float(radius.max())
    scale = max(scale, 1e-6)
    u, v, radius = u / scale, v / scale, radius / scale
    wheel = color_wheel()
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # -1..1
    pos = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(pos).astype(int)
    k1 = (k0 + 1) % n
    frac = (pos - k0)[..., None]
    colour = ((1 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0
    r = radius[..., None]
    inside = r <= 1
    colour = np.where(inside, 1 - r * (1 - colour), colour * 0.75)  # beyond max_flow: darker
    return np.clip(np.round(colour * 255), 0, 255).astype(np.uint8)
