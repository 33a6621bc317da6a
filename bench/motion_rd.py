"""Vector bits and prediction quality of the motion search, at the lambdas the coder runs (issue 14).

    python -m bench.motion_rd [--pairs 4] [--qualities 30,38,42,46]

On the 5 shared Cityscapes sequences at 1024x512 (the coding size), frame t is predicted from the original
frame t-1 (pairs spread over each sequence). Three searches, all coded with the shipped vector coder:
``fixed``, the search before rate-distortion decisions (``motion.bits_per_px=0 motion.regularise=0``, no
alternative block sizes: a fixed rate penalty ``lam``); ``rd, whole fields``, the frame's lambda sets the
penalty, smoothing, per-frame 32x32 fields and region merges (``motion.refine=0``); and ``rd``, the shipped
one, which also refines the field sent block by block (:mod:`flow.refine`). Per quality: vector bits per pixel,
prediction PSNR and the Lagrangian cost J = SSE + lambda x bits per pixel; then issue 14's measure, the searches'
vector bits at the fixed search's prediction PSNR (interpolated between the qualities around it).
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bench.rdo_ablation import DATA
from bench.results import append
from pipeline.image_quality import psnr
from pipeline.paths import CONF_DIR
from pipeline.video.rate import RateControl


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--qualities", default="30,38,42,46")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the shared Cityscapes sequences live beside the checkout")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        searches = {"fixed": instantiate(compose("config", ["motion.bits_per_px=0", "motion.regularise=0",
                                                            "motion.alternatives=[]", "motion.refine=0"]).motion),
                    "rd, whole fields": instantiate(compose("config", ["motion.refine=0"]).motion),
                    "rd": instantiate(compose("config").motion)}
    pairs = []
    for seq in sorted(p for p in DATA.iterdir() if p.is_dir()):
        files = sorted(seq.glob("*.jpg"))
        for s in np.linspace(1, len(files) - 1, args.pairs).round().astype(int):
            ref, cur = (cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (1024, 512),
                                   interpolation=cv2.INTER_AREA) for f in files[s - 1 : s + 1])
            pairs.append((ref, cur))
    load, start = os.getloadavg()[0], time.perf_counter()
    lines = ["| quality | lambda | search | vector bpp | prediction PSNR dB | J / pixel | estimate s/frame |",
             "|---|---|---|---|---|---|---|"]
    curves: dict[str, list[tuple[float, float]]] = {name: [] for name in searches}  # (PSNR, bpp) per quality
    for quality in (float(q) for q in args.qualities.split(",")):
        lam = RateControl(quality=quality).lagrangian("P")
        for name, motion in searches.items():
            bits, quality_db, cost, seconds = [], [], [], []
            for ref, cur in pairs:
                tic = time.perf_counter()
                mv = motion.estimate(cur, ref, None, lam)
                seconds.append(time.perf_counter() - tic)
                prediction = motion.compensate(ref, mv)
                data = motion.encode(mv, cur.shape)
                assert np.array_equal(motion.decode(data, cur.shape), mv)
                pixels = cur.shape[0] * cur.shape[1]
                bits.append(8 * len(data) / pixels)
                quality_db.append(psnr(cur, prediction))
                cost.append((np.square(prediction.astype(np.float64) - cur).sum() + lam * 8 * len(data)) / pixels)
            curves[name].append((float(np.mean(quality_db)), float(np.mean(bits))))
            lines.append(f"| {quality:g} | {lam:.0f} | {name} | {np.mean(bits):.4f} | {np.mean(quality_db):.2f} | "
                         f"{np.mean(cost):.1f} | {np.mean(seconds):.2f} |")
            print(lines[-1], flush=True)
    body = (f"{len(pairs)} pairs ({args.pairs} per sequence) of `{DATA.name}` at 1024x512; wall "
            f"{time.perf_counter() - start:.0f} s, load average {load:.1f} -> {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores.\n\n" + "\n".join(lines) + "\n\n" + _at_equal_prediction(curves))
    append("Motion: vector bits and prediction PSNR, fixed penalty against rate-distortion search", body)
    return 0


def _at_equal_prediction(curves: dict[str, list[tuple[float, float]]]) -> str:
    """The rate-distortion searches' vector bpp at the fixed search's mean prediction PSNR (issue 14's measure),
    linearly interpolated between the two qualities that bracket it."""
    target = float(np.mean([db for db, _ in curves["fixed"]]))
    found = []
    for name in ("rd, whole fields", "rd"):
        ordered = sorted(curves[name])
        if not ordered[0][0] <= target <= ordered[-1][0]:
            found.append(f"{name}: outside the qualities run ({ordered[0][0]:.2f} - {ordered[-1][0]:.2f} dB)")
            continue
        db, bpp = zip(*ordered, strict=True)
        found.append(f"{name} {np.interp(target, db, bpp):.5f}")
    return (f"Vector bpp at the fixed search's prediction PSNR ({target:.2f} dB; the fixed search: "
            f"{np.mean([b for _, b in curves['fixed']]):.4f}), interpolated between the qualities around it: "
            + "; ".join(found) + ".")


if __name__ == "__main__":
    raise SystemExit(main())
