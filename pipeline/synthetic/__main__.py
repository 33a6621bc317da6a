"""``python -m pipeline.synthetic --out DIR --frames N --size WxH --seed S --sequences K``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from atomic import write_bytes
from pipeline.datasets.base import parse_size
from pipeline.synthetic.dataset import CITY, write_sequences

README = """# Synthetic driving sample

Rendered by the project's procedural renderer (`pipeline/synthetic/`), not recorded: a camera at 1.55 m
drives along the right lane of a street with parked, leading and oncoming cars, street trees and building
facades, at 13-17 m/s (one frame is 1/17 s, as in Cityscapes). Every file is reproducible with exactly this
command from the repository root:

    {command}

Layout (Cityscapes-style names, ground truth in parallel trees):

- `leftImg8bit_sequence/train/{city}/{city}_SSSSSS_FFFFFF_leftImg8bit.png`: frames, uint8 RGB {width}x{height},
  {frames} per sequence, {sequences} sequence(s), {supersample}x{supersample} supersampled.
- `flow/train/{city}/{city}_SSSSSS_FFFFFF_flow.flo`: exact forward optical flow from frame FFFFFF to the next
  (Middlebury .flo via `cv2.writeOpticalFlow`, float32 (dx, dy) in pixels).
- `occlusion/train/{city}/{city}_SSSSSS_FFFFFF_occlusion.png`: 255 where the pixel's surface point is hidden or
  out of view in the next frame, 0 where the flow can be checked photometrically.

Read it with `dataset=sample` (the default) or `dataset=cityscapes dataset.root=<this folder>`;
`pipeline.synthetic.read_ground_truth(frame_file)` returns the flow and occlusion of a frame.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.synthetic", description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--frames", type=int, default=6, help="frames per sequence (>= 2)")
    parser.add_argument("--size", default="384x192", help="WIDTHxHEIGHT in pixels")
    parser.add_argument("--seed", type=int, default=0, help="scene seed: same seed, same bytes")
    parser.add_argument("--sequences", type=int, default=1, help="number of sequences (different streets)")
    parser.add_argument("--supersample", type=int, default=3, help="rays per pixel along each axis (anti-aliasing)")
    args = parser.parse_args(argv)
    try:
        width, height = parse_size(args.size) or (0, 0)
        start = time.perf_counter()
        files = write_sequences(args.out, args.frames, width, height, args.seed, args.sequences, args.supersample)
    except (ValueError, OSError) as err:
        print(f"pipeline.synthetic: error: {err}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "pipeline.synthetic", "--out", str(args.out), "--frames", str(args.frames),
                          "--size", f"{width}x{height}", "--seed", str(args.seed), "--sequences", str(args.sequences),
                          "--supersample", str(args.supersample)])
    text = README.format(command=command, city=CITY, width=width, height=height, frames=args.frames,
                         sequences=args.sequences, supersample=args.supersample)
    write_bytes(args.out / "README.md", text.encode())
    print(f"wrote {len(files)} frames with flow and occlusion to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
