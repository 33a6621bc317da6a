"""``python -m pipeline flow FRAME1 FRAME2 OUT.flo [flow.method=dis|farneback|block] [flow.gt=FILE]``.

Writes the forward flow FRAME1 -> FRAME2 to OUT.flo (or a KITTI .png) and its Middlebury colour
picture beside it (OUT.png, or OUT.color.png when OUT is itself a .png). With ``flow.gt`` (.flo or
KITTI .png) it prints one JSON object of metrics to stdout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from flow.dense import METHODS, estimate_flow
from flow.io import read_flow, write_flow
from flow.metrics import flow_metrics
from flow.viz import flow_to_color
from pipeline.imageio import read_image, write_image


def _options(cfg: DictConfig, method: str) -> dict:
    if method == "dis":
        return {"preset": str(cfg.flow.preset)}
    if method == "block":
        motion = cfg.get("motion") or {}
        return {k: motion[k] for k in ("block", "search", "subpel", "decimate", "lam") if k in motion}
    return {}


def main(cfg: DictConfig, args: list[str]) -> int:
    if len(args) != 3:
        raise ValueError(f"flow takes FRAME1 FRAME2 OUT.flo, got {len(args)} positional arguments: {args}")
    frame1_path, frame2_path, out_path = args
    out = Path(out_path)
    if out.suffix.lower() not in (".flo", ".png"):
        raise ValueError(f"{out}: output must end in .flo (or .png for KITTI 16-bit flow)")
    method = str(cfg.flow.method)
    if method not in METHODS:
        raise ValueError(f"flow.method={method!r} is unknown; expected one of {METHODS}")
    frame1, frame2 = read_image(frame1_path), read_image(frame2_path)
    if frame1.shape[:2] != frame2.shape[:2]:
        raise ValueError(f"{frame1_path} is {frame1.shape[1]}x{frame1.shape[0]} but {frame2_path} is "
                         f"{frame2.shape[1]}x{frame2.shape[0]}; the frames must share a size")
    gt = None
    if cfg.flow.get("gt"):  # checked before anything is written: a bad ground truth leaves no outputs behind
        gt, valid = read_flow(str(cfg.flow.gt))
        if gt.shape[:2] != frame1.shape[:2]:
            raise ValueError(f"ground truth {cfg.flow.gt} is {gt.shape[1]}x{gt.shape[0]} but the frames are "
                             f"{frame1.shape[1]}x{frame1.shape[0]}")
    t0 = time.perf_counter()
    flow = estimate_flow(frame1, frame2, method, **_options(cfg, method))
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    write_flow(out, flow)
    picture = out.with_suffix(".color.png" if out.suffix.lower() == ".png" else ".png")
    write_image(picture, flow_to_color(flow))
    if gt is not None:
        metrics = {"method": method, **_options(cfg, method), **flow_metrics(flow, gt, valid),
                   "seconds": round(seconds, 4)}
        print(json.dumps(metrics))
    return 0
