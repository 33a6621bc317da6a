import math

import pytest

from pipeline.evaluation.bjontegaard import BDRateError, bd_rate, bd_rate_table

RATES = [0.05, 0.1, 0.2, 0.4]
PSNR = [30.0, 33.0, 35.5, 37.0]


def test_identical_curves_give_zero():
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_half_and_double_rate():
    assert bd_rate(RATES, PSNR, [r / 2 for r in RATES], PSNR) == pytest.approx(-50.0)
    assert bd_rate(RATES, PSNR, [r * 2 for r in RATES], PSNR) == pytest.approx(100.0)


def test_matches_scipy_pchip_on_the_bjontegaard_package_example():
    # Anchor/test data from the `bjontegaard` package README; 2.422148991901718 is what SciPy 1.17.1's
    # PchipInterpolator(...).integrate gave, in a scratch venv, for the hand-written PCHIP this module had before.
    anchor = ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 37.187, 35.575])
    test = ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.592, 36.990, 35.383])
    assert bd_rate(*anchor, *test) == pytest.approx(2.422148991901718, rel=1e-9)


def test_monotone_step_data_does_not_overshoot():
    # PCHIP keeps monotone data monotone: a curve that is half the reference's rate at every knot stays at
    # -50 % in between, where an overshooting cubic would not.
    quality = [30.0, 30.1, 36.0, 36.1]
    rate = [0.1, 0.1001, 0.4, 0.4001]
    assert bd_rate(rate, quality, [r / 2 for r in rate], quality) == pytest.approx(-50.0)


def test_non_overlapping_ranges_raise():
    with pytest.raises(BDRateError, match="do not overlap"):
        bd_rate(RATES, PSNR, RATES, [p + 10 for p in PSNR])


def test_degenerate_curves_raise():
    with pytest.raises(BDRateError, match="at least 2"):
        bd_rate(RATES, PSNR, [0.1], [33.0])
    with pytest.raises(BDRateError, match="repeated quality"):
        bd_rate(RATES, PSNR, [0.1, 0.2], [33.0, 33.0])


def test_table_handles_lower_is_better_metrics_and_reports_gaps():
    ref = [{"bpp": r, "psnr": p, "flow": 1.0 / r} for r, p in zip(RATES, PSNR, strict=True)]
    # Same PSNR at half the rate, and the same flow error at half the rate: both -50 %.
    better = [{"bpp": r / 2, "psnr": p, "flow": 1.0 / r} for r, p in zip(RATES, PSNR, strict=True)]
    apart = [{"bpp": r, "psnr": p + 20, "flow": 100.0 + r} for r, p in zip(RATES, PSNR, strict=True)]
    table, notes = bd_rate_table({"x264": ref, "ours": better, "far": apart}, "x264", ["x264", "ours", "far"],
                                 {"psnr": 1, "flow": -1})
    assert table["psnr"]["ours"] == pytest.approx(-50.0)
    assert table["flow"]["ours"] == pytest.approx(-50.0)
    assert table["psnr"]["x264"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(table["psnr"]["far"]) and "do not overlap" in notes["psnr"]["far"]
    with pytest.raises(ValueError, match="reference 'jpeg' was not evaluated"):
        bd_rate_table({"x264": ref}, "jpeg", ["x264"], {"psnr": 1})
