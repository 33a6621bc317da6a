"""The one frame and sequence type every stage uses.

Frames are uint8 RGB arrays of shape (H, W, 3). A :class:`Sequence` streams its frames from disk on
iteration, so a whole dataset never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    name: str  # output file name, e.g. "aachen_000000_000019_leftImg8bit.png"
    number: int  # frame number in the source (file name number or video frame index)


@dataclass
class Sequence:
    """Consecutive frames of one camera snippet.

    ``load`` streams the images in order; ``relpath`` is the folder that holds the sequence, relative to
    the dataset root, so outputs can mirror the input layout as ``<relpath>/<name>`` (a folder-of-frames
    sequence is held by its parent folder, Cityscapes sequences by their city folder). ``check`` (when
    given) validates every frame cheaply without decoding it (headers, sizes) and raises ValueError naming
    the first bad one.
    """

    name: str
    frame_names: list[str]
    frame_numbers: list[int]
    load: Callable[[], Iterator[np.ndarray]]
    source: str
    relpath: str = "."
    check: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self.frame_names)

    def __iter__(self) -> Iterator[Frame]:
        shape = None
        count = 0
        for image, name, number in zip(self.load(), self.frame_names, self.frame_numbers, strict=False):
            if shape is None:
                shape = image.shape
            elif image.shape != shape:
                raise ValueError(
                    f"sequence {self.name}: frame {name} is {image.shape[1]}x{image.shape[0]}, "
                    f"but the sequence started at {shape[1]}x{shape[0]}; frames of one sequence "
                    "must share a size")
            count += 1
            yield Frame(image=image, name=name, number=number)
        if count != len(self.frame_names):
            raise ValueError(f"sequence {self.name}: expected {len(self.frame_names)} frames from "
                             f"{self.source}, got {count}")

