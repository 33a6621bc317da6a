"""Flow files: Middlebury ``.flo`` (via cv2, header validated here) and KITTI 16-bit PNG.

``.flo``: float32 202021.25 ("PIEH"), int32 width, int32 height, then row-major (dx, dy) float32.
KITTI: 16-bit 3-channel PNG with u = (R - 2^15) / 64, v = (G - 2^15) / 64, valid = B > 0
(OpenCV reads and writes BGR, so B is channel 0).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from atomic import temporary_path
from flow.warp import check_flow

FLO_MAGIC = 202021.25
_FLO_HEADER = struct.Struct("<fii")
KITTI_OFFSET = 2.0**15
KITTI_SCALE = 64.0


def read_flo(path: str | Path) -> np.ndarray:
    """Read a ``.flo`` file -> (H, W, 2) float32; corrupt, truncated or NaN files raise ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(_FLO_HEADER.size)
    if len(head) < _FLO_HEADER.size:
        raise ValueError(f"{path}: {size} bytes is too short for a .flo header (12 bytes)")
    magic, width, height = _FLO_HEADER.unpack(head)
    if magic != FLO_MAGIC:
        raise ValueError(f"{path}: not a .flo file (magic {head[:4]!r}, expected b'PIEH')")
    if not (0 < width < 2**16 and 0 < height < 2**16):
        raise ValueError(f"{path}: implausible .flo size {width}x{height}")
    expected = _FLO_HEADER.size + 8 * width * height
    if size != expected:
        raise ValueError(f"{path}: .flo of {width}x{height} needs {expected} bytes, the file has {size}")
    flow = cv2.readOpticalFlow(str(path))
    if flow is None or flow.shape != (height, width, 2):
        raise ValueError(f"{path}: OpenCV could not read the .flo file")
    if not np.isfinite(flow).all():
        raise ValueError(f"{path}: flow contains {int((~np.isfinite(flow)).sum())} NaN or infinite values")
    return flow


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write (H, W, 2) float32 flow to ``path`` (.flo), atomically (temporary name, then rename)."""
    path = Path(path)
    flow = check_flow(flow, str(path))
    if not np.isfinite(flow).all():
        raise ValueError(f"{path}: refusing to write a flow with NaN or infinite values")
    with temporary_path(path) as tmp:
        if not cv2.writeOpticalFlow(str(tmp), np.ascontiguousarray(flow)):
            raise OSError(f"{path}: OpenCV could not write the .flo file")


def read_kitti_png(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI flow PNG -> ((H, W, 2) float32 flow, (H, W) bool valid)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"{path}: not a readable PNG")
    if raw.dtype != np.uint16 or raw.ndim != 3 or raw.shape[2] != 3:
        raise ValueError(f"{path}: a KITTI flow PNG is 16-bit with 3 channels, got {raw.dtype} {raw.shape}")
    flow = (raw[..., [2, 1]].astype(np.float32) - KITTI_OFFSET) / KITTI_SCALE
    valid = raw[..., 0] > 0
    flow[~valid] = 0
    return flow, valid


def write_kitti_png(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write flow (and its valid mask, default all) as a KITTI 16-bit PNG; |flow| must be < 512 px."""
    path = Path(path)
    flow = check_flow(flow, str(path))
    valid = np.ones(flow.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    if valid.shape != flow.shape[:2]:
        raise ValueError(f"{path}: valid mask {valid.shape} does not match the flow {flow.shape[:2]}")
    if not np.isfinite(flow[valid]).all():
        raise ValueError(f"{path}: refusing to write NaN or infinite flow")
    encoded = np.round(np.where(valid[..., None], flow, 0) * KITTI_SCALE + KITTI_OFFSET)
    if encoded.min() < 0 or encoded.max() > 65535:
        raise ValueError(f"{path}: flow beyond +-512 px does not fit the KITTI 16-bit encoding")
    raw = np.dstack([valid.astype(np.uint16), encoded[..., 1], encoded[..., 0]]).astype(np.uint16)
    with temporary_path(path) as tmp:
        if not cv2.imwrite(str(tmp), raw):
            raise OSError(f"{path}: OpenCV could not write the PNG")


def read_flow(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ground truth by extension: ``.flo`` (all pixels valid) or KITTI ``.png`` -> (flow, valid)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".flo":
        flow = read_flo(path)
        return flow, np.ones(flow.shape[:2], bool)
    if suffix == ".png":
        return read_kitti_png(path)
    raise ValueError(f"{path}: unknown flow format {suffix!r}; expected .flo or a KITTI .png")


def write_flow(path: str | Path, flow: np.ndarray) -> None:
    """Write flow by extension: ``.flo`` or KITTI ``.png``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".flo":
        write_flo(path, flow)
    elif suffix == ".png":
        write_kitti_png(path, flow)
    else:
        raise ValueError(f"{path}: unknown flow format {suffix!r}; expected .flo or .png")
