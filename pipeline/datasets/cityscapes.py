"""Cityscapes video snippets: ``leftImg8bit_sequence`` and ``leftImg8bit/demoVideo``.

Files are ``{city}_{seq:06d}_{frame:06d}_leftImg8bit.png`` (or ``.jpg``). The root may be the
dataset root (holding ``leftImg8bit_sequence/`` or ``leftImg8bit/``), one of those two folders, a
split folder or a city folder; any other folder is searched recursively for such files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pipeline.datasets.base import (
    SequenceDataset,
    check_options,
    image_sequence,
    parse_size,
    relative,
    take_frames,
)

# Non-greedy city so that demoVideo's "stuttgart_00_000000_000123" parses as city "stuttgart_00".
FILE_PATTERN = re.compile(r"^(?P<city>.+?)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.(?:png|jpe?g)$",
                          re.IGNORECASE)
PATTERN_TEXT = "{city}_{seq:06d}_{frame:06d}_leftImg8bit.{png,jpg}"
LAYOUT = ("ROOT/leftImg8bit_sequence/{train,val,test}/CITY/" + PATTERN_TEXT
          + " or ROOT/leftImg8bit/demoVideo/stuttgart_0X/" + PATTERN_TEXT)


class CityscapesDataset(SequenceDataset):
    """Sequences grouped by (folder, city, seq), split where frame numbers jump.

    Args:
        root: dataset root, ``leftImg8bit_sequence``/``leftImg8bit`` folder, split folder or city folder.
        split: ``train``, ``val``, ``test``, ``train_extra`` or ``demoVideo`` (used when the root holds splits).
        cities: keep only these cities (list or comma-separated string); None keeps all.
        max_sequences: keep the first N sequences (sorted by folder, city, seq, first frame).
        frames_per_sequence: keep the first N frames of each sequence (after ``stride``).
        stride: keep every stride-th frame.
        resize: ``"WxH"`` to resize every frame (area interpolation), None for the original size.
    """

    def __init__(self, root: str | Path, split: str = "train", cities: Iterable[str] | str | None = None,
                 max_sequences: int | None = None, frames_per_sequence: int | None = None, stride: int = 1,
                 resize: str | None = None) -> None:
        check_options(max_sequences, frames_per_sequence, stride)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"Cityscapes root {self.root} does not exist or is not a folder; expected {LAYOUT}")
        size = parse_size(resize)
        search = _search_folder(self.root, split)
        wanted = _city_set(cities)
        groups: dict[tuple[Path, str, int], list[tuple[int, Path]]] = defaultdict(list)
        for path in search.rglob("*"):
            match = FILE_PATTERN.match(path.name)
            if not match or not path.is_file() or (wanted is not None and match["city"] not in wanted):
                continue
            groups[(path.parent, match["city"], int(match["seq"]))].append((int(match["frame"]), path))
        if not groups:
            which = f" for cities {sorted(wanted)}" if wanted is not None else ""
            raise FileNotFoundError(f"no Cityscapes frames{which} under {search}: searched recursively for "
                                    f"{PATTERN_TEXT}; expected {LAYOUT}")
        sequences = []
        for (folder, city, seq), frames in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), *kv[0][1:])):
            runs = _split_at_gaps(sorted(frames))
            for part, run in enumerate(runs):
                run = take_frames(run, stride, frames_per_sequence)
                name = f"{city}_{seq:06d}" + (f"_part{part}" if len(runs) > 1 else "")
                sequences.append(image_sequence(name, [p for _, p in run], [n for n, _ in run], folder,
                                                relative(folder, self.root), size))
        if max_sequences is not None:
            sequences = sequences[: int(max_sequences)]
        super().__init__(sequences)


def _search_folder(root: Path, split: str) -> Path:
    """The folder holding the requested split, or the root itself when it is not a dataset root."""
    if split == "demoVideo":
        candidates = [root / "leftImg8bit" / "demoVideo", root / "demoVideo"]
    else:
        candidates = [root / "leftImg8bit_sequence" / split, root / split]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if (root / "leftImg8bit_sequence").is_dir() or (root / "leftImg8bit").is_dir():
        present = sorted(p.name for p in root.glob("leftImg8bit*/*") if p.is_dir())
        raise FileNotFoundError(f"split {split!r} not found under {root} (found splits: {present}); expected {LAYOUT}")
    return root


def _city_set(cities: Iterable[str] | str | None) -> set[str] | None:
    if cities is None:
        return None
    if isinstance(cities, str):
        cities = cities.split(",")
    return {str(c).strip() for c in cities if str(c).strip()}


def _split_at_gaps(frames: list[tuple[int, Path]]) -> list[list[tuple[int, Path]]]:
    """Cut a sorted (frame number, path) list wherever the frame number does not increase by one."""
    runs = [[frames[0]]]
    for item in frames[1:]:
        if item[0] == runs[-1][-1][0]:
            raise ValueError(f"frame {item[0]} appears twice: {runs[-1][-1][1]} and {item[1]}; keep one of them")
        if item[0] == runs[-1][-1][0] + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
