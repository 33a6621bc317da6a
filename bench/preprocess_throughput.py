"""Preprocessing throughput (frames/s) with 1 and 2 local workers, and each run's peak memory.

``python -m bench.preprocess_throughput [--note TEXT] [key=value ...]``: Hydra overrides (default: 4 real
Cityscapes snippets, 6 frames each, resized to 512x256; falls back to the embedded sample when the shared
data is absent). Each configuration runs in a fresh process into a fresh output folder, so nothing is
skipped and the peak-memory counters start clean. Peak memory is ``ru_maxrss``: of the driver process
(RUSAGE_SELF) and of the largest worker process it waited for (RUSAGE_CHILDREN; psutil is not installed).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.results import append

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cityscapes_sequence"
DEFAULT = ["dataset=cityscapes", f"dataset.root={SHARED}", "dataset.resize=512x256", "dataset.frames_per_sequence=6",
           "dataset.max_sequences=4"]
# (workers, torch threads per worker): the default split (cpu_count // workers), and 1 worker on 1 thread to
# show whether the default beats contention on a busy machine.
RUNS = ((1, None), (1, 1), (2, None))


def measure(workers: int, threads: int | None, out: str, overrides: list[str]) -> dict:
    """Run one preprocessing job in this process (called in a fresh child) and report its numbers."""
    from hydra import compose, initialize_config_dir

    import pipeline.cli  # noqa: F401 - registers the ${repo:} resolver
    from pipeline.preprocess import Manifest, preprocess

    conf = Path(__file__).resolve().parent.parent / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, f"preprocess.workers={workers}", "preprocess.progress=false",
                                           f"preprocess.threads={'null' if threads is None else threads}"])
    summary = preprocess(cfg, out)
    records = Manifest(Path(out) / "manifest.jsonl").read()
    coding_seconds = sum(r["seconds"] for r in records if r["status"] == "ok")
    return {"workers": workers, "ok": summary.ok, "failed": summary.failed, "frames": summary.frames,
            "seconds": summary.seconds, "coding_seconds": coding_seconds,
            "threads": threads or max(1, (os.cpu_count() or 1) // workers),
            "bpp": _mean(r["bpp"] for r in records), "psnr": _mean(r["psnr"] for r in records),
            "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def main(argv: list[str]) -> None:
    note = ""
    if argv[:1] == ["--note"]:  # a sentence for RESULTS.md about this run's conditions
        note, argv = argv[1] + " ", argv[2:]
    overrides = argv or (DEFAULT if SHARED.is_dir() else ["dataset=sample"])
    load = os.getloadavg()[0]
    rows = []
    for workers, threads in RUNS:
        with tempfile.TemporaryDirectory(prefix="preprocess_bench_") as out:
            child = subprocess.run([sys.executable, "-m", "bench.preprocess_throughput", "--one", str(workers),
                                    str(threads or 0), out, *overrides], capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise SystemExit(f"workers={workers} failed:\n{child.stderr[-3000:]}")
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    base = rows[0]["frames"] / rows[0]["seconds"]
    lines = ["| workers | torch threads each | sequences ok | frames | wall s | frames/s | speed-up | "
             "coding s per frame (in workers) | driver peak MB | worker peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fps = r["frames"] / r["seconds"]
        lines.append(f"| {r['workers']} | {r['threads']} | {r['ok']} | {r['frames']} | {r['seconds']:.1f} | {fps:.2f} "
                     f"| {fps / base:.2f}x | {r['coding_seconds'] / max(r['frames'], 1):.2f} | {r['driver_mb']:.0f} "
                     f"| {r['worker_mb']:.0f} |")
    body = "\n".join(lines) + (
        f"\n\n{note}Overrides: `{' '.join(overrides)}`; mean bpp {rows[0]['bpp']:.4f}, mean PSNR "
        f"{rows[0]['psnr']:.2f} dB (first run; all runs share the config). Wall time includes "
        "starting the workers (spawn, imports, model loading) and the driver's dataset scan; the coding-seconds "
        "column is the per-sequence time measured inside the workers. Worker peak memory is the largest "
        f"ru_maxrss among worker processes. Load average at start: {load:.2f} on {os.cpu_count()} cores"
        + (" (high: other jobs were running, so timings are pessimistic)." if load > 1.0 else "."))
    append("Preprocess throughput: local workers", body)


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]) or None, sys.argv[4], sys.argv[5:])))
    else:
        main(sys.argv[1:])
