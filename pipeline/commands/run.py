"""`python -m pipeline run`: code every sequence of the dataset, decode, score, report."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from pipeline.cli import UserError
from pipeline.imageio import write_bytes_atomic
from pipeline.video.build import build_coder, build_flow_score
from pipeline.video.sequence import code_sequence, summarize


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise UserError(f"run takes no positional arguments, got {args}; use overrides such as dataset.root=DIR")
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    dataset = instantiate(cfg.dataset)
    coder = build_coder(cfg)
    flow_score = build_flow_score(cfg)
    sequences = []
    total = sum(len(seq) for seq in dataset)
    with tqdm(total=total, unit="frame", desc=f"run mode={cfg.mode}", disable=None) as bar:
        for seq in dataset:
            rel = Path(seq.relpath)
            result = code_sequence(coder, seq, out_dir / "bitstreams" / rel / f"{seq.name}.bin",
                                   out_dir / "frames" / rel / seq.name if cfg.write_frames else None,
                                   flow_score=flow_score, verify=cfg.verify, on_frame=lambda _: bar.update())
            sequences.append({"name": seq.name, "bitstream": str(result.bitstream.relative_to(out_dir)),
                              "bytes": result.bytes, "summary": result.summary(), "frames": result.frames})
    rows = [row for s in sequences for row in s["frames"]]
    metrics = {"mode": cfg.mode, "rate": dict(cfg.rate), "summary": summarize(rows), "sequences": sequences,
               "frames": rows}
    write_bytes_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    print(format_table(sequences, metrics["summary"]))
    print(f"outputs: {out_dir}")
    return 0


def format_table(sequences: list[dict], summary: dict) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    head = f"{'sequence':<28} {'frames':>6} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} {'flow px':>8} {'iters':>6}"
    lines = [head, "-" * len(head)]
    for s in [*sequences, {"name": "ALL", "summary": summary}]:
        m = s["summary"]
        lines.append(f"{s['name']:<28} {m['frames']:>6} {fmt(m['bpp'], '7.4f')} {fmt(m['psnr'], '8.2f')} "
                     f"{fmt(m['msssim'], '8.4f')} {fmt(m['flow_consistency'], '8.3f')} {fmt(m['iterations'], '6.2f')}")
    return "\n".join(lines)
