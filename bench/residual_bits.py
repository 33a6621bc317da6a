"""How well the residual models' bits compress: coded / raw bits per iteration (issue 15).

    python -m bench.residual_bits STEM [STEM ...] [--sequence seq0003] [--pairs 6] [--iterations 8]

P-frame residuals of a shared Cityscapes sequence no residual training source read (seq0003, 1024x512): each
frame against the motion-compensated previous frame (the shipped motion settings, original frames as the
reference), coded by each model with its own entropy prior, every block for every iteration. Reports per
iteration the coded bits over the raw ones (32 per 16x16 block) and the frame-domain PSNR.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.rdo_ablation import DATA
from bench.results import append
from codec.coder import ImageCodec
from pipeline.datasets import FolderDataset
from pipeline.image_quality import psnr
from pipeline.paths import CONF_DIR
from pipeline.video.rate import to_pixels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="+")
    parser.add_argument("--sequence", default="seq0003")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = [f.image for f in next(iter(FolderDataset(DATA / args.sequence, frames_per_sequence=args.pairs + 1,
                                                        resize="1024x512")))]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
    motion, gain = instantiate(cfg.motion), float(cfg.codec.residual_gain)
    predictions = [motion.compensate(frames[i], motion.estimate(frames[i + 1], frames[i]))
                   for i in range(args.pairs)]
    load = os.getloadavg()[0]
    lines = [f"`{args.sequence}` (no residual training source read it), {args.pairs} P-frame residuals at 1024x512 "
             f"against the motion-compensated previous original frame, {args.iterations} iterations on every block. "
             f"Load average {load:.1f}.", "",
             "| model | " + " | ".join(f"it {t + 1}" for t in range(args.iterations)) + " |",
             "|---|" + "---|" * args.iterations]
    for stem in args.stems:
        codec = ImageCodec.load(stem)
        coded = np.zeros(args.iterations)
        raw = np.zeros(args.iterations)
        quality = np.zeros(args.iterations)
        for frame, prediction in zip(frames[1:], predictions, strict=True):
            target, pred = to_pixels(frame), to_pixels(prediction)
            x = ((target - pred) / 255.0 * gain).clamp(-0.5, 0.5)
            cond = pred / 255.0 - 0.5 if codec.model.config.condition else None
            codes = codec.encode(x, args.iterations, cond=cond)
            chunks = codec.codes_to_chunks(codes)[1:]
            blocks = codes.bits.shape[2] * codes.bits.shape[3]
            for t in range(args.iterations):
                coded[t] += 8 * len(chunks[t])
                raw[t] += codes.bits.shape[1] * blocks
                partial = type(codes)(bits=codes.bits[: t + 1], counts=np.minimum(codes.counts, t + 1),
                                      height=codes.height, width=codes.width)
                image = (pred + codec.decode(partial, cond=cond) * (255.0 / gain))[0].round().clamp(0, 255)
                quality[t] += psnr(frame, image.to(torch.uint8).permute(1, 2, 0).numpy())
        lines.append(f"| `{stem}` coded/raw | " + " | ".join(f"{c / r:.3f}" for c, r in zip(coded, raw, strict=True))
                     + " |")
        lines.append(f"| `{stem}` PSNR dB | " + " | ".join(f"{q / args.pairs:.2f}" for q in quality) + " |")
    append(f"Residual bits: coded / raw per iteration, {args.sequence}", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
