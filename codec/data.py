"""Random training crops from images held in memory (any source: photos, video frames, residuals)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


@dataclass
class Pair:
    """Two consecutive frames (H, W, 3) and the forward flow (H, W, 2) float32 (dx, dy) from first to second."""

    first: np.ndarray
    second: np.ndarray
    flow: np.ndarray


def _to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] (H, W, 3) -> float32 [0, 1]."""
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


@dataclass
class CropSource:
    """Samples batches of random crops.

    images: (H, W, 3) uint8 RGB, or float32 in [0, 1] (e.g. residuals shifted by 0.5).
    pairs: consecutive frames with flow, for losses that compare motion (T = 2 batches).
    """

    images: list[np.ndarray]
    pairs: list[Pair] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.images and not self.pairs:
            raise ValueError("no training images: configure at least one image source")

    def sample(self, rng: np.random.Generator, batch: int, crop: int,
               pairs: bool = False) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(B, T, 3, crop, crop) in [0, 1]; with ``pairs`` also flow (B, 2, crop, crop) and valid (B, 1, crop, crop)."""
        if pairs and not self.pairs:
            raise ValueError("pair batches requested but no frame pairs were loaded")
        crops, flows, valids = [], [], []
        for _ in range(batch):
            if pairs:
                pair = self.pairs[rng.integers(len(self.pairs))]
                y, x = self._corner(rng, pair.first, crop)
                window = np.s_[y : y + crop, x : x + crop]
                crops.append(np.stack([_to_float(pair.first[window]), _to_float(pair.second[window])]))
                flow = pair.flow[window].astype(np.float32)
                gy, gx = np.mgrid[0:crop, 0:crop]
                tx, ty = gx + flow[..., 0], gy + flow[..., 1]
                # The flow loss can only compare pixels whose motion stays inside the crop.
                valids.append(((tx >= 0) & (tx <= crop - 1) & (ty >= 0) & (ty <= crop - 1))[None])
                flows.append(flow.transpose(2, 0, 1))
            else:
                image = self.images[rng.integers(len(self.images))]
                y, x = self._corner(rng, image, crop)
                crops.append(_to_float(image[y : y + crop, x : x + crop])[None])
        target = torch.from_numpy(np.stack(crops)).permute(0, 1, 4, 2, 3).contiguous()
        if not pairs:
            return target, None, None
        return (target, torch.from_numpy(np.stack(flows)),
                torch.from_numpy(np.stack(valids).astype(np.float32)))

    @staticmethod
    def _corner(rng: np.random.Generator, image: np.ndarray, crop: int) -> tuple[int, int]:
        h, w = image.shape[:2]
        if h < crop or w < crop:
            raise ValueError(f"image {w}x{h} is smaller than the {crop}-px crop")
        return int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
