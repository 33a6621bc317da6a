"""What runs inside a worker process: build the dataset and the coder once, then code one task at a time.

Outcomes of a task:
- ok: the container (and the decoded-frame folder) are in place under their final names;
- bad input (unreadable frame, wrong size, missing file): a failed record, not retried (it would fail again);
- output trouble (disk full, quota, read-only or unwritable output): a failed record marked ``fatal``, so the
  driver stops the run with a clear error instead of failing every remaining sequence the same way;
- anything else (a crash in the coder, a verification mismatch): raised, so the engine retries the task.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pipeline.frames import Sequence
from pipeline.preprocess.jobs import Task
from pipeline.preprocess.manifest import FAILED, FIELDS, OK, sha256_file

# Codes one sequence: (sequence, container path, decoded-frames folder or None, called once per coded frame or
# None) -> summary with at least "bpp", "psnr", "msssim", "flow_consistency" (averages, None when not measured).
SequenceCoder = Callable[[Sequence, Path, Path | None, Callable[[], None] | None], dict]
# Built once per worker from the composed config.
CoderFactory = Callable[[DictConfig], SequenceCoder]

# errno values that mean "the output storage cannot take it": every later sequence would fail the same way.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass
class Outcome:
    record: dict
    fatal: bool = False  # output storage failure: stop the run


def new_record(task: Task, config_hash: str, **values) -> dict:
    record = dict.fromkeys(FIELDS)
    record.update(sequence=task.sequence, input=task.input, output=task.output, frames_dir=task.frames_dir,
                  frames=task.frames, config_hash=config_hash, worker=f"{socket.gethostname()}:{os.getpid()}",
                  time=datetime.now(UTC).isoformat(timespec="seconds"))
    record.update(values)
    return record


class Worker:
    """Per-process state. ``cfg`` is the resolved config as plain containers (it crosses process boundaries)."""

    def __init__(self, cfg: dict, factory: CoderFactory, out_root: str, config_hash: str) -> None:
        self.cfg = OmegaConf.create(cfg)
        self.out_root = Path(out_root)
        self.config_hash = config_hash
        self.dataset = instantiate(self.cfg.dataset)
        self.code = factory(self.cfg)

    def run(self, task: Task, attempt: int = 1, on_frame: Callable[[], None] | None = None) -> Outcome:
        start = time.perf_counter()
        stream = self.out_root / task.output
        frames_dir = self.out_root / task.frames_dir if task.with_frames() else None
        staging = frames_dir.with_name(frames_dir.name + ".tmp") if frames_dir is not None else None
        try:
            sequence = self._sequence(task)
            stream.parent.mkdir(parents=True, exist_ok=True)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
            summary = self.code(sequence, stream, staging, on_frame)
            if staging is not None:
                _publish_dir(staging, frames_dir)
            checksum = sha256_file(stream)
        except Exception as err:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            fatal = self._is_output_error(err)
            if not fatal and not isinstance(err, ValueError | OSError):
                raise  # unexpected: let the engine retry
            return Outcome(new_record(task, self.config_hash, status=FAILED, error=_describe(err),
                                      seconds=round(time.perf_counter() - start, 3), attempts=attempt), fatal)
        values = {key: summary.get(key) for key in ("bpp", "psnr", "msssim", "flow_consistency")}
        return Outcome(new_record(task, self.config_hash, status=OK, bytes=stream.stat().st_size, checksum=checksum,
                                  seconds=round(time.perf_counter() - start, 3), attempts=attempt, **values))

    def _sequence(self, task: Task) -> Sequence:
        if hasattr(self.dataset, "__getitem__"):
            sequence = self.dataset[task.index]
        else:
            sequence = next(itertools.islice(iter(self.dataset), task.index, None), None)
        if sequence is None or sequence.name != task.name or sequence.relpath != task.relpath:
            found = "nothing" if sequence is None else f"{sequence.relpath}/{sequence.name}"
            raise ValueError(f"dataset changed since planning: sequence {task.index} is {found}, "
                             f"expected {task.sequence} from {task.input}")
        return sequence

    def _is_output_error(self, err: BaseException) -> bool:
        if not isinstance(err, OSError):
            return False
        if err.errno in _OUTPUT_ERRNOS:
            return True
        filename = getattr(err, "filename", None)
        if filename is None:
            return False
        try:
            Path(filename).resolve().relative_to(self.out_root.resolve())
        except ValueError:
            return False
        return True


def _publish_dir(staging: Path, final: Path) -> None:
    """Rename a fully written folder into place, replacing an older one (the manifest line comes after)."""
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# ---- process-wide state for pool and Ray workers ------------------------------------------------------
_STATE: dict[str, Worker] = {}


def execute(cfg: dict, factory: CoderFactory, out_root: str, config_hash: str, task: Task, attempt: int = 1,
            on_frame: Callable[[], None] | None = None) -> Outcome:
    """Run ``task`` with this process's worker, built on first use (dataset scan and model loading happen once).

    A worker that cannot be built (missing weights, bad dataset config) fails every task the same way, so
    that comes back as a fatal outcome and the driver stops with the reason.
    """
    # Keyed by the whole config, not the config hash: options outside the hash (e.g. verify) shape the worker too.
    key = hashlib.sha256(json.dumps([cfg, out_root, config_hash, getattr(factory, "__qualname__", repr(factory))],
                                    sort_keys=True, default=str).encode()).hexdigest()
    if key not in _STATE:
        try:
            worker = Worker(cfg, factory, out_root, config_hash)
        except Exception as err:
            return Outcome(new_record(task, config_hash, status=FAILED, attempts=attempt,
                                      error=f"worker setup failed: {_describe(err)}"), fatal=True)
        _STATE.clear()
        _STATE[key] = worker
    return _STATE[key].run(task, attempt, on_frame)


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this worker when the driver dies (e.g. ``kill -9``), so no orphan keeps writing outputs.

    Pool workers block on a queue the dead driver can no longer close. On Linux the kernel delivers SIGKILL
    when the parent dies (PR_SET_PDEATHSIG); elsewhere, polling the parent pid is the portable way to notice.
    ``parent`` is the driver's pid as the driver saw it: a worker still starting up when the driver died has
    already been re-parented, and must notice that too.
    """
    if sys.platform.startswith("linux"):
        # The kernel kills this worker the moment its parent dies, even while it is busy in native code.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
