"""Append a dated, reproducible section to ``bench/RESULTS.md``."""

from __future__ import annotations

import datetime as _dt
import fcntl
import itertools
import os
import platform
import shlex
import sys
from pathlib import Path

from atomic import write_bytes

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line naming the machine: CPU model, cores, and the GPU when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        import torch

        text += f", torch {torch.__version__}, threads {torch.get_num_threads()}"
        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def append(title: str, body: str, command: str | None = None, results: Path = RESULTS) -> None:
    """Write ``body`` (markdown) under a heading with date, machine and the command that made it.

    A section with the same title is replaced in place, so the file holds the latest run of each benchmark.
    """
    command = command or "python -m " + " ".join(shlex.quote(a) for a in [_module(), *sys.argv[1:]])
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"\n## {title}\n\n- date: {stamp}\n- machine: {machine()}\n- command: `{command}`\n\n"
               f"{body.rstrip()}\n")
    # Benchmarks run side by side: the lock keeps one from dropping the section another just wrote.
    with open(results.with_name(results.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = results.read_text() if results.is_file() else ""
        heading = f"\n## {title}\n"
        start = text.find(heading)
        if start < 0:
            text += section
        else:
            end = text.find("\n## ", start + len(heading))
            text = text[:start] + section + (text[end:] if end >= 0 else "")
        write_bytes(results, text.encode())
    print(section)


def fresh_run_dir(parent: Path) -> Path:
    """Create and return ``parent/<timestamp>``, suffixed ``-1``, ``-2``... so runs started together never share it."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for n in itertools.count():
        run_dir = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue


def run_shape(results_json: dict) -> tuple[int, int]:
    """(sequences, frames per sequence) of a ``python -m pipeline evaluate`` run, from its results.json."""
    row = results_json["noise_floor"][0]
    sequences = int(row["sequences"])
    return sequences, int(row["frames"]) // max(sequences, 1)


def _module() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem
