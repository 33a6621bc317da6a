"""The evaluation report on the shared Cityscapes sequences at 1024x512, BD-rates appended to RESULTS.md.

    python -m bench.eval_cityscapes [--sequences 5] [--frames 30] [key=value ...]

Extra ``key=value`` arguments are Hydra overrides for ``python -m pipeline evaluate`` (e.g.
``'eval.compare=[jpeg,webp,x264,x265,av1,rnn_mc]'`` once our codec is configured). The report lands in
``outputs/bench_eval_cityscapes/TIMESTAMP/``; the section appended gives BD-rates against x264 (and JPEG for
intra codecs), per-codec timing, the wall time and the machine load.
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
from pipeline.paths import REPO_DIR

DATA = REPO_DIR.parent / "shared" / "data" / "cityscapes_sequence"
BUDGET_S = 20 * 60  # issue 6: the report at 1024x512 must run within 20 minutes here


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.1f} %"


def body(doc: dict, settings: str, wall_s: float, load: tuple[float, float], out_dir: Path, sequences: int,
         frames: int) -> str:
    """The markdown appended to RESULTS.md for one run's ``results.json``."""
    w, h = doc["frame_size"]
    lines = [f"{sequences} sequence(s) x {frames} frames of `{DATA.name}` at {w}x{h}; codecs "
             f"{', '.join(doc['curves'])}. Wall time {wall_s:.0f} s (budget {BUDGET_S} s: "
             f"{'within' if wall_s <= BUDGET_S else 'OVER'}). Load average before/after: {load[0]:.1f} / {load[1]:.1f} "
             f"on {os.cpu_count()} cores{' (busy machine: timings inflated)' if max(load) > 2.5 else ''}. "
             f"Report: `{out_dir}/report.html`.", "", settings, ""]
    for key, ref_key, what in (("bd_rate", "bd_rate_reference", "all codecs"),
                               ("bd_rate_intra", "bd_rate_intra_reference", "intra codecs")):
        table = doc[key]
        if not table or not next(iter(table.values())):
            continue
        metrics = list(table)
        lines += [f"BD-rate against {doc[ref_key]} ({what}; negative = fewer bits at equal quality; flow "
                  "consistency uses its negative as quality):", "",
                  "| codec | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for codec in table[metrics[0]]:
            lines.append(f"| {codec} | " + " | ".join(_pct(table[m][codec]) for m in metrics) + " |")
        notes = doc[f"{key}_notes"]
        lines += ["", *[f"- n/a {m}/{c}: {reason}" for m, per in notes.items() for c, reason in per.items()]]
        if notes:
            lines.append("")
    lines += ["| codec | points | bpp range | PSNR range (dB) | MS-SSIM range | flow consistency range (px) | "
              "encode ms/frame | decode ms/frame |", "|---|---|---|---|---|---|---|---|"]
    for codec, pts in doc["curves"].items():
        def span(key: str, fmt: str, pts: list = pts) -> str:
            vals = [p[key] for p in pts if p.get(key) is not None]
            return f"{min(vals):{fmt}} - {max(vals):{fmt}}" if vals else "n/a"
        enc = sum(p["encode_s_per_frame"] for p in pts) / len(pts) * 1000
        dec = sum(p["decode_s_per_frame"] for p in pts) / len(pts) * 1000
        lines.append(f"| {codec} | {', '.join(str(p['point']) for p in pts)} | {span('bpp', '.3f')} | "
                     f"{span('psnr', '.2f')} | {span('msssim', '.4f')} | {span('flow_consistency', '.3f')} | "
                     f"{enc:.1f} | {dec:.1f} |")
    lines += ["", "Noise floor (flow consistency px / temporal warping error): " + "; ".join(
        f"{r['variant']} {r.get('flow_consistency') or 0:.3f} / {r.get('temporal_warping_error') or 0:.2e}"
        for r in doc["noise_floor"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for `python -m pipeline evaluate`")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the shared Cityscapes sequences live beside the checkout")
    out_dir = fresh_run_dir(REPO_DIR / "outputs" / "bench_eval_cityscapes")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    rc = cli_main(["evaluate", "dataset=folder", f"dataset.root={DATA}", "dataset.resize=1024x512",
                   f"dataset.max_sequences={args.sequences}", f"eval.max_frames={args.frames}",
                   f"hydra.run.dir={out_dir}", *args.overrides])
    wall = time.perf_counter() - start
    if rc:
        return rc
    doc = json.loads((out_dir / "results.json").read_text())
    sequences, frames = run_shape(doc)
    cfg = OmegaConf.load(out_dir / ".hydra" / "config.yaml")
    settings = (f"Settings: GOP {cfg.gop}, x264/x265 preset {cfg.eval.preset}, SVT-AV1 preset "
                f"{cfg.eval.av1_preset}, no B-frames, no scene-cut I-frames; flow consistency and warping error "
                f"with `flow.consistency` = `{json.dumps(OmegaConf.to_container(cfg.flow.consistency))}`.")
    # The run shape is in the title: RESULTS keeps the latest run of each shape (a rerun replaces its section).
    append(f"Evaluation report: Cityscapes at 1024x512, {sequences} sequences x {frames} frames",
           body(doc, settings, wall, (load_before, os.getloadavg()[0]), out_dir.relative_to(REPO_DIR), sequences,
                frames))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
