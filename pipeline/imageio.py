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
import PIL.Image

from atomic import write_bytes


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB, shape (H, W, 3).

    Raises FileNotFoundError for a missing file and ValueError for a file that is corrupt, truncated, not an
    image or of an unsupported pixel type; both messages name the file. Decoded by Pillow, whose errors are
    exceptions (OpenCV's decoders print libpng / libjpeg messages to the terminal and may hand back a partly
    decoded truncated JPEG).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with PIL.Image.open(path) as image:
            image.load()
            if image.mode.startswith("I"):  # 16-bit gray ("I;16*", or "I" holding 16-bit values)
                gray = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            if image.mode == "F":
                raise ValueError(f"unsupported pixel type float32 in {path}: expected 8- or 16-bit integers")
            return np.array(image.convert("RGB"))  # writable; drops alpha (L+A, RGBA), expands palettes and gray
    except (OSError, SyntaxError, PIL.UnidentifiedImageError) as err:
        raise ValueError(f"cannot decode image {path}: the file is corrupt, truncated or not an image ({err})") from err


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


