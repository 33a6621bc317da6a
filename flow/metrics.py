"""Flow accuracy (EPE, KITTI Fl-all, angular error), the temporal warping error of a video (Lai et al.
2018) and the flow consistency of a decoded video against its originals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from flow.dense import estimate_flow
from flow.occlusion import occlusion_mask
from flow.warp import check_flow, warp

FL_EPE = 3.0  # KITTI outlier: EPE > 3 px and > 5 % of the ground-truth magnitude
FL_RELATIVE = 0.05
# Farneback window of the flow-consistency score: the largest window measured (bench/RESULTS.md,
# "Flow-consistency score") keeps the noise floor lowest; 25 is as good at 0.5 scale and faster.
CONSISTENCY_FARNEBACK = {"winsize": 25}


def _valid(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    flow, gt = check_flow(flow, "estimated flow"), check_flow(gt, "ground-truth flow")
    if flow.shape != gt.shape:
        raise ValueError(f"estimated flow is {flow.shape[1]}x{flow.shape[0]} but the ground truth is "
                         f"{gt.shape[1]}x{gt.shape[0]}")
    mask = np.isfinite(gt).all(-1) if valid is None else np.asarray(valid, bool) & np.isfinite(gt).all(-1)
    if mask.shape != flow.shape[:2]:
        raise ValueError(f"valid mask {mask.shape} does not match the flow {flow.shape[:2]}")
    if not mask.any():
        raise ValueError("no valid ground-truth pixels to evaluate")
    return mask


def endpoint_error(flow: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(H, W) Euclidean distance between two (H, W, 2) flows, in pixels."""
    return np.linalg.norm(check_flow(flow) - check_flow(gt), axis=-1)


