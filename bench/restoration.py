"""Restoration around standard codecs (issue 16): BD-rates of each ``X+rec`` and ``comcnn_X`` against ``X``.

    python -m bench.restoration [--sequence seq0003] [--frames 30] [key=value ...]

Runs ``python -m pipeline evaluate`` on one shared Cityscapes sequence that no filter's training read
(seq0003) at 1024x512 with JPEG (QF 5-90), x264, their filtered rows and Jiang et al.'s ComCNN/RecCNN system
around each (``key=value`` overrides go to evaluate, e.g. another ``eval.compare``), then reports per pair the
BD-rate on PSNR, MS-SSIM and flow consistency, the PSNR gain at equal bits per point (a post-filter adds no bits;
comcnn_jpeg is compared with JPEG's PSNR interpolated at its bpp), and each net's time per 1024x512 frame at 1
and 2 torch threads. The HTML report with every row lands in ``outputs/bench_restoration/``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from bench.eval_cityscapes import DATA, _pct
from bench.results import append, fresh_run_dir
from codec.restoration import load_restoration, restore
from pipeline.cli import main as cli_main
from pipeline.evaluation.bjontegaard import BDRateError, bd_rate
from pipeline.paths import REPO_DIR

METRICS = {"psnr": 1, "msssim": 1, "flow_consistency": -1}


def filter_ms(stem: str, threads: int) -> float:
    """Median ms to restore one 1024x512 frame."""
    net, _ = load_restoration(stem)
    frame = np.random.default_rng(0).integers(0, 256, (512, 1024, 3), dtype=np.uint8)
    torch.set_num_threads(threads)
    cond = np.zeros((net.config.cond, 1, 1), np.float32)
    restore(net, frame, cond)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        restore(net, frame, cond)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default="seq0003")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not (DATA / args.sequence).is_dir():
        raise SystemExit(f"{DATA / args.sequence} not found: the shared Cityscapes sequences live beside the checkout")
    out_dir = fresh_run_dir(REPO_DIR / "outputs" / "bench_restoration")
    load = os.getloadavg()[0]
    rc = cli_main(["evaluate", "dataset=folder", f"dataset.root={DATA / args.sequence}", "dataset.resize=1024x512",
                   f"eval.max_frames={args.frames}",
                   "eval.compare=[jpeg,jpeg+rec,x264,x264+rec,comcnn_jpeg,comcnn_x264]",
                   "eval.codecs.jpeg.qualities=[5,10,15,20,30,50,75,90]", f"hydra.run.dir={out_dir}",
                   *args.overrides])
    if rc:
        return rc
    doc = json.loads((out_dir / "results.json").read_text())
    curves = doc["curves"]
    lines = [f"`{args.sequence}` (no filter's training read it), {args.frames} frames at 1024x512; "
             f"Load average {load:.1f} -> "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
             f"Report: `{out_dir.relative_to(REPO_DIR)}/report.html`.",
             "", "BD-rate of the filtered codec against the same codec (negative = fewer bits at equal quality):", "",
             "| pair | PSNR | MS-SSIM | flow consistency | filter ms/frame, 1 thread | 2 threads |",
             "|---|---|---|---|---|---|"]
    pairs = {name: name.removesuffix("+rec") for name in curves if name.endswith("+rec")}
    pairs.update({name: name.removeprefix("comcnn_") for name in curves if name.startswith("comcnn_")})
    for name, base in pairs.items():
        bds = []
        for metric, sign in METRICS.items():
            try:
                bds.append(_pct(bd_rate([p["bpp"] for p in curves[base]], [sign * p[metric] for p in curves[base]],
                                        [p["bpp"] for p in curves[name]], [sign * p[metric] for p in curves[name]])))
            except BDRateError as err:
                bds.append(f"n/a ({err})")
        if name.endswith("+rec"):
            stem = str(REPO_DIR / "codec" / "weights" / f"restore_{base}")
            speed = f"{filter_ms(stem, 1):.0f} | {filter_ms(stem, 2):.0f}"
        else:  # ComCNN + RecCNN: their time is in the report's encode / decode columns
            speed = "see report | see report"
        lines.append(f"| {name} vs {base} | {' | '.join(bds)} | {speed} |")
    lines += ["", "Per point (same bits with and without the filter):", "",
              "| codec | point | bpp | PSNR dB | +rec PSNR dB | gain dB | MS-SSIM | +rec MS-SSIM | flow px | "
              "+rec flow px |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, base in pairs.items():
        if not name.endswith("+rec"):
            continue
        for plain, filtered in zip(curves[base], curves[name], strict=True):
            lines.append(f"| {base} | {plain['point']} | {plain['bpp']:.4f} | {plain['psnr']:.2f} | "
                         f"{filtered['psnr']:.2f} | {filtered['psnr'] - plain['psnr']:+.2f} | {plain['msssim']:.4f} | "
                         f"{filtered['msssim']:.4f} | {plain['flow_consistency']:.3f} | "
                         f"{filtered['flow_consistency']:.3f} |")
    if "comcnn_jpeg" in curves:
        jpeg = sorted(curves["jpeg"], key=lambda p: p["bpp"])
        lines += ["", "comcnn_jpeg against JPEG at its bpp (JPEG's PSNR interpolated in log bpp):", "",
                  "| JPEG QF inside | bpp | PSNR dB | JPEG PSNR dB at that bpp | gain dB |", "|---|---|---|---|---|"]
        for p in curves["comcnn_jpeg"]:
            ref = float(np.interp(np.log(p["bpp"]), [np.log(q["bpp"]) for q in jpeg], [q["psnr"] for q in jpeg],
                                  left=np.nan, right=np.nan))
            lines.append(f"| {p['point']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {ref:.2f} | {p['psnr'] - ref:+.2f} |")
    append(f"Restoration around JPEG and x264 (post-filters, ComCNN/RecCNN), {args.sequence}", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
