"""Noise floor and codec separation of the flow-consistency score on real Cityscapes sequences.

For each estimator / resolution / mask setting, scores (EPE between the flow of the originals and of
the degraded copies, over the originals' reliable pixels, in full-resolution px) for: a lossless copy,
a +-1 LSB noisy copy, JPEG q100, and JPEG q90 / q50 / q20. The floor is the worst of the first three;
a useful setting puts q90 < q50 < q20 well above it.

    python -m bench.flow_consistency_floor [--pairs 2] [--sequences 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from bench.results import append
from flow.dense import estimate_flow
from flow.metrics import FL_EPE, FL_RELATIVE, endpoint_error
from flow.occlusion import occlusion_mask

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cityscapes_sequence"
# (method, options, scale, Gaussian pre-blur sigma in px at the working scale)
SETTINGS = [("dis", {"preset": "fast"}, 1.0, 0), ("dis", {"preset": "medium"}, 1.0, 0),
            ("dis", {"preset": "fast"}, 0.5, 0), ("dis", {"preset": "medium"}, 0.5, 0),
            ("dis", {"preset": "medium"}, 0.5, 1.5), ("dis", {"preset": "medium"}, 0.25, 0),
            ("farneback", {"winsize": 15}, 1.0, 0), ("farneback", {"winsize": 15}, 0.5, 0),
            ("farneback", {"winsize": 15}, 0.5, 1.0), ("farneback", {"winsize": 25}, 0.5, 0),
            ("farneback", {"winsize": 35}, 0.5, 0), ("farneback", {"winsize": 45}, 0.5, 0),
            ("farneback", {"winsize": 25, "poly_n": 7, "poly_sigma": 1.5}, 0.5, 0),
            ("farneback", {"winsize": 15}, 0.25, 0), ("farneback", {"winsize": 35}, 0.25, 0)]
FLOOR = ("copy", "noise1", "jpeg100")
CODECS = (*FLOOR, "jpeg90", "jpeg50", "jpeg20")


def degrade(frame: np.ndarray, codec: str, rng: np.random.Generator) -> np.ndarray:
    if codec == "copy":
        return frame.copy()
    if codec == "noise1":
        noise = rng.integers(-1, 2, frame.shape)
        return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    quality = int(codec.removeprefix("jpeg"))
    ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def prepare(frame: np.ndarray, scale: float, blur: float) -> np.ndarray:
    if scale != 1:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(frame, (0, 0), blur) if blur else frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2, help="consecutive pairs per sequence")
    parser.add_argument("--sequences", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(2)
    rng = np.random.default_rng(0)
    seqs = sorted(p for p in DATA.iterdir() if p.is_dir())[: args.sequences]
    pairs = []
    for seq in seqs:
        files = sorted(seq.glob("*.jpg"))
        for i in range(args.pairs):
            a, b = (cv2.imread(str(f))[..., ::-1].copy() for f in files[10 + i : 12 + i])
            pairs.append((a, b, {c: (degrade(a, c, rng), degrade(b, c, rng)) for c in CODECS}))
    rows = []
    t_start = time.time()
    for method, kw, scale, blur in SETTINGS:
        acc = {(c, m): [0.0, 0, 0] for c in CODECS for m in ("none", "fb")}
        seconds = []
        for a, b, copies in pairs:
            small = [prepare(f, scale, blur) for f in (a, b)]
            t0 = time.perf_counter()
            fwd = estimate_flow(small[0], small[1], method, **kw)
            seconds.append(time.perf_counter() - t0)
            bwd = estimate_flow(small[1], small[0], method, **kw)
            masks = {"none": np.ones(fwd.shape[:2], bool), "fb": occlusion_mask(fwd, bwd)}
            for codec, (da, db) in copies.items():
                ds = [prepare(f, scale, blur) for f in (da, db)]
                err = endpoint_error(estimate_flow(ds[0], ds[1], method, **kw), fwd) / scale
                mag = np.linalg.norm(fwd, axis=-1) / scale
                for m, mask in masks.items():
                    e = err[mask]
                    acc[(codec, m)][0] += float(e.sum())
                    acc[(codec, m)][1] += int(((e > FL_EPE) & (e > FL_RELATIVE * mag[mask])).sum())
                    acc[(codec, m)][2] += int(mask.sum())
        for m in ("none", "fb"):
            score = {c: acc[(c, m)][0] / max(acc[(c, m)][2], 1) for c in CODECS}
            floor = max(score[c] for c in FLOOR)
            reliable = acc[("copy", m)][2] / (len(pairs) * fwd.shape[0] * fwd.shape[1])
            sep = score["jpeg50"] / max(floor, 1e-9)
            label = f"{method} {' '.join(f'{k}={v}' for k, v in kw.items())}"
            rows.append(f"| {label} | {scale:g} ({fwd.shape[1]}x{fwd.shape[0]}) | {blur:g} | {m} | "
                        f"{reliable:.2f} | " + " | ".join(f"{score[c]:.3f}" for c in CODECS)
                        + f" | {sep:.1f} | {np.mean(seconds) * 1000:.0f} |")
            print(rows[-1], flush=True)
    header = ("| estimator | scale (size) | blur | mask | reliable | " + " | ".join(CODECS)
              + " | q50 / floor | ms per flow |\n|" + "---|" * (len(CODECS) + 7))
    body = (f"{len(pairs)} consecutive pairs (frames 10-12 of {len(seqs)} Cityscapes sequences, 2048x1024). Score: "
            "mean EPE in full-resolution px between the flow of degraded copies and of the originals, over the "
            "originals' reliable pixels (mask fb: Ruder et al. forward-backward + motion-boundary test; none: all "
            "pixels); blur: Gaussian sigma (px at the working scale) applied to every frame before estimation. "
            "floor = max(copy, noise1 (+-1 LSB uniform), jpeg100); q50 / floor = separation.\n\n"
            f"{header}\n" + "\n".join(rows) + f"\n\nTotal {time.time() - t_start:.0f} s.")
    append("Flow-consistency score: noise floor and codec separation", body)


if __name__ == "__main__":
    main()
