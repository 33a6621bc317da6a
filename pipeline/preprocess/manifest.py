"""The preprocessing manifest: one JSON line per coded sequence, appended durably, latest line per key wins.

Only the driver writes it. Lines are appended with flush + fsync as results arrive, so a ``kill -9`` loses
at most the line being written; a torn last line is skipped on read (and the next append starts on a fresh
line). :meth:`Manifest.compact` rewrites the file atomically with one line per sequence.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from atomic import write_bytes

# Every record carries these keys (None when not known, e.g. metrics of a failed sequence).
FIELDS = ("sequence", "input", "output", "frames_dir", "status", "error", "bytes", "bpp", "psnr", "msssim",
          "flow_consistency", "frames", "checksum", "config_hash", "seconds", "worker", "attempts", "time")
OK, FAILED = "ok", "failed"


class Manifest:
    """``OUT/manifest.jsonl``: records keyed by ``record["sequence"]`` (the sequence's output stem)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> list[dict]:
        """All well-formed records in file order; torn or foreign lines are skipped with a warning."""
        if not self.path.is_file():
            return []
        records = []
        with self.path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    record = None
                if not isinstance(record, dict) or not isinstance(record.get("sequence"), str):
                    # A run killed mid-append leaves a torn last line; that sequence is simply redone.
                    warnings.warn(f"{self.path}:{number}: skipping a malformed manifest line", stacklevel=2)
                    continue
                records.append(record)
        return records

    def latest(self) -> dict[str, dict]:
        """sequence key -> its latest record (later lines override earlier ones)."""
        return {record["sequence"]: record for record in self.read()}

    def append(self, record: dict) -> None:
        """Append one record durably (flush + fsync) before returning."""
        missing = [key for key in FIELDS if key not in record]
        if missing:
            raise ValueError(f"manifest record for {record.get('sequence')!r} lacks fields {missing}")
        line = json.dumps(record, sort_keys=True, allow_nan=False).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as f:
            # A torn line from a killed run has no newline: start ours on a fresh line so both stay separable.
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def compact(self) -> None:
        """Rewrite atomically with only the latest record of each sequence, in first-seen order."""
        latest = self.latest()
        if not latest:
            return
        write_bytes(self.path, b"".join(json.dumps(record, sort_keys=True, allow_nan=False).encode() + b"\n"
                                        for record in latest.values()), sync=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
