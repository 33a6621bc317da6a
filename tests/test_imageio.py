from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.imageio import read_image, write_image


def _rgb(h: int = 6, w: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_roundtrip_is_rgb_and_lossless(tmp_path: Path, ext: str) -> None:
    rgb = _rgb()
    write_image(tmp_path / f"a{ext}", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / f"a{ext}"), rgb)
    # Channel order: OpenCV stores BGR, we hand out RGB.
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / f"a{ext}"))[..., ::-1], rgb)


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_image(tmp_path / "sub" / "a.png", _rgb())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = _rgb()[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    rgb = _rgb()
    bgra = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)


def test_16_bit_keeps_the_top_byte(tmp_path: Path) -> None:
    deep = np.random.default_rng(1).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    np.testing.assert_array_equal(read_image(tmp_path / "d.png"), (deep >> 8).astype(np.uint8)[..., ::-1])
    gray16 = deep[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png")[..., 1], (gray16 >> 8).astype(np.uint8))


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_corrupt_file_names_it(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.png"
    if content is None:  # a real PNG cut in half
        write_image(path, _rgb(64, 64))
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.png"):
        read_image(path)


def test_write_rejects_wrong_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.float32))
