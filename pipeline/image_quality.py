"""Image quality of decoded frames: PSNR and MS-SSIM, as the whole project computes them.

PSNR over the RGB channels of 8-bit frames, capped at 100 dB for identical frames; MS-SSIM as pytorch-msssim
computes it (5 Wang scales, 11x11 Gaussian window, data_range 255). MS-SSIM needs a smaller side over 160 px;
for smaller frames it is NaN (null in JSON) rather than a number from a different, fewer-scale metric.
"""

from __future__ import annotations

import cv2
import numpy as np

PSNR_CAP_DB = 100.0
MSSSIM_MIN_SIDE = 161  # as pytorch-msssim: smaller side > (11 - 1) * 2**4 for the four downsamplings
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, pytorch-msssim's defaults


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB of two uint8 (H, W, 3) frames over all channels; identical frames give PSNR_CAP_DB."""
    mse = float(np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse))


def msssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """MS-SSIM of two uint8 (H, W, 3) frames in [0, 255]; NaN when the smaller side is under MSSSIM_MIN_SIDE.

    The computation of ``pytorch_msssim.ms_ssim(X, Y, data_range=255)`` on (1, 3, H, W) float (Wang et al.
    2003: 11-tap Gaussian, sigma 1.5, valid filtering, 2x2 average pooling with zero padding for odd sizes,
    per-channel product over 5 scales, then the channel mean), written with OpenCV filters because the
    library's depthwise conv2d costs ~10x more on this CPU; the tests check both agree to 1e-5.
    """
    if original.shape != decoded.shape:
        raise ValueError(f"MS-SSIM: frames differ in shape, {original.shape} vs {decoded.shape}")
    if min(original.shape[:2]) < MSSSIM_MIN_SIDE:
        return float("nan")
    x, y = original.astype(np.float32), decoded.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    factors = []
    for level, weight in enumerate(MSSSIM_WEIGHTS):
        mu1, mu2, xx, yy, xy = (_valid_gaussian(z) for z in (x, y, x * x, y * y, x * y))
        mu12, mu11, mu22 = mu1 * mu2, mu1 * mu1, mu2 * mu2
        cs_map = (2 * (xy - mu12) + c2) / (xx - mu11 + yy - mu22 + c2)
        if level < len(MSSSIM_WEIGHTS) - 1:
            value = np.array(cv2.mean(cs_map)[:3])
            x, y = _pool2(x), _pool2(y)
        else:
            value = np.array(cv2.mean((2 * mu12 + c1) / (mu11 + mu22 + c1) * cs_map)[:3])
        factors.append(np.maximum(value, 0) ** weight)
    return float(np.prod(factors, axis=0).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


_WINDOW = _gaussian_window()


def _valid_gaussian(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian of (H, W, 3) float32, keeping only pixels whose window lies inside the image."""
    r = len(_WINDOW) // 2
    return cv2.sepFilter2D(image, -1, _WINDOW, _WINDOW, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]


def _pool2(image: np.ndarray) -> np.ndarray:
    """torch avg_pool2d(kernel 2, padding = size % 2, zeros counted) on (H, W, 3) float32."""
    h, w = image.shape[:2]
    if h % 2 or w % 2:
        image = np.pad(image, ((h % 2, h % 2), (w % 2, w % 2), (0, 0)))
    h2, w2 = image.shape[0] // 2, image.shape[1] // 2
    # INTER_AREA at exactly half size is the mean of each 2x2 block.
    return cv2.resize(image[: 2 * h2, : 2 * w2], (w2, h2), interpolation=cv2.INTER_AREA)
