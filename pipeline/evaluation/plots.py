"""Report figures as PNG bytes (matplotlib's Agg canvas, no pyplot state, so it runs headless)."""

from __future__ import annotations

import io
import itertools
import math

from matplotlib.figure import Figure

LABELS = {"psnr": "PSNR RGB (dB)", "msssim": "MS-SSIM", "msssim_db": "MS-SSIM (dB, -10 log10(1 - MS-SSIM))",
          "flow_consistency": "flow consistency (lower is better)",
          "temporal_warping_error": "temporal warping error (lower is better)"}


def rd_curve(curves: dict[str, list[dict]], metric: str, floor: list[dict] | None = None) -> bytes:
    """bpp (log axis) vs ``metric`` with one line per codec; dashed lines mark noise-floor values."""
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    for codec, points in curves.items():
        pts = sorted((p["bpp"], p.get(metric, math.nan)) for p in points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=codec)
    _floor_lines(ax, floor, metric)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def rd_panels(curves: dict[str, list[dict]], metrics: list[str]) -> bytes:
    """One panel per metric side by side: bpp (log axis) vs the metric, one line per curve."""
    fig = Figure(figsize=(5.2 * len(metrics), 4.4), dpi=100)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for label, points in curves.items():
            pts = sorted((p["bpp"], p.get(metric, math.nan)) for p in points)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(True, which="both", alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return _png(fig)


def per_rate(curves: dict[str, list[dict]], metric: str = "flow_consistency",
             floor: list[dict] | None = None) -> bytes:
    """``metric`` against bpp, one line per codec swept over one of our rate settings, with the noise floor."""
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    for codec, points in curves.items():
        ax.plot([p["bpp"] for p in points], [p.get(metric, math.nan) for p in points], marker="o", label=codec)
    _floor_lines(ax, floor, metric)
    ax.set_xlabel("bpp")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _floor_lines(ax, floor: list[dict] | None, metric: str) -> None:
    """Noise-floor values as grey lines named in the legend (labels on the lines overlap: the values lie close)."""
    styles = [(0, (4, 2)), (0, (1, 1)), (0, (6, 2, 1, 2)), (0, (2, 3))]
    for row, style in zip(floor or [], itertools.cycle(styles)):
        value = row.get(metric, math.nan)
        if math.isfinite(value):
            ax.axhline(value, linestyle=style, linewidth=0.9, color="grey", label=f"noise floor: {row['variant']}")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()
