"""The preprocessing driver: plan, skip what is done, dispatch to an engine, write the manifest as results arrive.

One driver per output root (a lock file guards it); workers never touch the manifest.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from pipeline.config_hash import config_hash
from pipeline.preprocess.coding import CodecJob
from pipeline.preprocess.jobs import is_done, plan
from pipeline.preprocess.local import run_local
from pipeline.preprocess.manifest import OK, Manifest
from pipeline.preprocess.worker import CoderFactory, Outcome

ENGINES = ("local", "ray")
MANIFEST = "manifest.jsonl"
LOCK = ".preprocess.lock"


class RunAborted(RuntimeError):
    """The run stopped early (full disk, unwritable output, worker setup failure); finished work is kept."""


@dataclass
class RunSummary:
    ok: int
    failed: int
    skipped: int  # already done and verified by an earlier run
    frames: int  # frames coded by this run
    seconds: float
    manifest: Path

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (f"preprocess: {self.ok} ok, {self.failed} failed, {self.skipped} already done; {self.frames} frames "
                f"in {self.seconds:.1f} s ({rate:.2f} frames/s); manifest {self.manifest}")


def preprocess(cfg: DictConfig, out: str | os.PathLike, factory: CoderFactory = CodecJob) -> RunSummary:
    """Code every sequence of ``cfg.dataset`` into ``out`` (see docs/preprocess.md).

    ``factory(cfg)`` builds the per-sequence coder in each worker (the real one by default; tests inject
    stand-ins). Raises :class:`RunAborted` when the output storage fails or workers cannot start.
    """
    opts = cfg.preprocess
    if opts.engine not in ENGINES:
        raise ValueError(f"preprocess.engine={opts.engine!r}: expected one of {ENGINES}")
    workers = int(opts.workers)
    if workers < 0:
        raise ValueError(f"preprocess.workers={workers}: expected 0 (in this process) or more")
    out = Path(out).expanduser().resolve()
    with _locked(out):
        tasks = plan(instantiate(cfg.dataset), bool(opts.write_frames), list(opts.frame_scales))
        chash = config_hash(cfg, list(opts.hash_keys))
        manifest = Manifest(out / MANIFEST)
        latest = manifest.latest()
        todo = [t for t in tasks if not is_done(t, latest.get(t.sequence), out, chash, bool(opts.verify_existing))]
        plain = OmegaConf.to_container(cfg, resolve=True)  # workers get plain data: no resolvers needed there
        done_frames = sum(t.frames for t in tasks) - sum(t.frames for t in todo)
        with tqdm(total=sum(t.frames for t in tasks), initial=done_frames, unit="frame", desc="preprocess",
                  disable=None if opts.progress is None else not opts.progress, dynamic_ncols=True) as bar:
            progress = _Progress(bar, {t.sequence: t.frames for t in todo})
            if opts.engine == "ray":
                from pipeline.preprocess.ray_engine import run_ray

                outcomes = run_ray(todo, plain, factory, str(out), chash, opts.ray, int(opts.max_retries),
                                   device=str(cfg.get("device", "auto")))
            else:
                outcomes = run_local(todo, plain, factory, str(out), chash, workers, opts.threads,
                                     int(opts.max_retries), progress=progress.frame)
            summary = _collect(outcomes, manifest, progress, len(tasks) - len(todo))
        manifest.compact()
    return summary


class _Progress:
    """The bar counts frames: one step per frame a worker reports, the rest when its sequence's result lands.

    A retried sequence reports its frames again; ``totals`` caps each sequence so the bar never overcounts.
    """

    def __init__(self, bar: tqdm, totals: dict[str, int]) -> None:
        self.bar = bar
        self.totals = totals
        self.shown: Counter[str] = Counter()
        self.finished: set[str] = set()
        self.ok = self.failed = 0

    def frame(self, key: str) -> None:
        # A frame report can trail its sequence's result, and a retry repeats the frames of the failed attempt.
        if key not in self.finished and self.shown[key] < self.totals.get(key, 0):
            self.shown[key] += 1
            self.bar.update(1)

    def result(self, record: dict) -> None:
        if record["status"] == OK:
            self.ok += 1
        else:
            self.failed += 1
            self.bar.write(f"failed: {record['sequence']} ({record['input']}): {record['error']}", file=sys.stderr)
        self.finished.add(record["sequence"])
        self.bar.update(max(0, record["frames"] - self.shown.pop(record["sequence"], 0)))
        self.bar.set_postfix(ok=self.ok, failed=self.failed, refresh=False)


def _collect(outcomes: Iterator[Outcome], manifest: Manifest, progress: _Progress, skipped: int) -> RunSummary:
    start = time.perf_counter()
    frames = 0
    try:
        for outcome in outcomes:
            record = outcome.record
            try:
                manifest.append(record)
            except OSError as err:
                raise RunAborted(f"cannot append to {manifest.path}: {err}; {record['sequence']} is not recorded "
                                 "and will be redone by a rerun") from err
            progress.result(record)
            frames += record["frames"] if record["status"] == OK else 0
            if outcome.fatal:
                raise RunAborted(f"stopped after {record['sequence']}: {record['error']}; finished sequences are "
                                 f"kept in {manifest.path}, fix the cause and rerun to resume")
    finally:
        outcomes.close()  # stops the engine's workers when the run ends early
    return RunSummary(progress.ok, progress.failed, skipped, frames, time.perf_counter() - start, manifest.path)


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Create ``out`` and hold its lock: two drivers appending to one manifest would interleave results."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK, "a")  # noqa: SIM115 - held for the whole run
    except OSError as err:
        raise RunAborted(f"output directory {out} is not writable: {err.strerror or err}") from err
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise RunAborted(f"another preprocess run is writing {out} (it holds {out / LOCK})") from err
        yield
    finally:
        handle.close()
