"""Recurrent layers updated only around the coded blocks (codec/sparse.py) against every position updated (the
codec before): BD-rate and encode / decode time per frame, same weights and rate control.

    python -m bench.sparse_updates [--sequence seq0003] [--frames 30] [--points 28,34,40,46] [--threads 1]

Codes a shared Cityscapes sequence that no training source read (seq0003) at 1024x512 with rnn_mc twice: as
shipped, and with every block in the update region of every iteration (``codec.sparse.region`` returning all
blocks), which is what the codec computed before sparse updates.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from unittest import mock

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.rdo_ablation import _bd, sequence_frames
from bench.results import append
from codec import sparse
from pipeline.evaluation.metrics import score
from pipeline.evaluation.rnn import RNNVideoCodec
from pipeline.paths import CONF_DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default="seq0003")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--points", default="28,34,40,46")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = sequence_frames(args.sequence, args.frames)
    points = [float(p) for p in args.points.split(",")]
    load = os.getloadavg()[0]
    curves = {}
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
        flow_metrics = {"flow_consistency": instantiate(cfg.eval.flow_metrics.flow_consistency)}
        everywhere = mock.patch.object(sparse, "region", lambda active: torch.ones_like(active, dtype=torch.bool))
        for label, patch in (("every position", everywhere), ("sparse", contextlib.nullcontext())):
            codec = RNNVideoCodec(label, "mc", "quality", points, cfg.codec, instantiate(cfg.motion), cfg.rate,
                                  cfg.gop)
            curve = []
            for point in codec.points():
                start = time.perf_counter()
                with patch:
                    coded = codec.code(frames, point)
                row = score(frames, coded, flow_metrics)
                row.update(point=point, wall_s=time.perf_counter() - start)
                curve.append(row)
            curves[label] = curve
    old, new = curves["every position"], curves["sparse"]
    lines = [f"`{args.sequence}`, {len(frames)} frames at 1024x512, rnn_mc with the default rate control at quality "
             f"{args.points}, torch threads {args.threads}, load average {load:.1f} -> {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} cores.", "",
             f"BD-rate of sparse updates against every position updated: MS-SSIM {_bd(old, new, 'msssim')}, PSNR "
             f"{_bd(old, new, 'psnr')}, flow consistency {_bd(old, new, 'flow_consistency')}.", "",
             "| updates | quality | bpp | PSNR dB | MS-SSIM | flow px | encode s/frame | decode s/frame |",
             "|---|---|---|---|---|---|---|---|"]
    for label, curve in curves.items():
        for p in curve:
            lines.append(f"| {label} | {p['point']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['msssim']:.4f} | "
                         f"{p['flow_consistency']:.3f} | {p['encode_s_per_frame']:.2f} | "
                         f"{p['decode_s_per_frame']:.2f} |")
    speed = [o["decode_s_per_frame"] / n["decode_s_per_frame"] for o, n in zip(old, new, strict=True)]
    lines += ["", f"Decode {np.min(speed):.1f}-{np.max(speed):.1f}x faster with sparse updates."]
    append(f"Sparse recurrent updates against every position, {args.sequence}", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
