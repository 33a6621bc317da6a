import struct
from pathlib import Path

import numpy as np
import pytest

from flow.io import read_flo, read_flow, read_kitti_png, write_flo, write_kitti_png
from flow.viz import color_wheel, flow_to_color


def _flow(h: int = 6, w: int = 7) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 5, (h, w, 2)).astype(np.float32)


def test_flo_round_trip(tmp_path: Path) -> None:
    flow = _flow()
    write_flo(tmp_path / "a.flo", flow)
    assert np.array_equal(read_flo(tmp_path / "a.flo"), flow)
    got, valid = read_flow(tmp_path / "a.flo")
    assert np.array_equal(got, flow) and valid.all()
    assert [p.name for p in tmp_path.iterdir()] == ["a.flo"]  # no temporary left behind


def test_corrupt_flo_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.flo"
    with pytest.raises(FileNotFoundError, match="bad.flo"):
        read_flo(path)
    path.write_bytes(b"PIE")
    with pytest.raises(ValueError, match="bad.flo.*too short"):
        read_flo(path)
    path.write_bytes(b"JUNK" + struct.pack("<ii", 2, 2) + bytes(32))
    with pytest.raises(ValueError, match="bad.flo.*not a .flo"):
        read_flo(path)
    path.write_bytes(struct.pack("<fii", 202021.25, 4, 4) + bytes(40))
    with pytest.raises(ValueError, match="bad.flo.*needs 140 bytes"):
        read_flo(path)
    path.write_bytes(struct.pack("<fii", 202021.25, -1, 4))
    with pytest.raises(ValueError, match="implausible"):
        read_flo(path)
    nan = _flow(2, 2)
    nan[0, 0, 1] = np.nan
    path.write_bytes(struct.pack("<fii", 202021.25, 2, 2) + nan.tobytes())
    with pytest.raises(ValueError, match="bad.flo.*1 NaN"):
        read_flo(path)
    with pytest.raises(ValueError, match="NaN"):
        write_flo(tmp_path / "out.flo", nan)


def test_kitti_png_round_trip_with_mask(tmp_path: Path) -> None:
    flow = np.round(_flow() * 64) / 64
    valid = np.random.default_rng(1).random(flow.shape[:2]) > 0.3
    write_kitti_png(tmp_path / "f.png", flow, valid)
    got, got_valid = read_kitti_png(tmp_path / "f.png")
    assert np.array_equal(got_valid, valid)
    assert np.array_equal(got[valid], flow[valid]) and np.all(got[~valid] == 0)
    with pytest.raises(ValueError, match="512"):
        write_kitti_png(tmp_path / "g.png", flow * 1000)


def test_kitti_png_channel_order(tmp_path: Path) -> None:
    import cv2

    raw = np.zeros((2, 3, 3), np.uint16)
    raw[..., 0] = 1  # B: valid
    raw[..., 1] = 2**15 - 64  # G: v = -1
    raw[..., 2] = 2**15 + 128  # R: u = +2
    cv2.imwrite(str(tmp_path / "k.png"), raw)
    flow, valid = read_kitti_png(tmp_path / "k.png")
    assert valid.all() and np.all(flow[..., 0] == 2) and np.all(flow[..., 1] == -1)
    cv2.imwrite(str(tmp_path / "8bit.png"), raw.astype(np.uint8))
    with pytest.raises(ValueError, match="8bit.png.*16-bit"):
        read_kitti_png(tmp_path / "8bit.png")


def test_real_kitti_example(shared_data: Path) -> None:
    path = shared_data / "kitti_flow_example" / "flow_gt.png"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    flow, valid = read_kitti_png(path)
    assert flow.shape == (375, 1242, 2) and 0.1 < valid.mean() < 0.25
    assert -190 < flow[valid][:, 0].min() < -180


def test_color_wheel_picture() -> None:
    assert color_wheel().shape == (55, 3)
    flow = np.zeros((4, 4, 2), np.float32)
    assert np.all(flow_to_color(flow) == 255)  # no motion is white
    flow[0, 0] = (1, 0)   # right: red-ish ... the Middlebury wheel maps +x to red
    flow[0, 1] = (-1, 0)  # left: cyan-ish
    picture = flow_to_color(flow)
    assert picture.dtype == np.uint8 and picture.shape == (4, 4, 3)
    r, g, b = picture[0, 0].astype(int)
    assert r > g and r > b
    r, g, b = picture[0, 1].astype(int)
    assert g > r and b > r
