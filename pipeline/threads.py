"""Torch thread counts: one default for every command, the cores this process may run on."""

from __future__ import annotations

import os

from pipeline.errors import UserError


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset``), not the machine's total."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (None: :func:`available_cores`); returns the number set."""
    import torch

    count = available_cores() if threads is None else int(threads)
    if count < 1:
        raise UserError(f"threads={threads}: expected a positive number of threads (or null for all cores)")
    torch.set_num_threads(count)
    return count
