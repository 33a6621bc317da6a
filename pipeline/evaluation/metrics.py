"""Scores of one coded sequence: rate, PSNR, MS-SSIM, flow metrics and timing; and the noise floor.

Conventions (stated in the report too): bpp = payload bits / (W * H) per frame, averaged over frames;
PSNR over the RGB channels of 8-bit frames, per frame then averaged, capped at 100 dB for identical
frames; MS-SSIM as pytorch-msssim computes it (5 Wang scales, 11x11 Gaussian window, data_range 255),
per frame then averaged. It needs a smaller side over 160 px; for smaller frames it is NaN (null in JSON)
rather than a number from a different, fewer-scale metric (the real evaluation runs at 1024x512). The
flow metrics are callables from config, given the original and the decoded frames of the whole sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import cv2
import numpy as np

from pipeline.evaluation.codecs import CodedSequence
from pipeline.image_quality import msssim, psnr

FlowMetric = Callable[[list[np.ndarray], list[np.ndarray]], float]

LABELS = {"sequence", "codec", "point", "variant"}  # row keys that name rather than measure


def score_frames(original: list[np.ndarray], decoded: list[np.ndarray], bits: list[int] | None,
                 flow_metrics: Mapping[str, FlowMetric]) -> dict[str, float]:
    """Quality (and rate when ``bits`` is given) of decoded frames, averaged over the sequence."""
    h, w = original[0].shape[:2]
    row: dict[str, float] = {"frames": len(original)}
    if bits is not None:
        row["bits"] = float(sum(bits))
        row["bpp"] = float(np.mean([b / (w * h) for b in bits]))
    row["psnr"] = float(np.mean([psnr(o, d) for o, d in zip(original, decoded, strict=True)]))
    row["msssim"] = float(np.mean([msssim(o, d) for o, d in zip(original, decoded, strict=True)]))
    for name, metric in flow_metrics.items():
        row[name] = float(metric(original, decoded))
    return row


def score(original: list[np.ndarray], coded: CodedSequence, flow_metrics: Mapping[str, FlowMetric]) -> dict:
    """:func:`score_frames` plus encode/decode seconds per frame."""
    row = score_frames(original, coded.decoded, coded.bits, flow_metrics)
    row["encode_s_per_frame"] = coded.encode_seconds / len(original)
    row["decode_s_per_frame"] = coded.decode_seconds / len(original)
    return row


def average(rows: list[dict]) -> dict[str, float]:
    """Frame-weighted mean of per-sequence rows (same keys; labels such as ``codec`` are left out), bits summed.

    NaN stays NaN so gaps show.
    """
    frames = np.array([r["frames"] for r in rows], dtype=np.float64)
    out: dict[str, float] = {"frames": float(frames.sum()), "sequences": float(len(rows))}
    for key in rows[0]:
        if key in out or key in LABELS:
            continue
        values = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = float(values.sum()) if key == "bits" else float(np.sum(values * frames) / frames.sum())
    return out


def noise_floor_variants(frames: list[np.ndarray],
                         seed: int = 0) -> dict[str, tuple[list[np.ndarray], list[int] | None]]:
    """Near-perfect copies of ``frames`` that show what "no loss" looks like to each metric.

    Returns name -> (frames, bits per frame, or None where nothing is coded).
    """
    rng = np.random.default_rng(seed)
    noisy = [np.clip(f.astype(np.int16) + rng.integers(-1, 2, f.shape), 0, 255).astype(np.uint8) for f in frames]
    jpeg, jpeg_bits = [], []
    for f in frames:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
        if not ok:
            raise ValueError(f"noise floor: OpenCV could not encode a {f.shape} frame as JPEG")
        jpeg.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        jpeg_bits.append(8 * buf.size)
    return {"lossless copy": ([f.copy() for f in frames], None), "+-1 LSB noise": (noisy, None),
            "JPEG q100": (jpeg, jpeg_bits)}
