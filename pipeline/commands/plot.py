"""``python -m pipeline plot A/results.json B/results.json ... [out=FILE.png]``: overlay the RD curves of runs.

One panel per metric (PSNR, MS-SSIM in dB = -10 log10(1 - MS-SSIM), flow consistency), one line per codec and
run; a codec that appears in several runs is labelled with its run's folder name.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from atomic import write_bytes
from pipeline.errors import UserError
from pipeline.evaluation.plots import rd_panels

log = logging.getLogger("drivecodec.plot")


def msssim_db(value: float | None) -> float:
    """MS-SSIM on a dB scale, -10 log10(1 - MS-SSIM): differences near 1 become visible (NaN when undefined)."""
    if value is None or not 0 <= value < 1:
        return math.nan
    return -10 * math.log10(1 - value)


def main(cfg: DictConfig, args: list[str]) -> int:
    if not args:
        raise UserError("plot takes one or more results.json files of `evaluate` runs")
    curves: dict[str, list[dict]] = {}
    runs = []
    for arg in args:
        path = Path(arg)
        try:
            doc = json.loads(path.read_text())
            runs.append((path, doc["curves"]))
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: not an evaluation results.json ({err})") from err
    names = [name for _, run in runs for name in run]
    for path, run in runs:
        for codec, points in run.items():
            label = f"{codec} ({path.parent.name})" if names.count(codec) > 1 else codec
            curves[label] = [{**p, "msssim_db": msssim_db(p.get("msssim"))} for p in points]
    out = Path(cfg.out) if cfg.get("out") else Path(HydraConfig.get().runtime.output_dir) / "rd.png"
    write_bytes(out, rd_panels(curves, ["psnr", "msssim_db", "flow_consistency"]))
    log.info("%d curves from %d runs -> %s", len(curves), len(runs), out)
    return 0
