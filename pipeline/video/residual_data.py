"""Training images for the residual model: motion-compensated residuals of real driving sequences.

The video coder predicts from the previous *decoded* frame, so the reference here is a JPEG-degraded copy
of the previous frame (quality drawn per pair) rather than the pristine original. Residuals are stored as
uint8 PNG: ``clip((frame - prediction) / 255 * gain + 0.5, 0, 1) * 255``, the codec's input shifted to [0, 1].

    python -m pipeline.video.residual_data --out outputs/residuals --gain 2 [--scale 0.5] ROOT_OR_VIDEO ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from flow.motion import BlockMotion
from pipeline.datasets import FolderDataset, VideoDataset
from pipeline.imageio import write_image


def degrade(frame: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip of an RGB frame: a stand-in for the previous decoded frame."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def residual_image(frame: np.ndarray, prediction: np.ndarray, gain: float) -> np.ndarray:
    """(H, W, 3) uint8 residual picture: 128 means zero residual."""
    r = (frame.astype(np.float32) - prediction.astype(np.float32)) / 255.0 * gain + 0.5
    return np.clip(np.rint(r * 255.0), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="folders of sequences (folder-of-folders) or video files")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--gain", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=1.0, help="resize factor before motion estimation")
    parser.add_argument("--every", type=int, default=1, help="use every N-th consecutive pair")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    motion = BlockMotion()
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for source in args.sources:
        path = Path(source)
        dataset = VideoDataset(str(path), stride=1) if path.is_file() else FolderDataset(str(path))
        for seq in dataset:
            previous = None
            for index, frame in enumerate(seq):
                image = frame.image
                if args.scale != 1.0:
                    h, w = image.shape[:2]
                    size = (round(w * args.scale) // 32 * 32, round(h * args.scale) // 32 * 32)
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                if previous is not None and index % args.every == 0:
                    reference = degrade(previous, int(rng.choice([35, 60, 85, 95])))
                    prediction = motion.compensate(reference, motion.estimate(image, reference))
                    write_image(args.out / f"{seq.name}_{index:04d}_s{args.scale:g}.png",
                                residual_image(image, prediction, args.gain))
                    written += 1
                previous = image
    print(f"wrote {written} residual images to {args.out}")


if __name__ == "__main__":
    main()
