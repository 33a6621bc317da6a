"""Motion-compensated prediction of a frame from a reference and block vectors (``cv2.remap``).

Block (i, j) of the prediction is the reference sampled at x + mv[i, j] with bilinear or bicubic sub-pel
interpolation (:data:`INTERPOLATIONS`) and replicated borders. With OBMC (overlapped block motion
compensation) every pixel instead blends the predictions of the 2x2 block centres nearest to it with
bilinear weights, so the prediction, and thus the residual, has no block edges.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def _check(ref: np.ndarray, mv: np.ndarray, block: int, frame_shape: tuple[int, int] | None) -> tuple[int, int]:
    if ref.dtype != np.uint8 or ref.ndim not in (2, 3):
        raise ValueError(f"reference frame: expected uint8 (H, W, 3) or (H, W), got {ref.dtype} {ref.shape}")
    h, w = frame_shape or ref.shape[:2]
    expected = (-(-h // block), -(-w // block), 2)
    if mv.shape != expected:
        raise ValueError(f"motion vectors have shape {mv.shape}, expected {expected} for a {w}x{h} frame "
                         f"and block {block}")
    if not np.isfinite(mv).all():
        raise ValueError("motion vectors contain NaN or infinite values")
    return h, w


# Sub-pel kernels. Bilinear is a strong low-pass at half-pel ([1, 1] / 2) and blurs every prediction that
# a fractional vector makes; bicubic (Keys, a = -0.75: taps -3, 19, 19, -3 / 32 at half-pel, close to
# H.264's six-tap 1, -5, 20, 20, -5, 1 / 32) keeps the detail at four taps.
INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def interpolation_flag(name: str) -> int:
    """The cv2 flag of a sub-pel kernel name; ValueError listing the names for any other."""
    if name not in INTERPOLATIONS:
        raise ValueError(f"interpolation {name!r} is unknown; expected one of {sorted(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> np.ndarray:
    return np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))


@functools.lru_cache(maxsize=8)
def _obmc_weights(h: int, w: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel weights of the lower/right block centre, (h, w) float32, and their complements."""
    # Pixel y lies between the centres of block rows c-1 and c, c = floor((y + B/2) / B); the weight of
    # row c grows linearly from 0 at the centre of row c-1 to 1 at its own centre.
    wy = ((np.arange(h) + block // 2) % block + 0.5) / block
    wx = ((np.arange(w) + block // 2) % block + 0.5) / block
    wy_map = np.ascontiguousarray(np.broadcast_to(wy[:, None], (h, w)), dtype=np.float32)
    wx_map = np.ascontiguousarray(np.broadcast_to(wx[None, :], (h, w)), dtype=np.float32)
    return wy_map, 1 - wy_map, wx_map, 1 - wx_map


def _sample(ref: np.ndarray, field: np.ndarray, sharpen: float, interpolation: str) -> np.ndarray:
    """``ref`` sampled at ``field`` (H, W, 2) with ``interpolation``, moved ``sharpen`` of the way to Lanczos-4."""
    base = cv2.remap(ref, field, None, interpolation_flag(interpolation), borderMode=cv2.BORDER_REPLICATE)
    if not sharpen:
        return base
    lanczos = cv2.remap(ref, field, None, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(base, 1 - sharpen, lanczos, sharpen, 0)


def obmc_corners(h: int, w: int, rows: int, cols: int, block: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The blend :func:`compensate` makes with OBMC, as data: for each of the 2x2 block centres around a pixel,
    (block row, block column, weight), each (h, w); edge blocks stand in beyond the field, and the weights sum
    to 1 at every pixel. The prediction is sum_k weight_k * ref(x + mv[row_k, col_k]) before rounding."""
    half = block // 2
    wy, wy0, wx, wx0 = _obmc_weights(h, w, block)
    base_rows = (np.arange(h) + half) // block - 1
    base_cols = (np.arange(w) + half) // block - 1
    corners = []
    for a, weight_y in ((0, wy0), (1, wy)):
        for b, weight_x in ((0, wx0), (1, wx)):
            r = np.clip(base_rows + a, 0, rows - 1)[:, None]
            c = np.clip(base_cols + b, 0, cols - 1)[None, :]
            corners.append((np.broadcast_to(r, (h, w)), np.broadcast_to(c, (h, w)), weight_y * weight_x))
    return corners


def sample(ref: np.ndarray, field: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """``ref`` sampled at x + ``field`` (H, W, 2) with the sub-pel kernel ``interpolation``, uint8."""
    h, w = field.shape[:2]
    return sample_at(ref, cv2.add(_grid(h, w), np.ascontiguousarray(field, np.float32)), interpolation)


def sample_at(ref: np.ndarray, coords: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """``ref`` sampled at the (x, y) positions ``coords`` (H, W, 2) float32 with the sub-pel kernel
    ``interpolation`` and replicated borders, uint8 (H, W, C). Each output pixel depends on its position alone."""
    return _sample(ref, coords, 0.0, interpolation)


def compensate(ref: np.ndarray, mv: np.ndarray, block: int, obmc: bool = False, sharpen: float = 0.0,
               interpolation: str = "linear") -> np.ndarray:
    """Predict the current frame from ``ref`` and its backward block vectors.

    ref: uint8 (H, W, 3) (or (H, W)), the reference (for coding: the previous decoded frame).
    mv: (ceil(H/B), ceil(W/B), 2) float32 vectors (dx, dy) in pixels; block (i, j) is predicted from
    the reference at (x + dx, y + dy). Returns a uint8 prediction of ref's shape.
    interpolation: the sub-pel kernel, "linear" or "cubic" (:data:`INTERPOLATIONS`). sharpen: 0 samples with
    that kernel (what the coder does); a reduced-size decoder moves part of the way to a sharper one, since
    sampling a smaller picture blurs more than the coder's sampling did.
    """
    h, w = _check(ref, np.asarray(mv), block, None)
    mv = np.asarray(mv, np.float32)
    nby, nbx = mv.shape[:2]
    if not obmc:
        up = cv2.resize(mv, (nbx * block, nby * block), interpolation=cv2.INTER_NEAREST)[:h, :w]
        return _sample(ref, cv2.add(_grid(h, w), up), sharpen, interpolation)
    # The 2x2 block centres around each pixel: replicate the field by one block on each side and take
    # the four one-block-shifted copies, nearest-upsampled, with a half-block offset.
    padded = np.pad(mv, ((1, 1), (1, 1), (0, 0)), mode="edge")
    half = block // 2
    preds = []
    for a in (0, 1):
        for b in (0, 1):
            corner = np.ascontiguousarray(padded[a : a + nby + 1, b : b + nbx + 1])
            up = cv2.resize(corner, ((nbx + 1) * block, (nby + 1) * block), interpolation=cv2.INTER_NEAREST)
            field = np.ascontiguousarray(up[half : half + h, half : half + w])
            preds.append(_sample(ref, cv2.add(_grid(h, w), field), sharpen, interpolation))
    wy, wy0, wx, wx0 = _obmc_weights(h, w, block)
    top = cv2.blendLinear(preds[0], preds[1], wx0, wx)
    bottom = cv2.blendLinear(preds[2], preds[3], wx0, wx)
    return cv2.blendLinear(top, bottom, wy0, wy)
