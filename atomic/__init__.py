"""Atomic file output shared by ``codec/``, ``flow/`` and ``pipeline/``: readers never see half a file or folder.

Everything is written under a unique temporary name in the destination's folder (so the final rename stays on
one file system) and renamed into place only when complete; on any error the temporary is removed and the
destination is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, for writers that pick a format by extension);
    it replaces ``path`` (mode 0644) when the block ends without an error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary shared files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, sync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; ``sync`` also flushes it to disk before the rename."""
    with temporary_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder ``path.tmp``; it replaces ``path`` (any old folder is removed) when the block
    ends without an error, and is removed otherwise."""
    path = Path(path)
    staging = path.with_name(path.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
