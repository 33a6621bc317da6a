"""A folder of frames (one sequence), or a folder of such folders (one sequence each)."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.datasets.base import (
    IMAGE_EXTENSIONS,
    SequenceDataset,
    check_options,
    image_sequence,
    list_images,
    natural_key,
    parse_size,
    relative,
    take_frames,
)

LAYOUT = "ROOT/*.png|jpg|... (one sequence) or ROOT/SEQUENCE/*.png|jpg|... (one sequence per subfolder)"


class FolderDataset(SequenceDataset):
    """Frames in natural sort order (``frame2`` before ``frame10``).

    If ROOT itself holds images they form the only sequence; otherwise each subfolder holding images
    is one sequence, in natural order of the folder names. A frame's number is the last integer in
    its file name (``_leftImg8bit`` is ignored) when those are distinct, else its position.

    Args:
        root: the folder.
        max_sequences: keep the first N sequences.
        frames_per_sequence: keep the first N frames of each sequence (after ``stride``).
        stride: keep every stride-th frame.
        resize: ``"WxH"`` to resize every frame (area interpolation), None for the original size.
    """

    def __init__(self, root: str | Path, max_sequences: int | None = None, frames_per_sequence: int | None = None,
                 stride: int = 1, resize: str | None = None) -> None:
        check_options(max_sequences, frames_per_sequence, stride)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"frame folder {self.root} does not exist or is not a folder; expected {LAYOUT}")
        size = parse_size(resize)
        folders = [self.root] if list_images(self.root) else sorted(
            (p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and list_images(p)),
            key=lambda p: natural_key(p.name))
        if not folders:
            extensions = ",".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
            raise FileNotFoundError(f"no frames in {self.root}: searched {self.root}/*.{{{extensions}}} and "
                                    f"{self.root}/*/*.{{{extensions}}}; expected {LAYOUT}")
        if max_sequences is not None:
            folders = folders[: int(max_sequences)]
        sequences = []
        for folder in folders:
            paths = list_images(folder)
            numbers = _frame_numbers(paths)
            kept = take_frames(list(zip(numbers, paths, strict=True)), stride, frames_per_sequence)
            # Outputs go to <the folder holding the sequence>/<sequence name>, as for every dataset.
            holder = "." if folder == self.root else relative(folder.parent, self.root)
            sequences.append(image_sequence(folder.name, [p for _, p in kept], [n for n, _ in kept], folder,
                                            holder, size))
        super().__init__(sequences)


def _frame_numbers(paths: list[Path]) -> list[int]:
    numbers = []
    for path in paths:
        digits = re.findall(r"\d+", path.stem.replace("leftImg8bit", ""))
        numbers.append(int(digits[-1]) if digits else -1)
    if -1 in numbers or len(set(numbers)) != len(numbers):
        return list(range(len(paths)))
    return numbers
