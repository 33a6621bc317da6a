from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.datasets import VideoDataset

W, H, N = 64, 32, 12


def _write_video(path: Path, codec: str = "mpeg4") -> None:
    """Frame i is a flat gray of level 20 * i, so decoded frames can be told apart despite lossy coding."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), 20 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    _write_video(path)
    return path


def _levels(dataset: VideoDataset) -> list[int]:
    return [round(float(f.image.mean()) / 20) for f in dataset[0]]


def test_reads_every_frame(video: Path) -> None:
    data = VideoDataset(video)
    assert len(data) == 1 and len(data[0]) == N and data[0].name == "clip"
    assert data[0].frame_names[3] == "clip_000003.png"
    assert _levels(data) == list(range(N))


def test_start_stride_limit(video: Path) -> None:
    data = VideoDataset(video, start=2, stride=3, frames_per_sequence=3)
    assert data[0].frame_numbers == [2, 5, 8]
    assert _levels(data) == [2, 5, 8]
    assert VideoDataset(video, start=10, stride=5)[0].frame_numbers == [10]


def test_resize(video: Path) -> None:
    assert {f.image.shape for f in VideoDataset(video, frames_per_sequence=2, resize="32x16")[0]} == {(16, 32, 3)}


def test_mkv_without_frame_count_in_the_header_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    _write_video(path)
    with av.open(str(path)) as container:
        header_count = container.streams.video[0].frames
    data = VideoDataset(path)
    assert len(data[0]) == N
    assert _levels(data) == list(range(N))
    assert header_count in (0, N)  # Matroska usually stores none: then the reader demuxed to count


def test_errors(tmp_path: Path, video: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        VideoDataset(tmp_path / "missing.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        VideoDataset(tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match="no frames.*12 frames"):
        VideoDataset(video, start=12)
