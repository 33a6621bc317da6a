"""What each rate-distortion decision buys: BD-rates of rnn_mc, each row against the previous one.

    python -m bench.rdo_ablation [--sequence seq0003] [--frames 30] [--workers 2] [--rows 7 10]

Rows (each adds one part to the row above; the distortion rows replace mse):

1. ``rate.mode=iterations`` (the old default: every coded block gets the same count, skip by a PSNR threshold),
   swept over 1, 2, 4, 6 iterations;
2. block RDO (``rate.mode=rdo``, one lambda per frame, I-frames alike: ``ip_ratio=1``), motion as before
   (fixed rate penalty, no regularisation, 16x16 blocks only);
3. the I/P lambda ratio (``rate.ip_ratio``, default);
4. the motion search tied to the frame's lambda, plus regularisation (``motion.bits_per_px``, ``motion.regularise``);
5. per-frame 32x32 fields and region merges (``motion.alternatives``);
6. per-block rate-distortion refinement of the field sent (``motion.refine``, :mod:`flow.refine`);
7. propagation-aware lambda (``rate.propagation``, x264's macroblock-tree);
8. adaptive quantisation (``rate.aq_strength``, x264's AQ): the shipped defaults;
9. / 10. ``rate.distortion=ssim`` / ``flow`` instead of ``mse`` (against row 8);
11. bilinear instead of bicubic sub-pel interpolation (``motion.interpolation=linear``, against row 8);
12. the defaults without the per-block refinement (``motion.refine=0``, against row 8: what it buys with
    propagation and AQ on);
13. two passes of that refinement instead of the default three (``motion.refine=2``, against row 8).

Some parts cannot be switched off: every row codes its vectors with MED prediction and merges (a block may copy
its left, top or top-left neighbour) and with stream version 5's fitted initial counts and contexts
(:mod:`flow.vector_coding`), and rows 2-13 decide each iteration on its real
gain (bench/RESULTS.md: what they bought, from the defaults row at the commits before and after each). ``--rows``
codes only the rows given (1-based; a row's reference is coded too when it is not given).

The sequence is a shared Cityscapes one that no residual-model training source read (seq0003; the intra
model saw its frames 0, 5, 11, 17, 23 and 29), area-downscaled from 2048x1024 to 1024x512. BD-rates on
MS-SSIM, PSNR and flow consistency; vector bits and P-frame bits are means per P-frame.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.results import append
from pipeline.datasets import FolderDataset
from pipeline.evaluation.bjontegaard import BDRateError, bd_rate
from pipeline.evaluation.metrics import score
from pipeline.evaluation.rnn import RNNVideoCodec
from pipeline.paths import CONF_DIR, REPO_DIR

DATA = REPO_DIR.parent / "shared" / "data" / "cityscapes_sequence"
QUALITIES = [28, 34, 40, 46]
NO_REFINE = "motion.refine=0"
OLD_MOTION = ["motion.bits_per_px=0", "motion.regularise=0", "motion.alternatives=[]", NO_REFINE]
FLAT = ["rate.propagation=0", "rate.aq_strength=0"]
NO_AQ = "rate.aq_strength=0"
ROWS: list[tuple[str, str, list, list[str]]] = [  # name, swept rate setting, points, overrides
    ("iterations (old default)", "iterations", [1, 2, 4, 6], ["rate.mode=iterations", *OLD_MOTION]),
    ("+ block RDO (ip_ratio 1)", "quality", QUALITIES, ["rate.ip_ratio=1", *FLAT, *OLD_MOTION]),
    ("+ I/P lambda ratio", "quality", QUALITIES, [*FLAT, *OLD_MOTION]),
    ("+ motion search: lambda-tied, regularised", "quality", QUALITIES, [*FLAT, "motion.alternatives=[]", NO_REFINE]),
    ("+ motion: 32x32 fields and region merges", "quality", QUALITIES, [*FLAT, NO_REFINE]),
    ("+ motion: per-block rate-distortion refinement", "quality", QUALITIES, FLAT),
    ("+ propagation (macroblock-tree)", "quality", QUALITIES, [NO_AQ]),
    ("+ adaptive quantisation (defaults)", "quality", QUALITIES, []),
    ("distortion=ssim (vs row 8)", "quality", QUALITIES, ["rate.distortion=ssim"]),
    ("distortion=flow (vs row 8)", "quality", QUALITIES, ["rate.distortion=flow"]),
    ("bilinear sub-pel (vs row 8)", "quality", QUALITIES, ["motion.interpolation=linear"]),
    ("no per-block vector refinement (vs row 8)", "quality", QUALITIES, [NO_REFINE]),
    ("two refinement passes instead of three (vs row 8)", "quality", QUALITIES, ["motion.refine=2"]),
]
REFERENCE_ROW = {8: 7, 9: 7, 10: 7, 11: 7, 12: 7}  # rows compared with another than the previous one (0-based)
METRICS = {"msssim": 1.0, "psnr": 1.0, "flow_consistency": -1.0}


def sequence_frames(sequence: str, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a shared Cityscapes sequence at 1024x512, uint8 RGB."""
    folder = DATA / sequence
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: the shared Cityscapes sequences live beside the checkout")
    return [f.image for f in next(iter(FolderDataset(folder, frames_per_sequence=count, resize="1024x512")))]


