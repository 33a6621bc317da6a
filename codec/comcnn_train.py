"""Training ComCNN and RecCNN together with the real codec in the loop (straight-through gradients).

Each step: random crops, a random quality per crop from ``qualities``, ComCNN's compact crop coded and
decoded for real by ``codec(uint8 image, quality) -> uint8 image``, RecCNN's restoration of it against the
original crop (squared error). Gradients pass the codec as if it were the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codec.comcnn import ComCNNConfig, CompactSystem, from_uint8, load_system, save_system, to_uint8
from codec.restoration_train import FitConfig, fit, start

ImageCodecFn = Callable[[np.ndarray, int], np.ndarray]


def crops(images: list[np.ndarray], rng: np.random.Generator, batch: int, crop: int) -> torch.Tensor:
    """(B, 3, crop, crop) in [0, 1] from random places of random uint8 (H, W, 3) images."""
    out = []
    for _ in range(batch):
        image = images[rng.integers(len(images))]
        y, x = (int(rng.integers(n - crop + 1)) for n in image.shape[:2])
        out.append(image[y : y + crop, x : x + crop])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def train_comcnn(config: ComCNNConfig, images: list[np.ndarray], codec: ImageCodecFn, qualities: list[int],
                 cond_scale: float, cfg: FitConfig, out_dir: str | Path, meta: dict) -> Path:
    """Train (or resume) into ``out_dir``; returns the last checkpoint's stem. ``crop`` must be even."""
    if cfg.crop % 2:
        raise ValueError(f"comcnn crops must be even, got {cfg.crop}")
    last = Path(out_dir) / "last"
    system, step, seconds = start(last, load_system, "comcnn", config, CompactSystem, cfg.seed)

    def batch_loss(rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        x = crops(images, rng, cfg.batch, cfg.crop)
        points = rng.choice(qualities, size=cfg.batch)
        compact = system.compact(x)
        decoded = torch.cat([from_uint8(codec(to_uint8(c), int(q))) for c, q in zip(compact, points, strict=True)])
        through = compact + (decoded - compact).detach()  # the codec's output, the identity's gradient
        cond = torch.from_numpy(points.astype(np.float32) * cond_scale).reshape(-1, 1, 1, 1)
        out = system.reconstruct(through, cond, x.shape[-2:])
        # Baseline for the log: no nets (area downscale, the codec at the same quality, bicubic upscale).
        down = F.avg_pool2d(x, 2)
        plain = torch.cat([from_uint8(codec(to_uint8(d), int(q))) for d, q in zip(down, points, strict=True)])
        plain = F.interpolate(plain, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        return F.mse_loss(out, x), float(F.mse_loss(plain, x))

    fit(system, batch_loss, cfg, last, save_system, meta, step, seconds)
    return last
