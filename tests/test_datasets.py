"""Cityscapes and folder readers on small trees built here (real-data checks are in test_datasets_shared.py)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from pipeline.datasets import CityscapesDataset, FolderDataset
from pipeline.imageio import write_image

W, H = 16, 8


def _frame(value: int, w: int = W, h: int = H) -> np.ndarray:
    image = np.full((h, w, 3), value % 256, np.uint8)
    image[0, 0] = (1, 2, 3)  # catches RGB/BGR swaps
    return image


def _write_snippet(folder: Path, city: str, seq: int, frames, ext: str = ".png") -> None:
    for f in frames:
        write_image(folder / f"{city}_{seq:06d}_{f:06d}_leftImg8bit{ext}", _frame(f))


@pytest.fixture
def cityscapes(tmp_path: Path) -> Path:
    seq = tmp_path / "leftImg8bit_sequence"
    _write_snippet(seq / "train" / "aachen", "aachen", 0, range(0, 5))
    _write_snippet(seq / "train" / "aachen", "aachen", 1, [10, 11, 12, 20, 21])  # a gap after 12
    _write_snippet(seq / "train" / "bochum", "bochum", 3, range(19, 23), ext=".jpg")
    _write_snippet(seq / "val" / "frankfurt", "frankfurt", 0, range(0, 3))
    _write_snippet(tmp_path / "leftImg8bit" / "demoVideo" / "stuttgart_00", "stuttgart_00", 0, range(1, 5))
    (seq / "train" / "aachen" / "README.txt").write_text("not a frame")
    return tmp_path


def test_groups_by_city_and_sequence_and_splits_at_gaps(cityscapes: Path) -> None:
    data = CityscapesDataset(cityscapes)
    assert [s.name for s in data] == ["aachen_000000", "aachen_000001_part0", "aachen_000001_part1", "bochum_000003"]
    assert [s.frame_numbers for s in data] == [[0, 1, 2, 3, 4], [10, 11, 12], [20, 21], [19, 20, 21, 22]]
    assert data[0].relpath == "leftImg8bit_sequence/train/aachen"
    assert data[0].frame_names[0] == "aachen_000000_000000_leftImg8bit.png"
    frames = list(data[0])
    assert [f.number for f in frames] == [0, 1, 2, 3, 4]
    assert frames[2].image.shape == (H, W, 3) and frames[2].image.dtype == np.uint8
    assert tuple(frames[2].image[0, 0]) == (1, 2, 3) and frames[2].image[4, 4, 0] == 2


def test_jpeg_frames_are_read(cityscapes: Path) -> None:
    bochum = CityscapesDataset(cityscapes, cities=["bochum"])
    assert len(bochum) == 1
    images = [f.image for f in bochum[0]]
    assert bochum[0].frame_names[0] == "bochum_000003_000019_leftImg8bit.png"  # outputs are lossless PNG
    assert abs(int(images[1][4, 8, 0]) - 20) <= 3  # JPEG is lossy


def test_val_split_and_demo_video(cityscapes: Path) -> None:
    assert [s.name for s in CityscapesDataset(cityscapes, split="val")] == ["frankfurt_000000"]
    demo = CityscapesDataset(cityscapes, split="demoVideo")
    assert [s.name for s in demo] == ["stuttgart_00_000000"]
    assert demo[0].frame_numbers == [1, 2, 3, 4]
    assert demo[0].relpath == "leftImg8bit/demoVideo/stuttgart_00"


def test_root_may_be_a_split_or_a_city_folder(cityscapes: Path) -> None:
    split = CityscapesDataset(cityscapes / "leftImg8bit_sequence" / "train")
    assert len(split) == 4 and split[0].relpath == "aachen"
    city = CityscapesDataset(cityscapes / "leftImg8bit_sequence" / "train" / "bochum")
    assert [s.name for s in city] == ["bochum_000003"] and city[0].relpath == "."
    assert len(CityscapesDataset(cityscapes / "leftImg8bit_sequence", split="val")) == 1


def test_selection_options(cityscapes: Path) -> None:
    assert [s.name for s in CityscapesDataset(cityscapes, cities="aachen")] == [
        "aachen_000000", "aachen_000001_part0", "aachen_000001_part1"]
    assert len(CityscapesDataset(cityscapes, max_sequences=2)) == 2
    data = CityscapesDataset(cityscapes, stride=2, frames_per_sequence=2)
    assert data[0].frame_numbers == [0, 2]
    assert [f.number for f in data[0]] == [0, 2]
    assert data[1].frame_numbers == [10, 12]


def test_resize(cityscapes: Path) -> None:
    data = CityscapesDataset(cityscapes, resize="8x4", max_sequences=1)
    assert {f.image.shape for f in data[0]} == {(4, 8, 3)}


def test_instantiate_from_config(cityscapes: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    cfg = OmegaConf.load(repo / "conf" / "dataset" / "cityscapes.yaml")
    cfg.root, cfg.cities, cfg.resize = str(cityscapes), ["aachen"], "8x4"
    data = instantiate(cfg)
    assert isinstance(data, CityscapesDataset) and len(data) == 3


def test_missing_root_names_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere.*leftImg8bit_sequence"):
        CityscapesDataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"nowhere.*ROOT/\*"):
        FolderDataset(tmp_path / "nowhere")


def test_no_frames_names_the_pattern(tmp_path: Path, cityscapes: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"_leftImg8bit\.\{png,jpg\}"):
        CityscapesDataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="cities"):
        CityscapesDataset(cityscapes, cities=["atlantis"])
    with pytest.raises(FileNotFoundError, match=r"split 'test' not found"):
        CityscapesDataset(cityscapes, split="test")
    with pytest.raises(FileNotFoundError, match=r"\*\.\{png,jpg"):
        FolderDataset(tmp_path / "empty")


def test_corrupt_frame_fails_when_reached_and_names_the_file(cityscapes: Path) -> None:
    bad = cityscapes / "leftImg8bit_sequence" / "train" / "aachen" / "aachen_000000_000003_leftImg8bit.png"
    bad.write_bytes(b"garbage")
    frames = iter(CityscapesDataset(cityscapes)[0])
    assert [next(frames).number for _ in range(3)] == [0, 1, 2]  # earlier frames still stream
    with pytest.raises(ValueError, match="aachen_000000_000003_leftImg8bit.png"):
        next(frames)


def test_mixed_sizes_in_one_sequence_fail_clearly(tmp_path: Path) -> None:
    write_image(tmp_path / "a_1.png", _frame(1))
    write_image(tmp_path / "a_2.png", _frame(2, w=W * 2))
    with pytest.raises(ValueError, match=r"a_2.png is 32x8.*16x8"):
        list(FolderDataset(tmp_path)[0])


def test_duplicate_frame_in_png_and_jpg_is_an_error(tmp_path: Path) -> None:
    _write_snippet(tmp_path, "ulm", 0, [0, 1])
    _write_snippet(tmp_path, "ulm", 0, [1], ext=".jpg")
    with pytest.raises(ValueError, match="appears twice"):
        CityscapesDataset(tmp_path)


def test_grayscale_rgba_and_16_bit_frames_are_converted(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "f1.png"), np.full((H, W), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "f2.png"), np.full((H, W, 4), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "f3.png"), np.full((H, W, 3), 100 * 256 + 55, np.uint16))
    frames = list(FolderDataset(tmp_path)[0])
    assert [f.image.shape for f in frames] == [(H, W, 3)] * 3
    assert all(f.image.dtype == np.uint8 and (f.image == 100).all() for f in frames)


def test_folder_natural_sort_and_folder_of_folders(tmp_path: Path) -> None:
    for seq in ("seq10", "seq2", "seq1"):
        for f in (10, 9, 1, 2):
            write_image(tmp_path / seq / f"frame{f}.png", _frame(f))
    (tmp_path / "notes").mkdir()  # a folder without frames is not a sequence
    data = FolderDataset(tmp_path)
    assert [s.name for s in data] == ["seq1", "seq2", "seq10"]
    assert data[0].frame_names == ["frame1.png", "frame2.png", "frame9.png", "frame10.png"]
    assert data[0].frame_numbers == [1, 2, 9, 10] and data[0].relpath == "."  # outputs: seq1/, not seq1/seq1/
    assert [int(f.image[4, 4, 0]) for f in data[2]] == [1, 2, 9, 10]
    flat = FolderDataset(tmp_path / "seq2", stride=2, frames_per_sequence=1, resize="8x4")
    assert len(flat) == 1 and flat[0].relpath == "." and flat[0].frame_numbers == [1]
    assert next(iter(flat[0])).image.shape == (4, 8, 3)
    assert len(FolderDataset(tmp_path, max_sequences=2)) == 2


def test_folder_numbers_fall_back_to_positions(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", "c_7.png"):
        write_image(tmp_path / name, _frame(1))
    assert FolderDataset(tmp_path)[0].frame_numbers == [0, 1, 2]


@pytest.mark.parametrize("bad", [{"stride": 0}, {"max_sequences": 0}, {"frames_per_sequence": -1},
                                 {"resize": "1024"}, {"resize": "0x5"}])
def test_bad_options(cityscapes: Path, bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        CityscapesDataset(cityscapes, **bad)
