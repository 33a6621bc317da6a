"""Time per frame of the video coder (mode=mc) at 1024x512 and 2048x1024 on real Cityscapes frames.

    python -m bench.video_speed [--frames 4] [--threads N] [key=value ...]

Extra ``key=value`` arguments are config overrides (default: the shipped rate control, ``rate.mode=rdo`` at the
default quality; ``rate.mode=iterations rate.iterations=4`` times the old default).

Encoding includes motion estimation, compensation, RNN coding and entropy coding; decoding reads the bytes
back. The first frame is an I-frame, the others P-frames; both are reported.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.results import append
from pipeline.datasets import FolderDataset
from pipeline.frames import Frame
from pipeline.paths import CONF_DIR, REPO_DIR
from pipeline.video import container
from pipeline.video.build import build_coder

DATA = REPO_DIR.parent / "shared" / "data" / "cityscapes_sequence" / "seq0000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. rate.quality=36")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the shared Cityscapes sequences live beside the checkout")
    if args.threads:
        torch.set_num_threads(args.threads)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", args.overrides)
    coder = build_coder(cfg)
    originals = [f.image for f, _ in zip(next(iter(FolderDataset(str(DATA)))), range(args.frames), strict=False)]
    load = os.getloadavg()[0]
    rows = ["| size | frame type | encode s/frame | decode s/frame | bpp |", "|---|---|---|---|---|"]
    for w, h in ((1024, 512), (2048, 1024)):
        frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[1] != w else f for f in originals]
        names = [f"{i:06d}.png" for i in range(len(frames))]
        encode_times, bits = [], []
        stream = [container.encode_header(coder.header(names, h, w))]
        start = time.perf_counter()
        for coded in coder.encode(Frame(f, n, i) for i, (f, n) in enumerate(zip(frames, names, strict=True))):
            now = time.perf_counter()
            encode_times.append(now - start)
            bits.append(coded.bits)
            stream.append(container.encode_record(coded.record))
            start = time.perf_counter()
        decode_times = []
        start = time.perf_counter()
        for _ in coder.decode(b"".join(stream)):
            now = time.perf_counter()
            decode_times.append(now - start)
            start = now
        for kind, sl in (("I", slice(0, 1)), ("P", slice(1, None))):
            rows.append(f"| {w}x{h} | {kind} | {np.mean(encode_times[sl]):.2f} | {np.mean(decode_times[sl]):.2f} | "
                        f"{np.mean(bits[sl]) / (w * h):.4f} |")
    settings = " ".join(args.overrides) or "defaults"
    body = (f"mode=mc, `{settings}` (rate: `{OmegaConf.to_container(cfg.rate)}`), {args.frames} frames of "
            f"`{DATA.name}` "
            f"(1 I + {args.frames - 1} P), torch threads {torch.get_num_threads()}, load average {load:.1f} -> "
            f"{os.getloadavg()[0]:.1f}. CPU only: no GPU was lent to this task.\n\n" + "\n".join(rows))
    append(f"Video coder: time per frame ({settings})", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
