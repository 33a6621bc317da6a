"""Bjontegaard-delta rate (BD-rate): the average rate difference between two RD curves at equal quality.

As in the common PCHIP implementations (e.g. the ``bjontegaard`` package's ``method="pchip"``, which
replaced VCEG-M33's cubic polynomial fit because it overshoots): log-rate is interpolated as a
function of quality with a monotone piecewise-cubic Hermite interpolant (Fritsch-Carlson slopes, as
``scipy.interpolate.PchipInterpolator``), integrated exactly over the overlapping quality range, and
the mean log-rate gap is turned into a percentage. scipy is not a dependency, so PCHIP is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BDRateError(ValueError):
    """Two curves that have no BD-rate: too few points, repeated quality values, or no overlap."""


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson derivatives at the knots (SciPy's PchipInterpolator rule). x strictly increasing, (N,)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    if len(x) == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros_like(y)
    # Interior: weighted harmonic mean of the neighbouring secants, zero at local extrema (keeps it monotone).
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = (np.sign(delta[:-1]) * np.sign(delta[1:])) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same_sign, harmonic, 0.0)
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """One-sided three-point estimate, clipped so the end segment stays shape-preserving."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return d


def pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] (inside [x[0], x[-1]]) of the PCHIP interpolant through (x, y)."""
    d = pchip_slopes(x, y)
    h = np.diff(x)
    delta = np.diff(y) / h
    # Each segment as a cubic in s = t - x[k]: y + d s + c2 s^2 + c3 s^3.
    c2 = (3 * delta - 2 * d[:-1] - d[1:]) / h
    c3 = (d[:-1] + d[1:] - 2 * delta) / h**2

    def antiderivative(t: float) -> float:
        k = int(np.clip(np.searchsorted(x, t, side="right") - 1, 0, len(h) - 1))
        s = t - x[k]
        whole = np.sum(h[:k] * (y[:k] + y[1 : k + 1]) / 2 + h[:k] ** 2 * (d[:k] - d[1 : k + 1]) / 12)
        return float(whole + y[k] * s + d[k] * s**2 / 2 + c2[k] * s**3 / 3 + c3[k] * s**4 / 4)

    return antiderivative(hi) - antiderivative(lo)


def bd_rate(rate_ref: Sequence[float], quality_ref: Sequence[float],
            rate_test: Sequence[float], quality_test: Sequence[float]) -> float:
    """Average rate change of the test curve against the reference at equal quality, in percent.

    Negative means the test codec needs fewer bits. Quality must grow as it gets better (pass the negative
    of a lower-is-better metric). Raises :class:`BDRateError` when either curve has fewer than 2 finite
    points or repeated qualities, or when the quality ranges do not overlap.
    """
    curves = [_curve(rate_ref, quality_ref, "reference"), _curve(rate_test, quality_test, "test")]
    (q_ref, lr_ref), (q_test, lr_test) = curves
    lo, hi = max(q_ref[0], q_test[0]), min(q_ref[-1], q_test[-1])
    if not lo < hi:
        raise BDRateError(f"quality ranges do not overlap: reference [{q_ref[0]:.4g}, {q_ref[-1]:.4g}], "
                          f"test [{q_test[0]:.4g}, {q_test[-1]:.4g}]")
    mean_gap = (pchip_integral(q_test, lr_test, lo, hi) - pchip_integral(q_ref, lr_ref, lo, hi)) / (hi - lo)
    return float((np.exp(mean_gap) - 1) * 100)


def _curve(rate: Sequence[float], quality: Sequence[float], which: str) -> tuple[np.ndarray, np.ndarray]:
    """(quality ascending, log rate) of the finite points of one curve."""
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
    return q, np.log(r)


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
