"""Flow accuracy against ground truth: EPE and Fl-all of the block matcher, DIS and Farneback.

Data: the KITTI 2012 example pair beside the checkout (sparse GT, 1242x375, motions up to 184 px) and the
synthetic driving sample in data/sample (exact dense GT, 384x192; scored on all pixels and on the pixels
visible in the next frame).

    python -m bench.flow_accuracy
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from bench.results import append
from flow.dense import estimate_flow
from flow.io import read_flo, read_kitti_png
from flow.metrics import flow_metrics

REPO = Path(__file__).resolve().parent.parent
KITTI = REPO.parent / "shared" / "data" / "kitti_flow_example"
SAMPLE = REPO / "data" / "sample"
METHODS = [
    ("block B16 +-64", "block", {"block": 16, "search": 64}),
    ("block B8 +-64", "block", {"block": 8, "search": 64}),
    ("DIS ultrafast", "dis", {"preset": "ultrafast"}),
    ("DIS fast", "dis", {"preset": "fast"}),
    ("DIS medium", "dis", {"preset": "medium"}),
    ("Farneback", "farneback", {}),
]


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def sample_pairs() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(frame t, frame t+1, GT flow, visible mask) for every consecutive pair of the synthetic sample."""
    pairs = []
    for flo in sorted((SAMPLE / "flow").rglob("*_flow.flo")):
        rel = flo.relative_to(SAMPLE / "flow").parent
        stem = flo.name.removesuffix("_flow.flo")
        city, seq, frame = stem.rsplit("_", 2)
        f0 = SAMPLE / "leftImg8bit_sequence" / rel / f"{stem}_leftImg8bit.png"
        f1 = SAMPLE / "leftImg8bit_sequence" / rel / f"{city}_{seq}_{int(frame) + 1:06d}_leftImg8bit.png"
        occ = SAMPLE / "occlusion" / rel / f"{stem}_occlusion.png"
        if f0.is_file() and f1.is_file():
            visible = cv2.imread(str(occ), cv2.IMREAD_GRAYSCALE) == 0 if occ.is_file() else None
            pairs.append((rgb(f0), rgb(f1), read_flo(flo), visible))
    return pairs


def main() -> None:
    cv2.setNumThreads(2)
    datasets = []
    if (KITTI / "flow_gt.png").is_file():
        gt, valid = read_kitti_png(KITTI / "flow_gt.png")
        kitti_pair = (rgb(KITTI / "frame1.png"), rgb(KITTI / "frame2.png"), gt, valid)
        datasets.append(("KITTI example (sparse GT)", [kitti_pair]))
    pairs = sample_pairs()
    if pairs:
        all_pixels = [(a, b, g, None) for a, b, g, _ in pairs]
        datasets.append((f"synthetic sample, all pixels ({len(pairs)} pairs)", all_pixels))
        if all(v is not None for *_, v in pairs):
            datasets.append((f"synthetic sample, visible pixels ({len(pairs)} pairs)", pairs))
    lines = ["| data | method | EPE (px) | Fl-all (%) | AE (deg) | <1 px | <3 px | ms per pair |",
             "|---|---|---|---|---|---|---|---|"]
    for name, data in datasets:
        for label, method, options in METHODS:
            ms, stats = [], []
            for a, b, gt, valid in data:
                t0 = time.perf_counter()
                flow = estimate_flow(a, b, method, **options)
                ms.append(1000 * (time.perf_counter() - t0))
                stats.append(flow_metrics(flow, gt, valid))
            # pixel-weighted mean over pairs
            w = np.array([s["valid_pixels"] for s in stats], float)
            mean = {k: float(np.average([s[k] for s in stats], weights=w))
                    for k in ("epe", "fl_all", "angular_error_deg", "within_1px", "within_3px")}
            lines.append(f"| {name} | {label} | {mean['epe']:.2f} | {mean['fl_all']:.1f} | "
                         f"{mean['angular_error_deg']:.1f} | {mean['within_1px']:.2f} | {mean['within_3px']:.2f} | "
                         f"{np.median(ms):.0f} |")
            print(lines[-1], flush=True)
    gt_stats = ""
    if (KITTI / "flow_gt.png").is_file():
        kitti_gt, kitti_valid = read_kitti_png(KITTI / "flow_gt.png")  # loop variables hold the last data set
        mag = np.linalg.norm(kitti_gt[kitti_valid], axis=-1)
        gt_stats = (f"KITTI GT: mean |flow| {mag.mean():.1f} px, {100 * (mag > 64).mean():.0f} % of valid pixels "
                    "move more than 64 px (beyond the block matcher's range). ")
    body = (gt_stats + "Block matcher: backward vectors of frame 1 against frame 2 (= forward flow), bilinearly "
            "upsampled from block centres. Fl-all: EPE > 3 px and > 5 % of |GT|. Means weighted by valid pixels.\n\n"
            + "\n".join(lines))
    append("Flow accuracy vs ground truth", body)


if __name__ == "__main__":
    main()
