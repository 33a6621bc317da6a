"""The procedural street: geometry, its motion over time, and the pinhole camera driving through it.

World frame: X to the right, Y up, Z forward along the road, metres; one time unit is one frame.
The camera rides in the right lane of a two-lane street with parking lanes, raised sidewalks,
street trees and a continuous wall of building facades. Cars are axis-aligned boxes (underbody,
body, cabin) that translate along Z; the camera translates and sways slightly in yaw and pitch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.synthetic.noise import NoiseTiles

LANE_WIDTH = 3.5
ROAD_HALF = 5.7  # two lanes plus a 2.2 m parking lane on each side
KERB_HEIGHT = 0.15
FACADE_X = ROAD_HALF + 3.5  # sidewalk width 3.5 m
TREE_X = ROAD_HALF + 1.0

# Box kinds (also the hit kinds of the ray caster, see raycast.py).
SKY, ROAD, SIDEWALK, KERB, FACADE, TRUNK, CROWN, UNDERBODY, BODY, CABIN = range(10)
CAR_KINDS = (UNDERBODY, BODY, CABIN)

CAR_COLOURS = np.array([[0.85, 0.85, 0.83], [0.55, 0.57, 0.6], [0.08, 0.08, 0.09], [0.62, 0.08, 0.07],
                        [0.1, 0.2, 0.48], [0.12, 0.3, 0.2], [0.75, 0.72, 0.6], [0.3, 0.32, 0.36]])
FACADE_COLOURS = np.array([[0.86, 0.82, 0.72], [0.78, 0.76, 0.74], [0.9, 0.88, 0.84], [0.8, 0.66, 0.5],
                           [0.62, 0.36, 0.28], [0.7, 0.72, 0.66], [0.84, 0.76, 0.58], [0.56, 0.5, 0.46]])


@dataclass
class Camera:
    """Pinhole camera: pixel (x, y) (pixel centres at integers) looks along ``rotation @ [(x-cx)/f, (y-cy)/f, 1]``.

    ``rotation`` maps camera axes (x right, y down, z forward) to world axes.
    """

    position: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3)
    focal: float
    width: int
    height: int

    @property
    def centre(self) -> tuple[float, float]:
        return (self.width - 1) / 2, (self.height - 1) / 2

    def directions(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Unit world ray directions (N, 3) through image points x, y (N,)."""
        cx, cy = self.centre
        cam = np.stack([(x - cx) / self.focal, (y - cy) / self.focal, np.ones_like(x, dtype=np.float64)], axis=-1)
        world = cam @ self.rotation.T
        return world / np.linalg.norm(world, axis=-1, keepdims=True)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (N, 3) -> image x, y and depth along the optical axis, each (N,)."""
        cam = (points - self.position) @ self.rotation
        return self.project_camera(cam)

    def project_directions(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points at infinity (world directions (N, 3)) -> image x, y and a depth whose sign says in front."""
        return self.project_camera(directions @ self.rotation)

    def project_camera(self, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cx, cy = self.centre
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.focal * cam[:, 0] / z + cx, self.focal * cam[:, 1] / z + cy, z


@dataclass
class Scene:
    """Everything needed to render any frame of one sequence; built by :func:`make_scene`."""

    seed: int
    width: int
    height: int
    focal: float
    speed: float  # camera metres per frame along Z
    pose_params: np.ndarray  # (8,) sway amplitudes and phases
    # Buildings per side (0: left, 1: right): boundaries along Z (M+1,), and per building (M,) values.
    building_edges: list[np.ndarray]
    building_heights: list[np.ndarray]
    building_colours: list[np.ndarray]  # (M, 3)
    building_floor: list[np.ndarray]  # floor height
    building_bay: list[np.ndarray]  # window bay width
    # Boxes: corners at frame 0 and velocity per frame.
    box_lo: np.ndarray  # (B, 3)
    box_hi: np.ndarray  # (B, 3)
    box_velocity: np.ndarray  # (B, 3)
    box_kind: np.ndarray  # (B,)
    box_colour: np.ndarray  # (B, 3)
    box_heading: np.ndarray  # (B,) +1 or -1: which Z face is the front of the car (0 for trunks)
    box_car_lo: np.ndarray  # (B, 3) lower corner of the whole car at frame 0 (texture origin)
    box_car_size: np.ndarray  # (B, 3) size of the whole car
    sphere_centre: np.ndarray  # (S, 3), tree crowns (static)
    sphere_radius: np.ndarray  # (S,)
    sphere_colour: np.ndarray  # (S, 3)
    noise: NoiseTiles = field(repr=False)

    def camera(self, t: float) -> Camera:
        """The camera at frame ``t``."""
        a = self.pose_params
        position = np.array([LANE_WIDTH / 2 + 0.06 * np.sin(0.45 * t + a[0]),
                             1.55 + 0.02 * np.sin(1.3 * t + a[1]),
                             self.speed * t])
        yaw = 0.006 * np.sin(0.35 * t + a[2])
        pitch = 0.008 * np.sin(0.9 * t + a[3])
        cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
        r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        flip_y = np.diag([1.0, -1.0, 1.0])  # camera y points down, world Y up
        return Camera(position, r_yaw @ r_pitch @ flip_y, self.focal, self.width, self.height)

    def boxes_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Box corners (B, 3), (B, 3) at frame ``t``."""
        return self.box_lo + t * self.box_velocity, self.box_hi + t * self.box_velocity


def make_scene(seed: int, frames: int, width: int, height: int, index: int = 0) -> Scene:
    """Street number ``index`` of ``seed``: random but reproducible, for ``frames`` frames of width x height."""
    rng = np.random.default_rng([seed, index])
    noise = NoiseTiles(rng)
    speed = float(rng.uniform(0.75, 1.0))  # 13-17 m/s at Cityscapes' 17 Hz
    z_end = speed * frames + 160.0  # beyond this the street is only road and facades
    boxes: list[tuple] = []

    def add_car(x: float, z: float, velocity: float, heading: int) -> None:
        length, width_ = rng.uniform(3.9, 4.7), rng.uniform(1.72, 1.86)
        colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] * rng.uniform(0.9, 1.05)
        car_lo = np.array([x - width_ / 2, 0.0, z])
        size = np.array([width_, 1.45, length])
        vel = np.array([0.0, 0.0, velocity])
        cab_lo, cab_hi = (0.18, 0.7) if heading > 0 else (0.3, 0.82)
        parts = [(UNDERBODY, [0.1, 0.0, 0.45], [width_ - 0.1, 0.34, length - 0.45]),
                 (BODY, [0.0, 0.3, 0.0], [width_, 0.98, length]),
                 (CABIN, [0.12, 0.98, cab_lo * length], [width_ - 0.12, 1.45, cab_hi * length])]
        for kind, lo, hi in parts:
            boxes.append((car_lo + lo, car_lo + hi, vel, kind, colour, heading, car_lo, size))

    lane = LANE_WIDTH / 2
    # Lead car in our lane, a little slower or faster than us.
    add_car(lane, rng.uniform(11.0, 18.0), speed * rng.uniform(0.85, 1.05), +1)
    # Oncoming traffic: the first car is visible for the first frames and passes us later.
    closing = speed * 2.0
    z = rng.uniform(16.0, 24.0) + 0.5 * closing * min(frames, 8)
    while z < z_end + closing * frames:
        oncoming = -speed * rng.uniform(0.9, 1.1)
        add_car(-lane, z, oncoming, -1)
        z += rng.uniform(25.0, 50.0)
    # Parked cars on both parking lanes.
    for side in (-1, 1):
        z = rng.uniform(-8.0, 2.0)
        while z < speed * frames + 90.0:
            if rng.random() < 0.65:
                add_car(side * (LANE_WIDTH + 1.05), z, 0.0, int(rng.choice([-1, 1])))
            z += rng.uniform(5.6, 8.0)
    # Street trees: trunks as thin boxes, crowns as spheres.
    centres, radii, greens = [], [], []
    for side in (-1, 1):
        z = rng.uniform(-6.0, 6.0)
        while z < speed * frames + 110.0:
            if rng.random() < 0.8:
                radius, top = rng.uniform(1.4, 2.1), rng.uniform(3.4, 4.4)
                x = side * TREE_X + rng.uniform(-0.2, 0.2)
                centres.append([x, top + 0.6 * radius, z])
                radii.append(radius)
                greens.append(np.array([0.16, 0.3, 0.1]) * rng.uniform(0.8, 1.2, 3))
                trunk_lo = np.array([x - 0.13, KERB_HEIGHT, z - 0.13])
                trunk_hi = np.array([x + 0.13, top + 0.6 * radius, z + 0.13])
                boxes.append((trunk_lo, trunk_hi, np.zeros(3), TRUNK, np.array([0.3, 0.24, 0.18]), 0, np.zeros(3),
                              np.ones(3)))
            z += rng.uniform(9.0, 14.0)
    # Buildings along both facades.
    edges, heights, colours, floors, bays = [], [], [], [], []
    for _side in (0, 1):
        widths = rng.uniform(7.0, 16.0, size=int((z_end + 60) / 7) + 2)
        e = np.concatenate([[-40.0], -40.0 + np.cumsum(widths)])
        m = len(widths)
        edges.append(e)
        heights.append(rng.uniform(9.0, 22.0, m))
        colours.append(FACADE_COLOURS[rng.integers(len(FACADE_COLOURS), size=m)] * rng.uniform(0.9, 1.05, (m, 1)))
        floors.append(rng.uniform(2.9, 3.5, m))
        bays.append(rng.uniform(2.2, 3.1, m))
    lo, hi, vel, kind, colour, heading, car_lo, car_size = (np.array(v) for v in zip(*boxes, strict=True))
    return Scene(seed=seed, width=width, height=height, focal=0.9 * width, speed=speed,
                 pose_params=rng.uniform(0, 2 * np.pi, 8), building_edges=edges, building_heights=heights,
                 building_colours=colours, building_floor=floors, building_bay=bays, box_lo=lo, box_hi=hi,
                 box_velocity=vel, box_kind=kind, box_colour=colour, box_heading=heading, box_car_lo=car_lo,
                 box_car_size=car_size, sphere_centre=np.array(centres).reshape(-1, 3), sphere_radius=np.array(radii),
                 sphere_colour=np.array(greens).reshape(-1, 3), noise=noise)