def epe(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean end-point error over valid pixels (px)."""
    mask = _valid(flow, gt, valid)
    return float(endpoint_error(flow, gt)[mask].mean())


def fl_all(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """KITTI Fl-all: percentage of valid pixels with EPE > 3 px and > 5 % of |gt|."""
    mask = _valid(flow, gt, valid)
    err = endpoint_error(flow, gt)[mask]
    magnitude = np.linalg.norm(gt, axis=-1)[mask]
    return float(100.0 * ((err > FL_EPE) & (err > FL_RELATIVE * magnitude)).mean())


def angular_error(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean angle (degrees) between the space-time vectors (u, v, 1) of flow and gt (Barron et al. 1994)."""
    mask = _valid(flow, gt, valid)
    f, g = flow[mask].astype(np.float64), gt[mask].astype(np.float64)
    dot = 1.0 + (f * g).sum(-1)
    norms = np.sqrt(1.0 + (f**2).sum(-1)) * np.sqrt(1.0 + (g**2).sum(-1))
    return float(np.degrees(np.arccos(np.clip(dot / norms, -1.0, 1.0))).mean())


def flow_metrics(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """EPE, Fl-all (%), angular error (deg) and the fractions of pixels within 1, 3, 5 px."""
    mask = _valid(flow, gt, valid)
    err = endpoint_error(flow, gt)[mask]
    return {
        "epe": float(err.mean()),
        "fl_all": fl_all(flow, gt, mask),
        "angular_error_deg": angular_error(flow, gt, mask),
        "within_1px": float((err < 1).mean()),
        "within_3px": float((err < 3).mean()),
        "within_5px": float((err < 5).mean()),
        "valid_pixels": int(mask.sum()),
    }


def temporal_warping_error(frames: Sequence[np.ndarray], flows: Sequence[np.ndarray],
                           masks: Sequence[np.ndarray] | None = None) -> float:
    """Lai et al. 2018: mean over pairs of sum M (W(O_t+1, F_t->t+1) - O_t)^2 / sum M, pixels in [0, 1].

    frames: T uint8 (H, W, 3) frames of the processed (e.g. decoded) video; flows: T-1 forward flows
    (H, W, 2) computed on the *original* video; masks: T-1 (H, W) bool reliable-pixel masks (default all).
    """
    if len(frames) < 2 or len(flows) != len(frames) - 1:
        raise ValueError(f"need T >= 2 frames and T-1 flows, got {len(frames)} frames and {len(flows)} flows")
    if masks is not None and len(masks) != len(flows):
        raise ValueError(f"got {len(masks)} masks for {len(flows)} flows")
    errors = []
    for t, flow in enumerate(flows):
        prev = frames[t].astype(np.float32) / 255.0
        warped = warp(frames[t + 1].astype(np.float32) / 255.0, flow)
        mask = np.ones(flow.shape[:2], bool) if masks is None else np.asarray(masks[t], bool)
        if not mask.any():
            continue
        sq = ((warped - prev) ** 2).reshape(*mask.shape, -1).mean(-1)  # mean over colour channels
        errors.append(float(sq[mask].sum() / mask.sum()))
    if not errors:
        raise ValueError("every pair's mask is empty: no reliable pixels to score")
    return float(np.mean(errors))


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frame
    h, w = frame.shape[:2]
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def flow_consistency(original_frames: Sequence[np.ndarray], decoded_frames: Sequence[np.ndarray],
                     method: str = "farneback", preset: str = "medium", scale: float = 0.5, mask: str = "fb",
                     **options: Any) -> dict[str, Any]:
    """How well a decoded video keeps the motion of the original.

    For each consecutive pair, the forward flow is estimated on the decoded frames and on the originals
    (``method``, with ``preset`` for DIS or cv2 ``options`` for Farneback, default window 25, at ``scale``
    times the frame size) and compared by end-point error over the originals' reliable pixels: ``mask`` =
    "fb" (forward-backward occlusion test on the originals) or "none". EPE is reported in
    *full-resolution* pixels (divided by ``scale``). The defaults (Farneback, 0.5, fb) were chosen for the
    widest codec separation over the noise floor; DIS flips between solutions on +-1 LSB noise.

    original_frames, decoded_frames: equal-length sequences of uint8 (H, W, 3) frames of one size.
    Returns {"epe", "fl_all", "reliable_fraction", "pairs", and the settings}.
    """
    if len(original_frames) != len(decoded_frames):
        raise ValueError(f"{len(original_frames)} original frames but {len(decoded_frames)} decoded frames")
    if len(original_frames) < 2:
        raise ValueError("flow consistency needs at least two frames")
    if mask not in ("fb", "none"):
        raise ValueError(f"mask {mask!r} is unknown; expected 'fb' or 'none'")
    if not 0 < scale <= 1:
        raise ValueError(f"scale {scale} must be in (0, 1]")
    if method == "dis":
        kwargs = {"preset": preset, **options}
    elif method == "farneback":
        kwargs = {**CONSISTENCY_FARNEBACK, **options}
    else:
        kwargs = dict(options)
    originals = [_resize(f, scale) for f in original_frames]
    decoded = [_resize(f, scale) for f in decoded_frames]
    for i, (o, d) in enumerate(zip(originals, decoded, strict=True)):
        if o.shape != d.shape:
            raise ValueError(f"frame {i}: original {o.shape} and decoded {d.shape} differ in size")
    sum_err, sum_out, n_reliable, n_total = 0.0, 0, 0, 0
    for t in range(len(originals) - 1):
        ref_flow = estimate_flow(originals[t], originals[t + 1], method, **kwargs)
        dec_flow = estimate_flow(decoded[t], decoded[t + 1], method, **kwargs)
        if mask == "fb":
            back = estimate_flow(originals[t + 1], originals[t], method, **kwargs)
            reliable = occlusion_mask(ref_flow, back)
        else:
            reliable = np.ones(ref_flow.shape[:2], bool)
        err = endpoint_error(dec_flow, ref_flow)[reliable] / scale
        magnitude = np.linalg.norm(ref_flow, axis=-1)[reliable] / scale
        sum_err += float(err.sum())
        sum_out += int(((err > FL_EPE) & (err > FL_RELATIVE * magnitude)).sum())
        n_reliable += int(reliable.sum())
        n_total += reliable.size
    if n_reliable == 0:
        raise ValueError("no reliable pixels in any pair: the originals' flow fails the occlusion test everywhere")
    return {"epe": sum_err / n_reliable, "fl_all": 100.0 * sum_out / n_reliable,
            "reliable_fraction": n_reliable / n_total, "pairs": len(originals) - 1,
            "method": method, "options": kwargs, "scale": scale, "mask": mask}
