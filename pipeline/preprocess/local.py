"""The local engine: a spawn-context process pool, one sequence per task, with retries.

At most ``workers`` tasks are in flight, so a crashed worker (which breaks the whole pool) can only take the
tasks that were running with it; those are retried on a fresh pool. ``workers=0`` runs in this process.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue
from queue import Empty

from pipeline.preprocess.jobs import Task
from pipeline.preprocess.manifest import FAILED
from pipeline.preprocess.worker import CoderFactory, Outcome, execute, exit_with_parent, new_record
from pipeline.threads import available_cores, set_threads


def default_threads(workers: int) -> int:
    """Torch threads per worker: the cores this process may use shared out, at least one."""
    return max(1, available_cores() // max(1, workers))


def run_local(tasks: list[Task], cfg: dict, factory: CoderFactory, out_root: str, config_hash: str,
              workers: int, threads: int | None = None, max_retries: int = 2,
              progress: Callable[[str], None] | None = None) -> Iterator[Outcome]:
    """Yield one final outcome per task, in completion order (retries happen before a task's outcome).

    ``progress(sequence_key)`` is called in this process once per coded frame, as workers report them.
    """
    threads = threads or default_threads(workers)
    pending: deque[tuple[Task, int]] = deque((task, 1) for task in tasks)

    def give_up_or_retry(task: Task, attempt: int, err: BaseException) -> Outcome | None:
        if attempt <= max_retries:
            pending.appendleft((task, attempt + 1))
            return None
        return Outcome(new_record(task, config_hash, status=FAILED, attempts=attempt,
                                  error=f"{type(err).__name__}: {err} (after {attempt} attempts)"))

    if workers == 0:
        set_threads(threads)
        while pending:
            task, attempt = pending.popleft()
            on_frame = None if progress is None else functools.partial(progress, task.sequence)
            try:
                outcome = execute(cfg, factory, out_root, config_hash, task, attempt, on_frame)
            except Exception as err:
                outcome = give_up_or_retry(task, attempt, err)
            if outcome is not None:
                yield outcome
        return

    context = multiprocessing.get_context("spawn")
    frames: Queue | None = None  # sequence key per coded frame, from the workers of the current pool
    executor: ProcessPoolExecutor | None = None
    running: dict[Future, tuple[Task, int]] = {}
    try:
        while pending or running:
            if executor is None:
                # A fresh queue per pool: a worker killed mid-put can leave the old queue's write lock held.
                frames = context.Queue()
                executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process,
                                               initargs=(threads, frames, os.getpid()))
            broken = False
            while pending and len(running) < workers:
                task, attempt = pending.popleft()
                try:
                    future = executor.submit(_execute_reporting, cfg, factory, out_root, config_hash, task,
                                             attempt)
                except BrokenProcessPool:  # a worker died since the last wait; this task never started
                    pending.appendleft((task, attempt))
                    broken = True
                    break
                running[future] = (task, attempt)
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(frames, progress)
            for future in done:
                task, attempt = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as err:
                    broken |= isinstance(err, BrokenProcessPool)
                    outcome = give_up_or_retry(task, attempt, err)
                if outcome is not None:
                    yield outcome
            if broken:
                # Every task still running went down with the pool; it counts as a failed attempt for each.
                for task, attempt in running.values():
                    outcome = give_up_or_retry(task, attempt, BrokenProcessPool("a worker process died"))
                    if outcome is not None:
                        yield outcome
                running.clear()
                executor.shutdown(wait=True, cancel_futures=True)
                frames.close()  # its remaining ticks are dropped: the tasks that went down are retried
                executor = None
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if frames is not None:
            frames.close()


def _drain(frames: Queue, progress: Callable[[str], None] | None) -> None:
    while True:
        try:
            key = frames.get_nowait()
        except Empty:
            return
        if progress is not None:
            progress(key)


# ---- inside worker processes ----
_FRAMES: dict[str, Queue] = {}


def _init_process(threads: int, frames: Queue, driver: int) -> None:
    set_threads(threads)
    exit_with_parent(driver)
    # Progress ticks may be lost at exit; never let a worker hang flushing them (the driver may be gone,
    # or a dead sibling may hold the queue's lock), which would also hang the pool's shutdown.
    frames.cancel_join_thread()
    _FRAMES["queue"] = frames


def _execute_reporting(cfg: dict, factory: CoderFactory, out_root: str, config_hash: str, task: Task,
                       attempt: int) -> Outcome:
    queue = _FRAMES["queue"]
    return execute(cfg, factory, out_root, config_hash, task, attempt, lambda: queue.put(task.sequence))
