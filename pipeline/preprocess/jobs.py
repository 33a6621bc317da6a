"""Planning: one small, picklable :class:`Task` per sequence, and the check that decides what is already done.

Workers receive tasks, never frames: a task names the sequence by its index in the dataset (every worker
builds the same dataset from the same config) plus its name, so a dataset that changed under a run is caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codec.scaled import HEAD_NAMES, factor_of
from pipeline.frames import Sequence
from pipeline.preprocess.manifest import OK, sha256_file
from pipeline.video.sequence import png_name


@dataclass(frozen=True)
class Task:
    index: int  # position of the sequence in the dataset
    sequence: str  # manifest key: "<relpath>/<name>", the output stem relative to OUT
    name: str
    relpath: str
    input: str  # the sequence's source (folder or video file)
    frames: int
    output: str  # container, relative to OUT: "<relpath>/<name>.bin"
    frames_dir: str | None  # decoded PNGs, relative to OUT: "<relpath>/<name>", None when not written
    frame_names: tuple[str, ...] = ()  # decoded PNG names, to check a frame folder is complete

    def with_frames(self) -> bool:
        return self.frames_dir is not None


def sequence_key(relpath: str, name: str) -> str:
    """``"leftImg8bit_sequence/train/aachen"`` + ``"aachen_000000"`` -> their POSIX join (``"."`` dropped)."""
    rel = PurePosixPath(relpath.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"sequence {name}: relpath {relpath!r} must be relative and inside the dataset root")
    return (rel / name).as_posix()


def frame_subdirs(scales: Iterable[float]) -> list[str]:
    """Where a sequence's frames go within its frame folder for each decode scale: "" (the folder itself) for
    full size, "half/" and "quarter/" for 0.5 and 0.25; a clear error for any other scale."""
    subdirs = []
    for scale in scales:
        factor = factor_of(scale)
        subdirs.append("" if factor == 1 else f"{HEAD_NAMES[factor]}/")
    return subdirs


def plan(sequences: Iterable[Sequence], write_frames: bool, frame_scales: Iterable[float] = (1.0,)) -> list[Task]:
    """One task per sequence, in dataset order; duplicate output names are an error (they would overwrite).

    With ``write_frames`` the decoded frames of every scale in ``frame_scales`` are expected (:func:`frame_subdirs`).
    """
    subdirs = frame_subdirs(frame_scales)
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for index, seq in enumerate(sequences):
        key = sequence_key(seq.relpath, seq.name)
        if key in seen:
            raise ValueError(f"sequences from {seen[key]} and {seq.source} both map to output {key}.bin; "
                             "sequence names must be unique within a folder")
        seen[key] = seq.source
        tasks.append(Task(index=index, sequence=key, name=seq.name, relpath=seq.relpath, input=seq.source,
                          frames=len(seq), output=f"{key}.bin", frames_dir=key if write_frames else None,
                          frame_names=tuple(sub + png_name(n) for sub in subdirs for n in seq.frame_names)
                          if write_frames else ()))
    return tasks


def is_done(task: Task, record: dict | None, out_root: Path, config_hash: str, verify: bool = True) -> bool:
    """True when ``record`` is an ok result of this config whose outputs are present and intact.

    With ``verify`` the container's sha256 must equal the recorded checksum; decoded frames, when asked for,
    must all be present in their (renamed, hence complete) folder.
    """
    if record is None or record.get("status") != OK or record.get("config_hash") != config_hash:
        return False
    if record.get("output") != task.output or record.get("frames") != task.frames:
        return False
    stream = out_root / task.output
    if not stream.is_file() or stream.stat().st_size != record.get("bytes"):
        return False
    if verify and sha256_file(stream) != record.get("checksum"):
        return False
    if task.with_frames():
        folder = out_root / task.frames_dir
        if record.get("frames_dir") != task.frames_dir or not folder.is_dir():
            return False
        if any(not (folder / name).is_file() for name in task.frame_names):
            return False
    return True
