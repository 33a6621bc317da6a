"""Bits saved by motion compensation: mode=mc against mode=intra and mode=diff on the Cityscapes sequences.

    python -m bench.video_modes [--sequences 5] [--frames 10] [--size 1024x512] [key=value ...]

Codes the shared sequences with our three modes over the same rate sweep (``eval.codecs.rnn_*``),
then reports Bjontegaard-delta rates between the modes at equal MS-SSIM, PSNR and flow consistency.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from omegaconf import OmegaConf

from bench.results import append, fresh_run_dir, run_shape
from pipeline.cli import main as cli_main
from pipeline.evaluation.bjontegaard import BDRateError, bd_rate
from pipeline.paths import REPO_DIR

DATA = REPO_DIR.parent / "shared" / "data" / "cityscapes_sequence"
PAIRS = [("rnn_mc", "rnn_intra"), ("rnn_mc", "rnn_diff"), ("rnn_diff", "rnn_intra")]
METRICS = {"msssim": "higher", "psnr": "higher", "flow_consistency": "lower"}


def delta(curves: dict, test: str, reference: str, metric: str) -> str:
    ref, tst = curves[reference], curves[test]
    sign = 1.0 if METRICS[metric] == "higher" else -1.0
    try:
        value = bd_rate([p["bpp"] for p in ref], [sign * p[metric] for p in ref],
                        [p["bpp"] for p in tst], [sign * p[metric] for p in tst])
    except BDRateError as err:
        return f"n/a ({err})"
    return f"{value:+.1f} %" if math.isfinite(value) else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=5)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", default="1024x512")
    parser.add_argument("--results", type=Path, help="reuse an evaluation's results.json that has all three modes")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for `python -m pipeline evaluate`")
    args = parser.parse_args()
    if args.results:
        out_dir, load = args.results.resolve().parent, os.getloadavg()[0]
        source = f"modes taken from the evaluation run `{out_dir.relative_to(REPO_DIR)}` (see its RESULTS section)"
    else:
        if not DATA.is_dir():
            raise SystemExit(f"{DATA} not found: the shared Cityscapes sequences live beside the checkout")
        out_dir = fresh_run_dir(REPO_DIR / "outputs" / "bench_video_modes")
        load = os.getloadavg()[0]
        start = time.perf_counter()
        rc = cli_main(["evaluate", "dataset=folder", f"dataset.root={DATA}", f"dataset.resize={args.size}",
                       f"dataset.max_sequences={args.sequences}", f"eval.max_frames={args.frames}",
                       "eval.compare=[rnn_intra,rnn_diff,rnn_mc]", "eval.reference=rnn_intra",
                       "eval.intra_reference=rnn_intra", f"hydra.run.dir={out_dir}", *args.overrides])
        wall = time.perf_counter() - start
        if rc:
            return rc
        source = (f"{args.sequences} sequences x {args.frames} frames of `{DATA.name}` at {args.size}. Wall "
                  f"{wall:.0f} s; load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    doc = json.loads((out_dir / "results.json").read_text())
    curves = doc["curves"]
    sequences, frames = run_shape(doc)
    cfg = OmegaConf.load(out_dir / ".hydra" / "config.yaml")
    setting = doc["rate_setting"]["rnn_mc"]
    lines = [f"{source}. GOP {cfg.gop}, rate.mode={cfg.rate.mode} over the {setting} points below. "
             f"Report: `{out_dir.relative_to(REPO_DIR)}/report.html`.", "",
             "BD-rate (negative = fewer bits for the same quality):", "",
             "| test vs reference | MS-SSIM | PSNR | flow consistency |", "|---|---|---|---|"]
    for test, reference in PAIRS:
        lines.append(f"| {test} vs {reference} | " + " | ".join(delta(curves, test, reference, m) for m in METRICS)
                     + " |")
    lines += ["", f"| mode | {setting} | bpp | PSNR dB | MS-SSIM | flow px | encode s/frame | decode s/frame |",
              "|---|---|---|---|---|---|---|---|"]
    for name in ("rnn_intra", "rnn_diff", "rnn_mc"):
        for p in curves[name]:
            lines.append(f"| {name} | {p['point']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['msssim']:.4f} | "
                         f"{p['flow_consistency']:.3f} | {p['encode_s_per_frame']:.2f} | "
                         f"{p['decode_s_per_frame']:.2f} |")
    # The run shape is in the title: RESULTS keeps the latest run of each shape.
    append(f"Video coder: motion compensation against intra and frame difference, {sequences} sequences x "
           f"{frames} frames", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
