import numpy as np
import pytest
from test_flow_synthetic import shifted, textured

from flow.dense import estimate_flow
from flow.metrics import angular_error, epe, fl_all, flow_consistency, flow_metrics, temporal_warping_error
from flow.occlusion import occlusion_mask


def test_epe_fl_and_angle_on_known_fields() -> None:
    gt = np.zeros((2, 2, 2), np.float32)
    gt[..., 0] = 100
    est = gt.copy()
    est[0, 0, 0] += 3.0  # 3 px: not an outlier (needs > 3)
    est[0, 1, 0] += 4.0  # 4 px < 5 % of 100: not an outlier
    est[1, 0, 0] += 6.0  # 6 px > 5 px: outlier
    assert epe(est, gt) == pytest.approx((3 + 4 + 6) / 4)
    assert fl_all(est, gt) == pytest.approx(25.0)
    valid = np.array([[True, True], [False, True]])
    assert fl_all(est, gt, valid) == 0.0 and epe(est, gt, valid) == pytest.approx(7 / 3)
    a = np.zeros((1, 1, 2), np.float32)
    b = np.float32([[[1, 0]]])
    assert angular_error(b, a) == pytest.approx(45.0)
    metrics = flow_metrics(est, gt)
    assert metrics["within_5px"] == 0.75 and metrics["valid_pixels"] == 4


def test_metric_errors() -> None:
    with pytest.raises(ValueError, match="ground truth is 3x2"):
        epe(np.zeros((2, 2, 2)), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="no valid"):
        epe(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.zeros((2, 2), bool))


def test_occlusion_mask() -> None:
    fwd = np.zeros((32, 32, 2), np.float32)
    fwd[..., 0] = 2
    bwd = -fwd
    mask = occlusion_mask(fwd, bwd)
    assert mask[:, :30].all() and not mask[:, 30:].any()  # targets beyond the right edge
    bad = bwd.copy()
    bad[10:20, 10:20] = 5  # backward flow does not return
    mask = occlusion_mask(fwd, bad)
    assert not mask[12:17, 12:17].any() and mask[0:5, 0:5].all()
    with pytest.raises(ValueError, match="differ in size"):
        occlusion_mask(fwd, bwd[:-1])


def test_temporal_warping_error() -> None:
    a = textured(48, 64)
    b = shifted(a, 2, 0)  # b(x) = a(x - 2): flow a -> b is +2
    flow = np.zeros((48, 64, 2), np.float32)
    flow[..., 0] = 2
    mask = np.zeros((48, 64), bool)
    mask[:, 4:-4] = True
    assert temporal_warping_error([a, b], [flow], [mask]) < 1e-5
    assert temporal_warping_error([a, b], [flow * 0], [mask]) > 1e-3
    with pytest.raises(ValueError, match="T-1 flows"):
        temporal_warping_error([a, b], [flow, flow])


def test_dense_estimators_on_a_shift() -> None:
    a = textured(96, 128, seed=3)
    b = shifted(a, 3, -2)
    for method, options in (("dis", {"preset": "medium"}), ("farneback", {}), ("block", {"block": 16, "search": 8})):
        flow = estimate_flow(a, b, method, **options)
        assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
        assert np.median(np.linalg.norm(flow[16:-16, 16:-16] - [3, -2], axis=-1)) < 0.3, method
    with pytest.raises(ValueError, match="unknown"):
        estimate_flow(a, b, "raft")
    with pytest.raises(ValueError, match="preset"):
        estimate_flow(a, b, "dis", preset="slow")


def test_flow_consistency_is_zero_for_a_copy_and_grows_with_damage() -> None:
    frames = [textured(96, 128, seed=4)]
    frames.append(shifted(frames[0], 2.5, 1))
    frames.append(shifted(frames[0], 5, 2))
    copy = flow_consistency(frames, [f.copy() for f in frames], "farneback", scale=1.0)
    assert copy["epe"] == 0 and copy["pairs"] == 2 and 0.5 < copy["reliable_fraction"] <= 1
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 25, f.shape), 0, 255).astype(np.uint8) for f in frames]
    assert flow_consistency(frames, noisy, "farneback", scale=1.0)["epe"] > 0.05
    with pytest.raises(ValueError, match="decoded frames"):
        flow_consistency(frames, frames[:2])


def test_flow_consistency_with_the_configured_settings() -> None:
    from pathlib import Path

    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parent.parent / "conf" / "flow"
                                                     / "default.yaml").consistency)
    frames = [textured(64, 96, seed=5), shifted(textured(64, 96, seed=5), 2, 0)]
    result = flow_consistency(frames, [f.copy() for f in frames], **settings)
    assert result["epe"] == 0 and result["scale"] == settings["scale"] and result["options"]["winsize"] == 25
