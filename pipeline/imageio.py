"""Read and write frames as uint8 RGB (H, W, 3), whatever the file stores.

Conversions on read (documented behaviour, not errors):
- grayscale (H, W) or (H, W, 1): replicated to three equal channels;
- gray + alpha (H, W, 2) and RGBA (H, W, 4): the alpha channel is dropped, not composited, because
  camera frames carry no transparency and compositing onto a colour would invent content;
- 16-bit: reduced to 8 bits by ``>> 8`` (keeps the top byte, no rescaling by the actual range, so
  the result does not depend on the image content).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from atomic import write_bytes


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB, shape (H, W, 3).

    Raises FileNotFoundError for a missing file and ValueError for a file OpenCV cannot decode or
    an unsupported pixel type; both messages name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    # imdecode from bytes instead of imread: works for any path encoding and lets us tell a missing
    # file (above) from an undecodable one (below).
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode image {path}: the file is corrupt, truncated or not an image "
                         "(expected PNG, JPEG or another format OpenCV reads)")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype} in {path}: expected 8- or 16-bit integers")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"unsupported channel count {channels} in {path}: expected 1, 2, 3 or 4")


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write uint8 RGB (H, W, 3) or gray (H, W) atomically; the format follows the file extension."""
    path = Path(path)
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"write_image({path}): expected uint8 (H, W, 3) RGB or (H, W) gray, "
                         f"got {rgb.dtype} {rgb.shape}")
    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ValueError(f"cannot encode image for {path}: unsupported extension {path.suffix!r}")
    write_bytes(path, encoded.tobytes())