def _bd(ref: list[dict], test: list[dict], metric: str) -> str:
    sign = METRICS[metric]
    try:
        value = bd_rate([p["bpp"] for p in ref], [sign * p[metric] for p in ref],
                        [p["bpp"] for p in test], [sign * p[metric] for p in test])
    except BDRateError as err:
        return f"n/a ({err})"
    return f"{value:+.1f} %"


def _row(task: tuple[int, str, int]) -> tuple[str, list[str], list[dict]]:
    """Code the sequence over one row's sweep (one torch thread: rows run in parallel processes)."""
    index, sequence, count = task
    torch.set_num_threads(1)
    name, sweep, points, overrides = ROWS[index]
    frames = sequence_frames(sequence, count)
    pixels = frames[0].shape[0] * frames[0].shape[1]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        flow_metrics = {"flow_consistency": instantiate(compose("config").eval.flow_metrics.flow_consistency)}
        cfg = compose("config", overrides)
    codec = RNNVideoCodec(name, "mc", sweep, points, cfg.codec, instantiate(cfg.motion), cfg.rate, cfg.gop)
    curve = []
    for point in codec.points():
        coded = codec.code(frames, point)
        row = score(frames, coded, flow_metrics)
        p_frames = [i for i in range(len(frames)) if i % cfg.gop]
        row.update(point=point, mv_bpp=np.mean([coded.motion_bits[i] for i in p_frames]) / pixels,
                   p_bpp=np.mean([coded.bits[i] for i in p_frames]) / pixels)
        curve.append(row)
    print(name, [f"{p['bpp']:.4f}/{p['msssim']:.4f}" for p in curve], flush=True)
    return name, overrides, curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default="seq0003")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="rows coded in parallel, one torch thread each")
    parser.add_argument("--rows", type=int, nargs="+", help=f"only these rows (1..{len(ROWS)}) and their references")
    args = parser.parse_args()
    if not (DATA / args.sequence).is_dir():
        raise SystemExit(f"{DATA / args.sequence} not found: the shared Cityscapes sequences live beside the checkout")
    chosen = set(range(len(ROWS)))
    if args.rows:
        if not all(1 <= r <= len(ROWS) for r in args.rows):
            raise SystemExit(f"--rows {args.rows}: rows are 1..{len(ROWS)}")
        chosen = {r - 1 for r in args.rows}
        chosen |= {REFERENCE_ROW.get(i, i - 1) for i in chosen if i}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    # Weights are read when a row starts: the shipped ones must not change while this runs.
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        coded = pool.map(_row, [(i, args.sequence, args.frames) for i in sorted(chosen)], chunksize=1)
    curves = dict(zip(sorted(chosen), coded, strict=True))
    wall = time.perf_counter() - start
    lines = [f"`{args.sequence}`, {args.frames} frames at 1024x512 (GOP 30: one I-frame), {args.workers} rows at "
             f"a time, one torch thread each; wall {wall:.0f} s, load average {load:.1f} -> "
             f"{os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} cores. Each row's BD-rate is against the row above it (rows 9-13: against "
             "row 8); negative = fewer bits at equal quality.", "",
             "| row | overrides | BD-rate MS-SSIM | PSNR | flow consistency | bpp range | MS-SSIM range | "
             "vector bpp per P-frame | P-frame bpp |", "|---|---|---|---|---|---|---|---|---|"]
    for i, (name, overrides, curve) in curves.items():
        ref = REFERENCE_ROW.get(i, i - 1)
        bds = [_bd(curves[ref][2], curve, m) if i and ref in curves else "(reference)" for m in METRICS]
        lines.append(f"| {i + 1}. {name} | `{' '.join(overrides) or '(defaults)'}` | " + " | ".join(bds) + " | "
                     f"{min(p['bpp'] for p in curve):.4f} - {max(p['bpp'] for p in curve):.4f} | "
                     f"{min(p['msssim'] for p in curve):.4f} - {max(p['msssim'] for p in curve):.4f} | "
                     f"{np.mean([p['mv_bpp'] for p in curve]):.4f} | "
                     f"{min(p['p_bpp'] for p in curve):.4f} - {max(p['p_bpp'] for p in curve):.4f} |")
    lines += ["", "Points (bpp / PSNR / MS-SSIM / flow px):", ""]
    for name, _, curve in curves.values():
        lines.append(f"- {name}: " + "; ".join(f"{p['point']}: {p['bpp']:.4f} / {p['psnr']:.2f} / {p['msssim']:.4f}"
                                                f" / {p['flow_consistency']:.3f}" for p in curve))
    subset = f", rows {' '.join(str(i + 1) for i in sorted(chosen))}" if len(chosen) < len(ROWS) else ""
    append(f"Rate-distortion ablation: rnn_mc on {args.sequence}, {args.frames} frames{subset}", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
