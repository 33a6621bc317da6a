"""`python -m pipeline preprocess dataset=... dataset.root=DIR out=DIR`: code a whole dataset, resumably."""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.errors import UserError
from pipeline.preprocess import RunAborted, preprocess


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise UserError(f"preprocess takes no positional arguments, got {args}; use out=DIR and dataset.root=DIR")
    out = cfg.get("out") or cfg.preprocess.get("out")
    if not out:
        raise UserError("preprocess needs an output root: out=DIR (or preprocess.out=DIR)")
    try:
        summary = preprocess(cfg, out)
    except RunAborted as err:
        raise UserError(str(err)) from err
    print(summary.line())
    return summary.exit_code
