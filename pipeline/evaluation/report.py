"""The evaluation outputs: one self-contained ``report.html`` (images inline), ``results.json``, ``results.csv``.

Every file is written to a temporary name in the output directory and renamed, so a reader never sees
half a report.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from atomic import write_bytes
from pipeline.evaluation import plots
from pipeline.evaluation.bjontegaard import bd_rate_table
from pipeline.evaluation.sweep import Evaluation, Visual

# metric -> +1 if higher is better, -1 if lower is better (BD-rate then uses its negative as quality)
BD_METRICS = {"psnr": 1, "msssim": 1, "flow_consistency": -1}
CURVE_METRICS = ["psnr", "msssim", "flow_consistency", "temporal_warping_error"]
RESULTS_VERSION = 2  # 2: per-rate-point tables of our codecs ("rate_points") replace per-iteration ones


def results(evaluation: Evaluation, reference: str, intra_reference: str) -> dict[str, Any]:
    """The JSON document: curves, BD-rates against ``reference`` (all codecs) and ``intra_reference``
    (intra codecs; skipped when it was not evaluated), the noise floor, for our codecs (swept over a rate
    setting) their points by rate with the first whose flow consistency reaches the noise floor, and
    per-sequence rows. NaN becomes null."""
    curves = evaluation.curves
    names = list(curves)
    bd, notes = bd_rate_table(curves, reference, names, BD_METRICS)
    intra = [n for n, meta in evaluation.codecs.items() if meta["intra"]]
    ours = [n for n, meta in evaluation.codecs.items() if meta["point_name"].startswith("rate.")]
    # The flow "looks right" once it scores no worse than the worst near-lossless copy (the metric's noise).
    floor = max((r.get("flow_consistency", math.nan) for r in evaluation.noise_floor), default=math.nan)
    bd_intra, notes_intra = ({}, {})
    if intra_reference in curves:
        bd_intra, notes_intra = bd_rate_table(curves, intra_reference, intra, BD_METRICS)
    doc = {
        "version": RESULTS_VERSION,
        "frame_size": list(evaluation.frame_size),
        "codecs": evaluation.codecs,
        "curves": curves,
        "bd_rate_reference": reference,
        "bd_rate": bd,
        "bd_rate_notes": notes,
        "bd_rate_intra_reference": intra_reference,
        "bd_rate_intra": bd_intra,
        "bd_rate_intra_notes": notes_intra,
        "bd_rate_quality_axis": {m: ("metric" if s > 0 else "negative of the metric") for m, s in BD_METRICS.items()},
        "noise_floor": evaluation.noise_floor,
        "rate_points": {n: sorted(curves[n], key=lambda p: p["bpp"]) for n in ours},
        "rate_setting": {n: evaluation.codecs[n]["point_name"] for n in ours},
        "flow_floor": floor,
        "flow_right_at": {n: next((p["point"] for p in sorted(curves[n], key=lambda p: p["bpp"])
                                   if p.get("flow_consistency", math.inf) <= floor), None) for n in ours},
        "per_sequence": evaluation.rows,
    }
    return _json_safe(doc)


def write_report(evaluation: Evaluation, out_dir: str | Path, *, reference: str, intra_reference: str,
                 config_yaml: str, title: str = "drivecodec evaluation") -> dict[str, Path]:
    """Write report.html, results.json and results.csv into ``out_dir``; returns their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = results(evaluation, reference, intra_reference)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "html": out / "report.html"}
    write_bytes(paths["json"], json.dumps(doc, indent=1, allow_nan=False).encode())
    write_bytes(paths["csv"], _csv(doc).encode())
    write_bytes(paths["html"], _html(evaluation, doc, config_yaml, title).encode())
    return paths


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv(doc: dict) -> str:
    keys = ["codec", "point", "bpp", *CURVE_METRICS, "encode_s_per_frame", "decode_s_per_frame", "frames",
            "sequences"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for codec, points in doc["curves"].items():
        for p in points:
            writer.writerow({"codec": codec, **p})
    for row in doc["noise_floor"]:
        writer.writerow({"codec": f"noise floor: {row['variant']}", **row})
    return buf.getvalue()


# ---- HTML -------------------------------------------------------------------------------------------------

_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.strip{display:flex;flex-wrap:wrap;gap:6px}.strip img{width:256px;display:block}
.strip figure{margin:0;font-size:11px;text-align:center}
.plots{display:flex;flex-wrap:wrap}pre{background:#f6f6f6;padding:.8em;overflow:auto}.note{color:#555}"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _rgb_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {image.shape} picture as PNG for the report")
    return buf.tobytes()


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _bd_section(bd: dict, notes: dict, reference: str, what: str) -> str:
    if not bd:
        return ""
    codecs = list(next(iter(bd.values())))
    rows = [[c, *[bd[m].get(c) for m in bd]] for c in codecs]
    text = [f"<h3>BD-rate against {html.escape(reference)} ({what})</h3>",
            _table(["codec", *[f"{m} (%)" for m in bd]], rows)]
    reasons = [f"<li>{html.escape(m)} / {html.escape(c)}: {html.escape(r)}</li>"
               for m, per in notes.items() for c, r in per.items()]
    if reasons:
        text.append(f"<p class=note>n/a means:</p><ul class=note>{''.join(reasons)}</ul>")
    return "".join(text)


def _strip(label: str, visuals: list[Visual], original: Visual | None, point_name: str) -> str:
    figures = []
    items = ([("original", original)] if original else []) + [(f"{point_name} {v.point}, {v.bpp:.3g} bpp", v)
                                                              for v in visuals]
    for caption, v in items:
        figures.append(f"<figure>{_img(_rgb_png(v.image), f'{label} {caption}')}<br>"
                       f"{_img(_rgb_png(v.flow), f'{label} {caption} flow')}"
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f"<h3>{html.escape(label)}</h3><div class=strip>{''.join(figures)}</div>"


def _html(ev: Evaluation, doc: dict, config_yaml: str, title: str) -> str:
    curves, floor = doc["curves"], doc["noise_floor"]
    w, h = ev.frame_size
    seqs, frames = int(floor[0]["sequences"]), int(floor[0]["frames"])  # every codec saw all of them
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{seqs} sequence(s), {frames} frames at {w}x{h}; written "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}. bpp = payload bits / (W*H) per frame, averaged; "
             "PSNR over RGB (8-bit), per frame then averaged, capped at 100 dB; MS-SSIM (as pytorch-msssim: 5 scales, "
             "data_range 255) is n/a for frames under 161 px on the smaller side. Video baselines count encoder "
             "packets (no container; x264's version SEI removed), JPEG/WebP count whole files.</p>"]

    parts.append("<h2>Rate-distortion curves</h2><div class=plots>")
    for metric in CURVE_METRICS:
        if any(p.get(metric) is not None for pts in curves.values() for p in pts):
            parts.append(_img(plots.rd_curve(curves, metric, floor if metric.startswith(("flow", "temporal"))
                                             else None), f"bpp vs {metric}"))
    parts.append("</div>")

    parts.append("<h2>BD-rate</h2><p class=note>Negative: fewer bits than the reference for the same quality. "
                 "Flow consistency is lower-is-better, so its negative is the quality axis. "
                 "n/a where the curves do not overlap in quality or a curve has under 2 usable points.</p>")
    parts.append(_bd_section(doc["bd_rate"], doc["bd_rate_notes"], doc["bd_rate_reference"], "all codecs"))
    parts.append(_bd_section(doc["bd_rate_intra"], doc["bd_rate_intra_notes"], doc["bd_rate_intra_reference"],
                             "intra codecs"))

    parts.append("<h2>At which rate does the flow look right?</h2>")
    if doc["rate_points"]:
        parts.append(f"<p class=note>Flow looks right from the lowest rate whose flow consistency is at or below "
                     f"the noise floor ({_fmt(doc['flow_floor'])} px, the worst near-lossless copy below).</p>")
        for codec, pts in doc["rate_points"].items():
            right, setting = doc["flow_right_at"][codec], doc["rate_setting"][codec]
            verdict = "never, in this sweep" if right is None else f"from {setting} {right}"
            parts.append(f"<h3>{html.escape(codec)}: {html.escape(verdict)}</h3>" + _table(
                [setting, "bpp", "PSNR", "MS-SSIM", "flow consistency", "temporal warping error"],
                [[p["point"], p["bpp"], p["psnr"], p["msssim"], p.get("flow_consistency"),
                  p.get("temporal_warping_error")] for p in pts]))
        parts.append(_img(plots.per_rate(doc["rate_points"], "flow_consistency", floor),
                          "flow consistency per rate point"))
    else:
        parts.append("<p class=note>No codec in this run is swept over one of our rate settings.</p>")

    parts.append("<h2>Noise floor of the metrics</h2><p class=note>What a perfect or near-perfect copy scores: "
                 "differences smaller than these are noise of the flow estimator, not of the codec. The warping error "
                 "rewards temporal smoothness: a value below the lossless copy's means a smoother (blurrier) video "
                 "than the original, not a better one.</p>")
    parts.append(_table(["copy", "bpp", "PSNR", "MS-SSIM", "flow consistency", "temporal warping error"],
                        [[r["variant"], r.get("bpp"), r["psnr"], r["msssim"], r.get("flow_consistency"),
                          r.get("temporal_warping_error")] for r in floor]))

    parts.append("<h2>Timing</h2><p class=note>Wall-clock milliseconds per frame on this machine, "
                 "colour conversion included.</p>")
    parts.append(_table(["codec", "point", "bpp", "encode ms/frame", "decode ms/frame"],
                        [[c, p["point"], p["bpp"], 1000 * p["encode_s_per_frame"], 1000 * p["decode_s_per_frame"]]
                         for c, pts in curves.items() for p in pts]))

    parts.append(f"<h2>Pictures</h2><p class=note>Sequence {html.escape(ev.visual_sequence)}, frame "
                 f"{ev.visual_frame} (centre crop); under each picture its flow to the next frame (hue: direction, "
                 "saturation: speed, one scale for all, set by the original's 99th-percentile speed).</p>")
    for codec, visuals in ev.visuals.items():
        parts.append(_strip(codec, visuals, ev.original, ev.codecs[codec]["point_name"]))

    parts.append("<h2>All points</h2>")
    parts.append(_table(["codec", "point", "bpp", *CURVE_METRICS],
                        [[c, p["point"], p["bpp"], *[p.get(m) for m in CURVE_METRICS]]
                         for c, pts in curves.items() for p in pts]))
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_yaml)}</pre></body></html>")
    return "\n".join(parts)
