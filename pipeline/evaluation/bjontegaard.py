"""Bjontegaard-delta rate (BD-rate): the average rate difference between two RD curves at equal quality.

Computed by the maintained ``bjontegaard`` package with ``method="pchip"`` (log-rate interpolated over
quality by a monotone piecewise-cubic Hermite interpolant and integrated over the overlapping quality range;
it replaced VCEG-M33's cubic fit, which overshoots). This module checks the curves first, so a curve that
has no BD-rate gets a reason instead of a NaN or an assertion, and turns whole RD tables into BD-rate tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import bjontegaard
import numpy as np


class BDRateError(ValueError):
    """Two curves that have no BD-rate: too few points, repeated quality values, or no overlap."""


def bd_rate(rate_ref: Sequence[float], quality_ref: Sequence[float],
            rate_test: Sequence[float], quality_test: Sequence[float]) -> float:
    """Average rate change of the test curve against the reference at equal quality, in percent.

    Negative means the test codec needs fewer bits. Quality must grow as it gets better (pass the negative
    of a lower-is-better metric). Raises :class:`BDRateError` when either curve has fewer than 2 finite
    points or repeated qualities, or when the quality ranges do not overlap.
    """
    curves = [_curve(rate_ref, quality_ref, "reference"), _curve(rate_test, quality_test, "test")]
    (q_ref, r_ref), (q_test, r_test) = curves
    lo, hi = max(q_ref[0], q_test[0]), min(q_ref[-1], q_test[-1])
    if not lo < hi:
        raise BDRateError(f"quality ranges do not overlap: reference [{q_ref[0]:.4g}, {q_ref[-1]:.4g}], "
                          f"test [{q_test[0]:.4g}, {q_test[-1]:.4g}]")
    # min_overlap=0: the overlap was checked above; a partial one is the normal case between codec families.
    return float(bjontegaard.bd_rate(r_ref, q_ref, r_test, q_test, method="pchip",
                                     require_matching_points=False, min_overlap=0))


def _curve(rate: Sequence[float], quality: Sequence[float], which: str) -> tuple[np.ndarray, np.ndarray]:
    """(quality ascending, rate) of the finite points of one curve."""
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise BDRateError(f"{which} curve: {r.shape} rates but {q.shape} qualities; expected two equal 1-D lists")
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    if len(q) < 2:
        raise BDRateError(f"{which} curve: {len(q)} usable points (finite quality, rate > 0); need at least 2")
    order = np.argsort(q)
    q, r = q[order], r[order]
    if np.any(np.diff(q) <= 0):
        raise BDRateError(f"{which} curve: repeated quality values {q.tolist()}; PCHIP needs distinct qualities")
    return q, r


def bd_rate_table(curves: dict[str, list[dict]], reference: str, codecs: list[str],
                  metrics: dict[str, int]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, str]]]:
    """BD-rate (percent, NaN where undefined) of each codec against ``reference`` for each metric.

    ``curves`` maps codec -> points with ``bpp`` and the metrics; ``metrics`` maps a metric to +1 when
    higher is better or -1 when lower is better (its negative is then the quality axis). Returns the
    table and, for every NaN, the reason.
    """
    if reference not in curves:
        raise ValueError(f"BD-rate reference {reference!r} was not evaluated; evaluated codecs: {sorted(curves)}")
    table: dict[str, dict[str, float]] = {}
    notes: dict[str, dict[str, str]] = {}
    ref = curves[reference]
    for metric, sign in metrics.items():
        table[metric] = {}
        for codec in codecs:
            test = curves[codec]
            try:
                table[metric][codec] = bd_rate([p["bpp"] for p in ref], [sign * p.get(metric, np.nan) for p in ref],
                                               [p["bpp"] for p in test], [sign * p.get(metric, np.nan) for p in test])
            except BDRateError as err:
                table[metric][codec] = float("nan")
                notes.setdefault(metric, {})[codec] = str(err)
    return table, notes
