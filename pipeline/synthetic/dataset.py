"""Write rendered sequences in the Cityscapes layout, with ground truth in parallel trees.

    OUT/leftImg8bit_sequence/train/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png   frames
    OUT/flow/train/{city}/{city}_{seq:06d}_{frame:06d}_flow.flo                         flow frame -> frame+1
    OUT/occlusion/train/{city}/{city}_{seq:06d}_{frame:06d}_occlusion.png               255: not visible in frame+1

``.flo`` is the Middlebury format written by ``cv2.writeOpticalFlow`` (float32 (H, W, 2), dx, dy).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from atomic import temporary_path
from pipeline.imageio import read_image, write_image
from pipeline.synthetic.render import ground_truth, render_image
from pipeline.synthetic.scene import make_scene

CITY = "synthtown"
SPLIT = "train"


def frame_path(out: Path, seq: int, frame: int, city: str = CITY) -> Path:
    return Path(out) / "leftImg8bit_sequence" / SPLIT / city / f"{city}_{seq:06d}_{frame:06d}_leftImg8bit.png"


def ground_truth_paths(frame_file: str | os.PathLike) -> tuple[Path, Path]:
    """The ``.flo`` and occlusion PNG that belong to a frame written by :func:`write_sequences`."""
    frame_file = Path(frame_file)
    city_dir = frame_file.parent
    root = city_dir.parent.parent.parent
    rel = city_dir.relative_to(root / "leftImg8bit_sequence")
    stem = frame_file.name.removesuffix("_leftImg8bit.png")
    return root / "flow" / rel / f"{stem}_flow.flo", root / "occlusion" / rel / f"{stem}_occlusion.png"


def read_ground_truth(frame_file: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Flow (H, W, 2) float32 from this frame to the next, and occlusion (H, W) bool (True: occluded)."""
    flow_file, occlusion_file = ground_truth_paths(frame_file)
    if not flow_file.is_file():
        raise FileNotFoundError(f"no ground-truth flow {flow_file} for {frame_file} (the last frame has none)")
    flow = cv2.readOpticalFlow(str(flow_file))
    if flow is None or flow.size == 0:
        raise ValueError(f"cannot read optical flow {flow_file}: expected a Middlebury .flo file")
    return flow, read_image(occlusion_file)[:, :, 0] > 127


def write_flow(path: Path, flow: np.ndarray) -> None:
    """``cv2.writeOpticalFlow`` to a temporary name in the same folder, then rename (atomic)."""
    with temporary_path(path) as tmp:
        if not cv2.writeOpticalFlow(str(tmp), flow):
            raise ValueError(f"cv2.writeOpticalFlow failed for {path}")


def write_sequences(out: str | os.PathLike, frames: int, width: int, height: int, seed: int, sequences: int = 1,
                    supersample: int = 3, city: str = CITY) -> list[Path]:
    """Render ``sequences`` streets of ``frames`` frames each; returns the frame files written."""
    if frames < 2 or width < 16 or height < 16 or sequences < 1 or supersample < 1:
        raise ValueError(f"frames={frames}, size={width}x{height}, sequences={sequences}, supersample={supersample}:"
                         " expected at least 2 frames, 16x16 pixels, 1 sequence and supersample >= 1")
    out = Path(out)
    written = []
    for seq in range(sequences):
        scene = make_scene(seed, frames, width, height, index=seq)
        for t in range(frames):
            path = frame_path(out, seq, t, city)
            write_image(path, render_image(scene, t, supersample))
            written.append(path)
            if t + 1 < frames:
                flow, occluded = ground_truth(scene, t)
                flow_file, occlusion_file = ground_truth_paths(path)
                write_flow(flow_file, flow)
                write_image(occlusion_file, np.where(occluded, 255, 0).astype(np.uint8))
    return written
