"""Colour of every ray hit: procedural albedo times static sun lighting, and a sky keyed by direction.

All colour is a function of the hit point in the coordinates of the surface it belongs to (world for
static things, car-local for cars) and of the surface normal, which a translating car keeps; so a
point keeps its colour from frame to frame and warping by the exact flow reproduces the image.
"""

from __future__ import annotations

import numpy as np

from pipeline.synthetic.noise import hash01
from pipeline.synthetic.raycast import Hits
from pipeline.synthetic.scene import (
    BODY,
    CABIN,
    CROWN,
    FACADE,
    KERB,
    LANE_WIDTH,
    ROAD,
    SIDEWALK,
    SKY,
    TRUNK,
    UNDERBODY,
    Scene,
)

SUN = np.array([-0.45, 0.75, 0.5]) / np.linalg.norm([-0.45, 0.75, 0.5])
AMBIENT, DIFFUSE = 0.5, 0.62


def shade(scene: Scene, t: float, hits: Hits, directions: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1], (N, 3), for the hits of rays with unit ``directions`` (N, 3) at frame ``t``."""
    rgb = np.zeros((len(hits.kind), 3))
    painters = {ROAD: _road, SIDEWALK: _sidewalk, KERB: _kerb, FACADE: _facade, TRUNK: _trunk, CROWN: _crown,
                UNDERBODY: _car, BODY: _car, CABIN: _car}
    for kind, painter in painters.items():
        rows = np.flatnonzero(hits.kind == kind)
        if len(rows):
            albedo = painter(scene, t, hits, rows)
            light = AMBIENT + DIFFUSE * np.clip(hits.normal[rows] @ SUN, 0, None)
            rgb[rows] = albedo * light[:, None]
    rows = np.flatnonzero(hits.kind == SKY)
    rgb[rows] = _sky(scene, directions[rows])
    return np.clip(rgb, 0, 1)


def _grey(value: np.ndarray, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    return value[:, None] * np.asarray(tint)[None, :]


def _road(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    x, z = hits.point[rows, 0], hits.point[rows, 2]
    n = scene.noise
    value = 0.36 + 0.025 * n(2, x * 80, z * 80) + 0.015 * n(1, x * 10, z * 10) + 0.02 * n(0, x * 8, z * 8)
    # Darker wheel tracks in each lane.
    for lane in (-LANE_WIDTH / 2, LANE_WIDTH / 2):
        for track in (-0.8, 0.8):
            value -= 0.035 * np.exp(-(((x - lane - track) / 0.35) ** 2))
    paint = np.abs(x) < 0.07
    paint &= np.mod(z, 9.0) < 3.5  # dashed centre line
    paint |= np.abs(np.abs(x) - LANE_WIDTH) < 0.08  # solid edge lines
    value = np.where(paint, 0.82 + 0.03 * n(2, x * 80, z * 80), value)
    return _grey(value, (1.0, 1.0, 1.04))


def _sidewalk(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    x, z = hits.point[rows, 0], hits.point[rows, 2]
    slab_x, slab_z = np.floor(x / 0.6), np.floor(z / 0.6)
    value = 0.56 + 0.06 * (hash01(slab_x, slab_z) - 0.5) + 0.025 * scene.noise(2, x * 80, z * 80)
    joint = (np.mod(x, 0.6) < 0.03) | (np.mod(z, 0.6) < 0.03)
    return _grey(np.where(joint, value * 0.85, value), (1.02, 1.0, 0.97))


def _kerb(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    y, z = hits.point[rows, 1], hits.point[rows, 2]
    return _grey(0.66 + 0.03 * scene.noise(2, z * 80, y * 80))


def _facade(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    y, z = hits.point[rows, 1], hits.point[rows, 2]
    side, b = hits.side[rows], hits.index[rows]
    colour = np.empty((len(rows), 3))
    s = np.empty(len(rows))  # metres from the building's start along the street
    floor_h, bay, width, height = (np.empty(len(rows)) for _ in range(4))
    for k in (0, 1):
        m = side == k
        colour[m] = scene.building_colours[k][b[m]]
        s[m] = z[m] - scene.building_edges[k][b[m]]
        width[m] = np.diff(scene.building_edges[k])[b[m]]
        floor_h[m], bay[m] = scene.building_floor[k][b[m]], scene.building_bay[k][b[m]]
        height[m] = scene.building_heights[k][b[m]]
    plaster = 1.0 + 0.04 * scene.noise(2, z * 40, y * 40) + 0.03 * scene.noise(1, z * 5, y * 5)
    rgb = colour * plaster[:, None]
    # Windows: a grid of bays on every floor above the ground floor, shop windows below.
    storey = np.floor(y / floor_h)
    fy = np.mod(y, floor_h) / floor_h
    n_bays = np.maximum(np.floor((width - 1.0) / bay), 1)
    margin = (width - n_bays * bay) / 2
    column = np.floor((s - margin) / bay)
    fx = np.mod(s - margin, bay) / bay
    in_bays = (column >= 0) & (column < n_bays)
    upper = in_bays & (storey >= 1) & (y < height - 1.0)
    window = upper & (np.abs(fx - 0.5) < 0.25) & (fy > 0.3) & (fy < 0.82)
    frame = upper & (np.abs(fx - 0.5) < 0.29) & (fy > 0.26) & (fy < 0.86) & ~window
    shop = in_bays & (storey == 0) & (np.abs(fx - 0.5) < 0.4) & (y > 0.6) & (y < 0.8 * floor_h)
    glass_key = hash01(b, side, storey, column)
    glass = (0.1 + 0.16 * glass_key)[:, None] * np.array([0.85, 0.95, 1.1])
    glass = glass + 0.03 * scene.noise(1, z * 16, y * 16)[:, None]
    rgb = np.where(frame[:, None], 0.92, rgb)
    rgb = np.where((window | shop)[:, None], glass, rgb)
    cornice = y > height - 0.45
    plinth = y < 0.5
    rgb = np.where((cornice | plinth)[:, None], rgb * 0.7, rgb)
    return rgb


def _trunk(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    p = hits.point[rows]
    value = 1.0 + 0.15 * scene.noise(2, (p[:, 0] + p[:, 2]) * 30, p[:, 1] * 10)
    return scene.box_colour[hits.index[rows]] * value[:, None]


def _crown(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    p = hits.point[rows]
    u, v = p[:, 0] + 0.7 * p[:, 2], p[:, 1] - 0.5 * p[:, 2]
    leaves = 1.0 + 0.25 * scene.noise(2, u * 27, v * 27) + 0.2 * scene.noise(1, u * 20, v * 20)
    return scene.sphere_colour[hits.index[rows]] * np.clip(leaves, 0.3, None)[:, None]


def _car(scene: Scene, t: float, hits: Hits, rows: np.ndarray) -> np.ndarray:
    b = hits.index[rows]
    kind = hits.kind[rows]
    local = hits.point[rows] - (scene.box_car_lo[b] + t * scene.box_velocity[b])  # moves with the car
    size, heading, colour = scene.box_car_size[b], scene.box_heading[b], scene.box_colour[b]
    normal = hits.normal[rows]
    lateral = np.abs(local[:, 0] - size[:, 0] / 2)  # distance from the car's centre line
    y = local[:, 1]
    rgb = colour * (1.0 + 0.015 * scene.noise(2, (local[:, 0] + local[:, 2]) * 40, y * 40))[:, None]
    rgb = np.where((kind == UNDERBODY)[:, None], np.array([0.05, 0.05, 0.055]), rgb)
    facing = normal[:, 2] * heading  # +1 on the front face, -1 on the rear face
    lamp = (kind == BODY) & (lateral > size[:, 0] / 2 - 0.42) & (lateral < size[:, 0] / 2 - 0.1)
    lamp &= (y > 0.72) & (y < 0.88)
    rgb = np.where((lamp & (facing > 0.5))[:, None], np.array([0.95, 0.93, 0.82]), rgb)
    rgb = np.where((lamp & (facing < -0.5))[:, None], np.array([0.7, 0.05, 0.04]), rgb)
    grille = (kind == BODY) & (facing > 0.5) & (lateral < 0.42) & (y > 0.45) & (y < 0.7)
    plate = (kind == BODY) & (facing < -0.5) & (lateral < 0.26) & (y > 0.45) & (y < 0.58)
    rgb = np.where(grille[:, None], np.array([0.08, 0.08, 0.09]), rgb)
    rgb = np.where(plate[:, None], np.array([0.9, 0.9, 0.88]), rgb)
    trim = (kind == BODY) & (np.abs(normal[:, 0]) > 0.5) & (np.abs(y - 0.62) < 0.025)
    rgb = np.where(trim[:, None], rgb * 0.6, rgb)
    glass = (kind == CABIN) & (np.abs(normal[:, 1]) < 0.5)
    pane = 0.12 + 0.06 * scene.noise(1, (local[:, 0] + local[:, 2]) * 12, y * 12)
    return np.where(glass[:, None], _grey(pane, (0.9, 1.0, 1.15)), rgb)


def _sky(scene: Scene, d: np.ndarray) -> np.ndarray:
    up = np.clip(d[:, 1], 0, 1)
    horizon, zenith = np.array([0.8, 0.86, 0.93]), np.array([0.36, 0.56, 0.86])
    base = horizon + (zenith - horizon) * (up ** 0.6)[:, None]
    # Clouds on a far layer: coordinates from the direction only, so the sky moves by camera rotation alone.
    scale = 1.0 / (up + 0.12)
    u, v = d[:, 0] * scale * 100, d[:, 2] * scale * 100
    density = scene.noise(0, u, v) + 0.5 * scene.noise(1, u * 1.5, v * 1.5)
    cover = np.clip((density - 0.4) / 1.2, 0, 1)[:, None]
    return base * (1 - cover) + np.array([0.95, 0.95, 0.96]) * cover
