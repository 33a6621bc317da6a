"""Picture of a rendered sample for the README: frames on top, their ground-truth flow below.

    python -m pipeline.synthetic.preview data/sample docs/sample.png

Flow colours: hue is the direction, saturation grows with the square root of speed (normalised by
the largest motion shown); occluded pixels are drawn black.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from pipeline.imageio import write_image
from pipeline.synthetic.dataset import read_ground_truth


def flow_to_rgb(flow: np.ndarray, max_magnitude: float) -> np.ndarray:
    """(H, W, 2) flow -> (H, W, 3) uint8 RGB on a simple HSV colour wheel."""
    magnitude, angle = cv2.cartToPolar(flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32))
    hsv = np.empty((*flow.shape[:2], 3), dtype=np.uint8)
    hsv[..., 0] = (angle * (90 / np.pi)).astype(np.uint8)  # OpenCV hue is 0..179
    # Square root: small motions (distant or co-moving cars) stay visible next to the fast foreground.
    hsv[..., 1] = np.clip(np.sqrt(magnitude / max(max_magnitude, 1e-6)) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def preview(sample: Path, columns: int = 3) -> np.ndarray:
    """Frames 0, k, 2k... of the first sequence above the colour-coded flow to their next frame."""
    frames = sorted((sample / "leftImg8bit_sequence").rglob("*_leftImg8bit.png"))[:-1]  # the last has no flow
    if not frames:
        raise FileNotFoundError(f"no rendered frames under {sample}/leftImg8bit_sequence")
    chosen = frames[:: max(len(frames) // columns, 1)][:columns]
    images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in chosen]
    truths = [read_ground_truth(f) for f in chosen]
    largest = max(float(np.percentile(np.linalg.norm(flow[~occ], axis=-1), 99)) for flow, occ in truths)
    flows = []
    for flow, occluded in truths:
        picture = flow_to_rgb(flow, largest)
        picture[occluded] = 0
        flows.append(picture)
    gap = np.full((images[0].shape[0], 4, 3), 255, np.uint8)

    def row(pictures: list[np.ndarray]) -> np.ndarray:
        return np.hstack([p if i == 0 else np.hstack([gap, p]) for i, p in enumerate(pictures)])

    top, bottom = row(images), row(flows)
    return np.vstack([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.synthetic.preview", description=__doc__)
    parser.add_argument("sample", type=Path, help="folder written by python -m pipeline.synthetic")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--columns", type=int, default=3)
    args = parser.parse_args(argv)
    write_image(args.out, preview(args.sample, args.columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
