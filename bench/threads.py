"""Wall time of `run` and `decode` on the embedded sample at 1 and 2 torch threads, idle and under load.

    python -m bench.threads [--busy 2] [--frames 6]

The loaded case runs ``--busy`` spinning processes beside the command (what a shared 2-core machine sees).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import append


def _spin() -> None:
    while True:
        pass


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"pipeline {' '.join(args)} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="spinning processes in the loaded case")
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    rows = ["| machine | threads | run s | decode s | load average at start |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for loaded in (False, True):
            spinners = [mp.Process(target=_spin, daemon=True) for _ in range(args.busy if loaded else 0)]
            for p in spinners:
                p.start()
            time.sleep(5 if loaded else 0)
            try:
                for threads in (1, 2):
                    load = os.getloadavg()[0]
                    out = Path(tmp) / f"run-{loaded}-{threads}"
                    run_s = _timed(["run", f"threads={threads}", f"dataset.frames_per_sequence={args.frames}",
                                    f"hydra.run.dir={out}"])
                    stream = next((out / "bitstreams").rglob("*.bin"))
                    decode_s = _timed(["decode", str(stream), str(out / "decoded"), f"threads={threads}",
                                       f"hydra.run.dir={out / 'h'}"])
                    label = f"loaded ({args.busy} spinning processes)" if loaded else "idle"
                    rows.append(f"| {label} | {threads} | {run_s:.1f} | {decode_s:.1f} | {load:.1f} |")
            finally:
                for p in spinners:
                    p.terminate()
    body = (f"`python -m pipeline run` (defaults: rate.mode=rdo, verify on, flow scoring on) on the embedded sample, "
            f"{args.frames} frames, then `decode` of its bitstream; wall time of each command including start-up. "
            f"{os.cpu_count()} cores.\n\n" + "\n".join(rows))
    append("Threads: run and decode time at 1 and 2 torch threads", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
