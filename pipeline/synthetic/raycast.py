"""Nearest intersection of many rays with the street at one instant (vectorised over rays).

The street is: the road plane (Y = 0), the sidewalk planes (Y = kerb height) with vertical kerb
faces, the facade planes (cut at each building's height), axis-aligned boxes (cars, trunks) and
spheres (tree crowns). Boxes and spheres are tested only against the rays inside their projected
bounding rectangle, which keeps a frame with a hundred objects cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synthetic.scene import (
    CROWN,
    FACADE,
    FACADE_X,
    KERB,
    KERB_HEIGHT,
    ROAD,
    ROAD_HALF,
    SIDEWALK,
    SKY,
    Camera,
    Scene,
)

EPS = 1e-6


@dataclass
class Hits:
    """Per ray: distance (inf for sky), kind, index of the box/sphere/building, point and unit normal."""

    distance: np.ndarray  # (N,)
    kind: np.ndarray  # (N,) int
    index: np.ndarray  # (N,) int, -1 when not applicable
    point: np.ndarray  # (N, 3)
    normal: np.ndarray  # (N, 3)
    side: np.ndarray  # (N,) 0 left / 1 right, for facades

    def update(self, rows: np.ndarray, distance: np.ndarray, kind: int, index: np.ndarray | int,
               normal: np.ndarray) -> None:
        """Keep the new hits (``rows`` into this record) that are nearer than what is stored."""
        nearer = np.isfinite(distance) & (distance > EPS) & (distance < self.distance[rows])
        rows = rows[nearer]
        self.distance[rows] = distance[nearer]
        self.kind[rows] = kind
        self.index[rows] = index[nearer] if isinstance(index, np.ndarray) else index
        self.normal[rows] = normal[nearer] if normal.ndim == 2 else normal


class Rays:
    """Rays from one camera centre through image points (x, y); ``grid`` says they form a full raster."""

    def __init__(self, camera: Camera, x: np.ndarray, y: np.ndarray, directions: np.ndarray,
                 grid: tuple[int, int] | None = None) -> None:
        self.camera, self.x, self.y, self.directions, self.grid = camera, x, y, directions, grid

    @classmethod
    def raster(cls, camera: Camera, width: int, height: int, supersample: int) -> Rays:
        """``supersample`` x ``supersample`` rays per pixel of a width x height image, row-major."""
        offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
        xs = (np.arange(width)[:, None] + offsets).ravel()
        ys = (np.arange(height)[:, None] + offsets).ravel()
        x, y = np.meshgrid(xs, ys)
        return cls(camera, x.ravel(), y.ravel(), camera.directions(x.ravel(), y.ravel()), (len(ys), len(xs)))

    def inside(self, corners: np.ndarray) -> np.ndarray | None:
        """Indices of the rays that can hit a convex object with these world corners (K, 3); None: all."""
        u, v, depth = self.camera.project(corners)
        if np.any(depth < 0.05):  # the object crosses the camera plane: no valid bounding rectangle
            return None
        u0, u1, v0, v1 = u.min() - 1, u.max() + 1, v.min() - 1, v.max() + 1
        if self.grid is None:
            return np.flatnonzero((self.x >= u0) & (self.x <= u1) & (self.y >= v0) & (self.y <= v1))
        rows, cols = self.grid
        # Raster rays: the rectangle is a block of rows and columns, no need to test every ray.
        step = (self.x[1] - self.x[0]) if cols > 1 else 1.0
        x0, y0 = self.x[0], self.y[0]
        c0, c1 = max(int(np.ceil((u0 - x0) / step)), 0), min(int(np.floor((u1 - x0) / step)), cols - 1)
        r0, r1 = max(int(np.ceil((v0 - y0) / step)), 0), min(int(np.floor((v1 - y0) / step)), rows - 1)
        if c0 > c1 or r0 > r1:
            return np.empty(0, dtype=np.int64)
        return (np.arange(r0, r1 + 1)[:, None] * cols + np.arange(c0, c1 + 1)[None, :]).ravel()


def cast(scene: Scene, t: float, rays: Rays) -> Hits:
    """Nearest hit of every ray with the street as it is at frame ``t``."""
    o = rays.camera.position
    d = rays.directions
    n = len(d)
    hits = Hits(np.full(n, np.inf), np.full(n, SKY), np.full(n, -1), np.zeros((n, 3)), np.zeros((n, 3)),
                np.zeros(n, dtype=np.int64))
    all_rows = np.arange(n)
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    up = np.array([0.0, 1.0, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        for plane_y, kind, keep in ((0.0, ROAD, lambda ax: ax < ROAD_HALF),
                                    (KERB_HEIGHT, SIDEWALK, lambda ax: (ax >= ROAD_HALF) & (ax <= FACADE_X))):
            dist = np.where(dy < 0, (plane_y - o[1]) / dy, np.inf)
            dist = np.where(keep(np.abs(o[0] + dist * dx)), dist, np.inf)
            hits.update(all_rows, dist, kind, -1, up)
        side = np.where(dx > 0, 1.0, -1.0)
        normal = np.stack([-side, np.zeros(n), np.zeros(n)], axis=1)
        dist = (side * ROAD_HALF - o[0]) / dx
        y_at = o[1] + dist * dy
        hits.update(all_rows, np.where((y_at >= 0) & (y_at <= KERB_HEIGHT), dist, np.inf), KERB, -1, normal)
        dist = (side * FACADE_X - o[0]) / dx
        y_at, z_at = o[1] + dist * dy, o[2] + dist * dz
        building = np.zeros(n, dtype=np.int64)
        height = np.zeros(n)
        for s in (0, 1):
            rows = side == (1.0 if s else -1.0)
            edges = scene.building_edges[s]
            idx = np.clip(np.searchsorted(edges, z_at[rows], side="right") - 1, 0, len(edges) - 2)
            building[rows] = idx
            height[rows] = scene.building_heights[s][idx]
        hits.update(all_rows, np.where((y_at >= 0) & (y_at <= height), dist, np.inf), FACADE, building, normal)
        hits.side[:] = (side > 0).astype(np.int64)

        lo_all, hi_all = scene.boxes_at(t)
        for b in range(len(lo_all)):
            lo, hi = lo_all[b], hi_all[b]
            corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            rows = rays.inside(corners)
            rows = all_rows if rows is None else rows
            if len(rows):
                dist, normal = _box(o, d[rows], lo, hi)
                hits.update(rows, dist, int(scene.box_kind[b]), np.full(len(rows), b), normal)
        for s in range(len(scene.sphere_radius)):
            c, r = scene.sphere_centre[s], scene.sphere_radius[s]
            corners = c + r * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
            rows = rays.inside(corners)
            rows = all_rows if rows is None else rows
            if len(rows):
                dist = _sphere(o, d[rows], c, r)
                point = o + dist[:, None] * d[rows]
                hits.update(rows, dist, CROWN, np.full(len(rows), s), (point - c) / r)
    hit = np.isfinite(hits.distance)
    hits.point[hit] = o + hits.distance[hit, None] * d[hit]
    return hits


def _box(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test: entry distance (inf on a miss) and the entry face normal, for rays starting outside."""
    safe = np.where(np.abs(d) < 1e-12, 1e-12, d)
    t1, t2 = (lo - o) / safe, (hi - o) / safe
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    axis = np.argmax(near, axis=1)
    t_in, t_out = near.max(axis=1), far.min(axis=1)
    dist = np.where((t_in <= t_out) & (t_in > EPS), t_in, np.inf)
    normal = np.zeros_like(d)
    normal[np.arange(len(d)), axis] = -np.sign(safe[np.arange(len(d)), axis])
    return dist, normal


def _sphere(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Nearest positive distance to a sphere along unit directions d (inf on a miss)."""
    oc = o - c
    b = d @ oc
    disc = b * b - (oc @ oc - r * r)
    with np.errstate(invalid="ignore"):
        dist = -b - np.sqrt(disc)
    return np.where((disc >= 0) & (dist > EPS), dist, np.inf)
