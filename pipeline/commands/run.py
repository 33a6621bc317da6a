"""`python -m pipeline run`: code every sequence of the dataset, decode, score, report.

Every frame of every sequence is checked (headers, sizes) before anything is coded. ``metrics.json`` is
written last, with ``"status": "complete"``; a run that fails part-way writes it with ``"status": "failed"``,
the error and the sequences finished so far, so its outputs never look complete.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from atomic import write_bytes
from pipeline.errors import UserError
from pipeline.evaluation.metrics import noise_floor_variants
from pipeline.frames import Sequence
from pipeline.video.build import build_coder, build_flow_score
from pipeline.video.sequence import PairScore, code_sequence, summarize

log = logging.getLogger("drivecodec.run")


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise UserError(f"run takes no positional arguments, got {args}; use overrides such as dataset.root=DIR")
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    dataset = list(instantiate(cfg.dataset))
    for seq in tqdm(dataset, unit="sequence", desc="check frames", disable=None):
        if seq.check is not None:
            seq.check()
    coder = build_coder(cfg)
    flow_score = build_flow_score(cfg)
    sequences: list[dict] = []
    metrics = {"status": "running", "mode": cfg.mode, "rate": OmegaConf.to_container(cfg.rate, resolve=True)}
    total = sum(len(seq) for seq in dataset) * (2 if cfg.verify else 1)
    try:
        with tqdm(total=total, unit="frame", desc=f"run mode={cfg.mode} (code, then verify)", disable=None) as bar:
            for seq in dataset:
                rel = Path(seq.relpath)
                result = code_sequence(coder, seq, out_dir / "bitstreams" / rel / f"{seq.name}.bin",
                                       out_dir / "frames" / rel / seq.name if cfg.write_frames else None,
                                       flow_score=flow_score, verify=cfg.verify, on_frame=lambda _: bar.update(),
                                       on_verified=bar.update)
                summary = result.summary()
                if flow_score is not None:
                    summary["flow_noise_floor"] = _flow_noise_floor(seq, flow_score, cfg.seed)
                sequences.append({"name": seq.name, "bitstream": str(result.bitstream.relative_to(out_dir)),
                                  "bytes": result.bytes, "summary": summary, "frames": result.frames})
    except BaseException as err:
        metrics.update(status="failed", error=f"{type(err).__name__}: {err}", sequences=sequences)
        write_bytes(out_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
        log.error("run failed after %d of %d sequences; %s marks its outputs incomplete", len(sequences),
                  len(dataset), out_dir / "metrics.json")
        raise
    rows = [row for s in sequences for row in s["frames"]]
    summary = summarize(rows)
    # Across sequences, as evaluate averages them: each sequence's pooled score, weighted by its frames.
    scored = [(s["summary"]["flow_consistency"], s["summary"]["frames"]) for s in sequences
              if s["summary"]["flow_consistency"] is not None]
    summary["flow_consistency"] = sum(v * n for v, n in scored) / sum(n for _, n in scored) if scored else None
    floors = [s["summary"]["flow_noise_floor"] for s in sequences if s["summary"].get("flow_noise_floor") is not None]
    summary["flow_noise_floor"] = max(floors) if floors else None
    metrics.update(status="complete", summary=summary, sequences=sequences, frames=rows)
    write_bytes(out_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    log.info("%s", format_table(sequences, summary))
    log.info("flow consistency is in px of end-point error against the original's flow; its noise floor (what a "
             "near-lossless copy scores) is %s px", _fmt(summary["flow_noise_floor"], ".3f"))
    log.info("outputs: %s", out_dir)
    return 0


def _flow_noise_floor(seq: Sequence, flow_score: PairScore, seed: int) -> float | None:
    """Flow consistency of near-lossless copies (+-1 LSB noise, JPEG q100) of the sequence's first pair: the worst."""
    first = [frame.image for frame in itertools.islice(seq, 2)]
    if len(first) < 2:
        return None
    variants = noise_floor_variants(first, seed)
    return max(float(flow_score(first[0], first[1], copy[0], copy[1])[0]) for copy, _ in variants.values())


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(sequences: list[dict], summary: dict) -> str:
    head = (f"{'sequence':<28} {'frames':>6} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} {'flow px':>8} {'floor px':>8} "
            f"{'iters':>6}")
    lines = [head, "-" * len(head)]
    for s in [*sequences, {"name": "ALL", "summary": summary}]:
        m = s["summary"]
        lines.append(f"{s['name']:<28} {m['frames']:>6} {_fmt(m['bpp'], '7.4f'):>7} {_fmt(m['psnr'], '8.2f'):>8} "
                     f"{_fmt(m['msssim'], '8.4f'):>8} {_fmt(m['flow_consistency'], '8.3f'):>8} "
                     f"{_fmt(m.get('flow_noise_floor'), '8.3f'):>8} {_fmt(m['iterations'], '6.2f'):>6}")
    return "\n".join(lines)
