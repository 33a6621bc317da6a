"""Rate control: how many RNN iterations each 16x16 block of a frame gets.

- ``iterations``: every coded block gets ``iterations`` iterations.
- ``quality``: a block stops once its PSNR reaches ``psnr`` (spatially adaptive bit rate, Johnston et al. 2018),
  at most ``max_iterations``.
- ``bpp``: the longest prefix of iterations whose coded size fits ``bpp`` bits per pixel.

In P-frames, blocks whose motion-compensated prediction already reaches the target are skipped (zero
iterations) when ``skip`` is on; in ``iterations`` mode the target for skipping is ``psnr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("iterations", "quality", "bpp")
BLOCK = 16


@dataclass(frozen=True)
class RateControl:
    mode: str = "iterations"
    iterations: int = 6  # iterations mode: iterations per coded block
    max_iterations: int = 12  # quality and bpp modes: upper bound
    psnr: float = 36.0  # quality mode: per-block target (dB); also the skip threshold
    bpp: float = 0.25  # bpp mode: per-frame budget (bits per pixel, all payload included)
    skip: bool = True  # skip P-frame blocks whose prediction reaches `psnr` already

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"rate.mode={self.mode!r} is unknown; expected one of {MODES}")
        for name in ("iterations", "max_iterations"):
            if not 1 <= getattr(self, name) <= 255:
                raise ValueError(f"rate.{name} must be in 1..255, got {getattr(self, name)}")
        if self.bpp <= 0:
            raise ValueError(f"rate.bpp must be positive, got {self.bpp}")

    @property
    def coded_iterations(self) -> int:
        return self.iterations if self.mode == "iterations" else self.max_iterations


def block_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per 16x16 block of two (1, 3, H, W) images in [0, 255]: (1, 1, H/16, W/16)."""
    return F.avg_pool2d(((a - b) ** 2).mean(1, keepdim=True), BLOCK)


def mse_target(psnr: float) -> float:
    return 255.0**2 / 10 ** (psnr / 10)


def blocks_reaching(target: Tensor, estimate: Tensor, psnr: float) -> Tensor:
    """(1, 1, H/16, W/16) bool: blocks of ``estimate`` within ``psnr`` dB of ``target`` (both (1, 3, H, W), 0..255)."""
    return block_mse(target, estimate) <= mse_target(psnr)


def to_pixels(image) -> Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 255]."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()
