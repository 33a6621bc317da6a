"""Readers on the real data beside the checkout (skipped when it is absent)."""

from pathlib import Path

import numpy as np

from pipeline.datasets import CityscapesDataset, FolderDataset, VideoDataset


def test_cityscapes_sequence_as_folders(shared_data: Path) -> None:
    data = FolderDataset(shared_data / "cityscapes_sequence", frames_per_sequence=2)
    assert [s.name for s in data] == [f"seq000{i}" for i in range(5)]
    assert data[0].frame_numbers == [0, 1]
    frame = next(iter(data[0]))
    assert frame.image.shape == (1024, 2048, 3) and frame.image.dtype == np.uint8
    assert frame.name == "aachen_000000_000000_leftImg8bit.png"


def test_cityscapes_sequence_as_cityscapes(shared_data: Path) -> None:
    data = CityscapesDataset(shared_data / "cityscapes_sequence", stride=10, resize="512x256")
    assert [s.name for s in data] == [f"aachen_00000{i}" for i in range(5)]
    assert [len(s) for s in data] == [3] * 5 and data[4].relpath == "seq0004"
    assert data[0].frame_numbers == [0, 10, 20]
    assert {f.image.shape for f in data[0]} == {(256, 512, 3)}


def test_dashcam_video(shared_data: Path) -> None:
    path = shared_data / "udacity_dashcam" / "solidWhiteRight.mp4"
    data = VideoDataset(path, start=200, stride=5)
    assert data[0].frame_numbers == [200, 205, 210, 215, 220]
    images = [f.image for f in data[0]]
    assert images[0].shape == (540, 960, 3) and len(images) == 5
    assert len(VideoDataset(path)[0]) == 221
