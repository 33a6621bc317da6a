"""Two residual models (or two settings of rnn_mc) under the same rate control: BD-rates and per-point P-frame
figures (issues 15 and 16).

    python -m bench.residual_model NEW_STEM [--old codec/weights/residual] [--sequence seq0003] [--frames 30]
        [--points 28,34,40,46] [--threads 1] [--new-set key=value ...] [--title TEXT] [key=value ...]

Codes a shared Cityscapes sequence that no residual training source read (seq0003) at 1024x512 with rnn_mc,
once per residual model (the intra model, motion and rate control are the shipped defaults, ``key=value``
overrides apply to both, ``--new-set`` ones to the new side only, e.g. ``codec.loop_filter=STEM`` with the
same model on both sides), and reports BD-rate of new against old on MS-SSIM, PSNR and flow consistency, with
P-frame bpp / PSNR / MS-SSIM and time per point.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.rdo_ablation import _bd, sequence_frames
from bench.results import append
from pipeline.evaluation.metrics import score
from pipeline.evaluation.rnn import RNNVideoCodec
from pipeline.image_quality import msssim, psnr
from pipeline.paths import CONF_DIR, REPO_DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new")
    parser.add_argument("--old", default=str(REPO_DIR / "codec" / "weights" / "residual"))
    parser.add_argument("--sequence", default="seq0003")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--points", default="28,34,40,46")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the new side only; repeat for more")
    parser.add_argument("--title", default="Residual model: new against old under the same rate control")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = sequence_frames(args.sequence, args.frames)
    pixels = frames[0].shape[0] * frames[0].shape[1]
    points = [float(p) for p in args.points.split(",")]
    load = os.getloadavg()[0]
    curves = {}
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        flow_metrics = {"flow_consistency": instantiate(compose("config").eval.flow_metrics.flow_consistency)}
        for label, stem, only in (("old", args.old, []), ("new", args.new, args.new_set)):
            cfg = compose("config", [f"codec.residual_weights={stem}", *args.overrides, *only])
            codec = RNNVideoCodec(label, "mc", "quality", points, cfg.codec, instantiate(cfg.motion), cfg.rate,
                                  cfg.gop)
            curve = []
            for point in codec.points():
                start = time.perf_counter()
                coded = codec.code(frames, point)
                row = score(frames, coded, flow_metrics)
                p_frames = [i for i in range(len(frames)) if i % cfg.gop]
                row.update(point=point, wall_s=time.perf_counter() - start,
                           p_bpp=np.mean([coded.bits[i] for i in p_frames]) / pixels,
                           p_psnr=np.mean([psnr(frames[i], coded.decoded[i]) for i in p_frames]),
                           p_msssim=np.mean([msssim(frames[i], coded.decoded[i]) for i in p_frames]))
                curve.append(row)
            curves[label] = curve
    lines = [f"`{args.sequence}` (no residual training source read it), {len(frames)} frames at 1024x512, rnn_mc "
             f"with the default rate control at quality {args.points} (`{' '.join(args.overrides) or 'defaults'}`); "
             f"old = `{args.old}`, new = `{args.new}` {' '.join(f'`{o}`' for o in args.new_set)}. "
             f"Torch threads {args.threads}, load average {load:.1f} -> "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.", "",
             "BD-rate of new against old (negative = fewer bits at equal quality): MS-SSIM "
             f"{_bd(curves['old'], curves['new'], 'msssim')}, PSNR {_bd(curves['old'], curves['new'], 'psnr')}, "
             f"flow consistency {_bd(curves['old'], curves['new'], 'flow_consistency')}.", "",
             "| model | quality | bpp | P-frame bpp | P-frame PSNR dB | P-frame MS-SSIM | flow px | encode s/frame | "
             "decode s/frame |", "|---|---|---|---|---|---|---|---|---|"]
    for label, curve in curves.items():
        for p in curve:
            lines.append(f"| {label} | {p['point']:g} | {p['bpp']:.4f} | {p['p_bpp']:.4f} | {p['p_psnr']:.2f} | "
                         f"{p['p_msssim']:.4f} | {p['flow_consistency']:.3f} | {p['encode_s_per_frame']:.2f} | "
                         f"{p['decode_s_per_frame']:.2f} |")
    append(f"{args.title}, {args.sequence}", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
