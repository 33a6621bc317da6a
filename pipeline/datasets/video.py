"""One video file (anything PyAV/FFmpeg demuxes: mp4, mkv, avi, ...) as one sequence, decoded on the fly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from pipeline.datasets.base import SequenceDataset, check_options, parse_size, resize_image
from pipeline.frames import Sequence


class VideoDataset(SequenceDataset):
    """Frames ``start, start+stride, ...`` of the first video stream, at most ``frames_per_sequence`` of them.

    Frames are decoded one at a time while the sequence is iterated (never the whole video). Frame
    numbers are decode-order indices in the file; output names are ``{stem}_{index:06d}.png``. The
    frame count comes from the container header, or from demuxing every packet when the header has none.

    Args:
        path: the video file.
        start: index of the first frame to keep.
        stride: keep every stride-th frame.
        frames_per_sequence: keep at most this many frames (None: to the end); the name every dataset uses.
        resize: ``"WxH"`` to resize every frame (area interpolation), None for the original size.
    """

    def __init__(self, path: str | Path, start: int = 0, stride: int = 1, frames_per_sequence: int | None = None,
                 resize: str | None = None) -> None:
        check_options(None, frames_per_sequence, stride)
        if int(start) < 0:
            raise ValueError(f"start={start}: expected a frame index >= 0")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"video {self.path} not found; expected a video file PyAV reads (mp4, mkv, avi)")
        size = parse_size(resize)
        total = count_frames(self.path)
        indices = list(range(int(start), total, int(stride)))
        if frames_per_sequence is not None:
            indices = indices[: int(frames_per_sequence)]
        if not indices:
            raise ValueError(f"no frames in {self.path} from start={start} (the video has {total} frames)")
        wanted = set(indices)
        last = indices[-1]
        path = self.path

        def load() -> Iterator[np.ndarray]:
            with _open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame-level threads: decoding dominates reading time
                index = -1
                frames = enumerate(container.decode(stream))
                while True:
                    try:
                        index, frame = next(frames)
                    except StopIteration:
                        return
                    except av.error.FFmpegError as err:
                        raise ValueError(f"cannot decode video {path} after frame {index}: {err}") from err
                    if index in wanted:
                        yield resize_image(frame.to_ndarray(format="rgb24"), size)
                    if index >= last:
                        return

        sequence = Sequence(name=path.stem, frame_names=[f"{path.stem}_{i:06d}.png" for i in indices],
                            frame_numbers=indices, load=load, source=str(path), relpath=".")
        super().__init__([sequence])


def count_frames(path: Path) -> int:
    """Frames in the first video stream: the header's count, else the number of demuxed packets."""
    with _open(path) as container:
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read video {path}: {err}") from err
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} has no video stream")
    return container
