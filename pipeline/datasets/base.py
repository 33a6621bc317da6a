"""What every reader returns: a sized, iterable collection of lazily loaded sequences."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from pipeline.frames import Sequence
from pipeline.imageio import read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class SequenceDataset:
    """A list of :class:`pipeline.frames.Sequence`; frames are read only while a sequence is iterated."""

    def __init__(self, sequences: list[Sequence]) -> None:
        self.sequences = sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self.sequences)

    def __getitem__(self, index: int) -> Sequence:
        return self.sequences[index]

    def __repr__(self) -> str:
        frames = sum(len(s) for s in self.sequences)
        return f"{type(self).__name__}({len(self.sequences)} sequences, {frames} frames)"


def parse_size(resize: str | None) -> tuple[int, int] | None:
    """``"1024x512"`` -> (width, height); None or "" -> None."""
    if resize is None or str(resize).strip() == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(resize))
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise ValueError(f"resize={resize!r}: expected WIDTHxHEIGHT with positive integers, e.g. 1024x512")
    return int(match[1]), int(match[2])


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize uint8 (H, W, 3) to size=(width, height) with area averaging (the least aliasing when shrinking)."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def check_options(max_sequences: int | None, frames_per_sequence: int | None, stride: int) -> None:
    for name, value in (("max_sequences", max_sequences), ("frames_per_sequence", frames_per_sequence)):
        if value is not None and int(value) < 1:
            raise ValueError(f"{name}={value}: expected a positive integer or null")
    if int(stride) < 1:
        raise ValueError(f"stride={stride}: expected a positive integer")


def take_frames(items: list, stride: int, frames_per_sequence: int | None) -> list:
    """Every ``stride``-th item, then at most ``frames_per_sequence`` of them."""
    items = items[:: int(stride)]
    return items if frames_per_sequence is None else items[: int(frames_per_sequence)]


def image_sequence(name: str, paths: list[Path], numbers: list[int], source: Path, relpath: str,
                   size: tuple[int, int] | None) -> Sequence:
    """A sequence whose frames are image files, read one at a time when iterated.

    Output frame names keep the input stem with a ``.png`` extension (outputs are lossless).
    """

    def load() -> Iterator[np.ndarray]:
        for path in paths:
            yield resize_image(read_image(path), size)

    def check() -> None:
        first = None
        for path in paths:
            try:
                with PIL.Image.open(path) as image:
                    image.verify()  # the file's structure and checksums, without decoding the pixels
                    dims = image.size
            except (OSError, SyntaxError, PIL.UnidentifiedImageError) as err:
                raise ValueError(f"frame {path} is corrupt or not an image: {err}") from err
            if first is None:
                first = (path, dims)
            elif dims != first[1]:
                raise ValueError(f"frame {path} is {dims[0]}x{dims[1]}, but {first[0].name} is "
                                 f"{first[1][0]}x{first[1][1]}: frames of one sequence must share a size")

    return Sequence(name=name, frame_names=[p.stem + ".png" for p in paths], frame_numbers=numbers, load=load,
                    source=str(source), relpath=relpath, check=check)


def natural_key(text: str) -> list:
    """Sort key so that frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural order (hidden files skipped)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."
