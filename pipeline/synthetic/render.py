"""Frames by supersampled ray casting, and the exact forward flow and occlusion between frames.

Flow of pixel (x, y) from frame t to t+1: cast the ray through the pixel centre at time t, move the
hit point with its object (cars translate, the rest is static; the sky is at infinity, so only camera
rotation moves it), project it into the camera of frame t+1. The pixel is occluded at t+1 when that
projection leaves the image or a ray cast at t+1 towards the moved point hits something nearer.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.synthetic.raycast import Rays, cast
from pipeline.synthetic.scene import CAR_KINDS, SKY, TRUNK, Scene
from pipeline.synthetic.shading import shade


def render_image(scene: Scene, t: int, supersample: int = 3) -> np.ndarray:
    """Frame ``t`` as uint8 RGB (H, W, 3), the mean of supersample x supersample rays per pixel."""
    camera = scene.camera(t)
    rays = Rays.raster(camera, scene.width, scene.height, supersample)
    rgb = shade(scene, t, cast(scene, t, rays), rays.directions)
    rgb = rgb.reshape(scene.height * supersample, scene.width * supersample, 3).astype(np.float32)
    # INTER_AREA with an integer factor is the exact block mean, i.e. a box filter over each pixel.
    small = cv2.resize(rgb, (scene.width, scene.height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)


def ground_truth(scene: Scene, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow t -> t+1 (H, W, 2) float32 (dx, dy) and occlusion (H, W) bool (True: not visible at t+1)."""
    w, h = scene.width, scene.height
    cam0, cam1 = scene.camera(t), scene.camera(t + 1)
    rays = Rays.raster(cam0, w, h, 1)
    hits = cast(scene, t, rays)
    sky = hits.kind == SKY
    moves = np.isin(hits.kind, CAR_KINDS) | (hits.kind == TRUNK)
    moved = hits.point.copy()
    moved[moves] += scene.box_velocity[hits.index[moves]]
    x1, y1, depth = (np.empty(len(sky)) for _ in range(3))
    x1[~sky], y1[~sky], depth[~sky] = cam1.project(moved[~sky])
    x1[sky], y1[sky], depth[sky] = cam1.project_directions(rays.directions[sky])
    flow = np.stack([x1 - rays.x, y1 - rays.y], axis=-1).reshape(h, w, 2).astype(np.float32)
    in_view = (depth > 1e-6) & (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    rows = np.flatnonzero(in_view)
    towards = np.where(sky[rows, None], rays.directions[rows], moved[rows] - cam1.position)
    target = np.where(sky[rows], np.inf, np.linalg.norm(towards, axis=1))
    towards = towards / np.linalg.norm(towards, axis=1, keepdims=True)
    seen = cast(scene, t + 1, Rays(cam1, x1[rows], y1[rows], towards))
    with np.errstate(invalid="ignore"):
        # Relative tolerance: the hit on the point's own surface equals the target up to rounding.
        visible = seen.distance >= target * (1 - 1e-7) - 1e-5
    occluded = np.ones(len(sky), dtype=bool)
    occluded[rows] = ~visible
    flow[~np.isfinite(flow)] = 0.0  # points behind the next camera: no meaningful flow, marked occluded
    return flow, occluded.reshape(h, w)
