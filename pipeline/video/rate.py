"""Rate control: how many RNN iterations each 16x16 block of a frame gets.

- ``rdo`` (default): one knob, ``quality`` (like x264's CRF: lower is better and costs more), sets the
  Lagrange multiplier lambda (:meth:`RateControl.lagrangian`). Every iteration is computed on the blocks still
  going and kept by each block only where the distortion it removed beats lambda times its bits (:func:`keeps`);
  a block that does not keep one finishes, and the decoder step is redone without its bits. In a P-frame the
  first decision is skip (prediction only) or code. I-frames use lambda / ``ip_ratio``. With
  ``propagation`` > 0 each block's distortion also counts for the later frames that predict from it
  (x264's macroblock-tree; :mod:`pipeline.video.lookahead`), over the next ``lookahead`` frames of its GOP.
  ``aq_strength`` > 0 weighs each block's distortion down with its texture (x264's adaptive quantisation,
  :func:`pipeline.video.distortion.adaptive_weights`), on top of any ``distortion``.
- ``iterations``: every coded block gets ``iterations`` iterations; P-frame blocks whose prediction reaches
  ``psnr`` are skipped when ``skip`` is on.
- ``bpp``: the longest prefix of iterations whose coded size fits ``bpp`` bits per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("rdo", "iterations", "bpp")
DISTORTIONS = ("mse", "ssim", "flow")
BLOCK = 16


@dataclass(frozen=True)
class RateControl:
    mode: str = "rdo"
    quality: float = 30.0  # rdo: lambda = LAMBDA_SCALE * 2 ** ((quality - 12) / 3), as x264/HM map QP to lambda
    ip_ratio: float = 2.0  # rdo: I-frames are coded with lambda / ip_ratio (their blocks are predicted from)
    distortion: str = "mse"  # rdo: mse | ssim | flow (pipeline/video/distortion.py)
    propagation: float = 1.0  # rdo: macroblock-tree strength (x264: 5 (1 - qcompress) = 2.0); 0 = off
    lookahead: int = 40  # rdo with propagation: frames looked ahead (x264's rc-lookahead default)
    aq_strength: float = 0.3  # rdo: distortion weight (2 var + C2) ** -aq_strength per block (x264's AQ); 0 = off
    iterations: int = 6  # iterations mode: iterations per coded block
    max_iterations: int = 8  # rdo and bpp modes: upper bound
    psnr: float = 36.0  # iterations mode: P-frame blocks whose prediction reaches this are skipped
    bpp: float = 0.25  # bpp mode: per-frame budget (bits per pixel, all payload included)
    skip: bool = True  # iterations and bpp modes: skip P-frame blocks whose prediction reaches `psnr`

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"rate.mode={self.mode!r} is unknown; expected one of {MODES}")
        if self.distortion not in DISTORTIONS:
            raise ValueError(f"rate.distortion={self.distortion!r} is unknown; expected one of {DISTORTIONS}")
        for name in ("iterations", "max_iterations"):
            if not 1 <= getattr(self, name) <= 255:
                raise ValueError(f"rate.{name} must be in 1..255, got {getattr(self, name)}")
        if not 0 <= self.quality <= 63:
            raise ValueError(f"rate.quality must be in 0..63 (like a CRF), got {self.quality}")
        if self.aq_strength < 0:
            raise ValueError(f"rate.aq_strength must be >= 0 (0 = off), got {self.aq_strength}")
        if self.propagation < 0 or self.lookahead < 1:
            raise ValueError(f"rate.propagation must be >= 0 and rate.lookahead >= 1, got {self.propagation} and "
                             f"{self.lookahead}")
        if self.bpp <= 0 or self.ip_ratio <= 0:
            raise ValueError(f"rate.bpp and rate.ip_ratio must be positive, got {self.bpp} and {self.ip_ratio}")

    @property
    def coded_iterations(self) -> int:
        return self.iterations if self.mode == "iterations" else self.max_iterations

    def lagrangian(self, frame_type: str) -> float:
        """lambda in squared 8-bit RGB error summed over a block per bit, for an "I" or "P" frame."""
        lam = LAMBDA_SCALE * 2 ** ((self.quality - 12) / 3)
        return lam / self.ip_ratio if frame_type == "I" else lam


# Scale of the quality -> lambda map: HM's 0.57 for luma SSE, times 3 for the three RGB channels. The
# curve's position against x264's CRF is measured in bench/RESULTS.md, not promised.
LAMBDA_SCALE = 0.57 * 3


def keeps(before: Tensor, after: Tensor, rate: Tensor, lam: float) -> Tensor:
    """(h, w) bool: blocks whose distortion drop ``before - after`` (h, w) beats ``lam`` x ``rate`` bits (h, w)."""
    return before - after > lam * rate


def block_sse(a: Tensor, b: Tensor) -> Tensor:
    """Squared error summed over each 16x16 block and the 3 channels of (1, 3, H, W) images: (1, 1, H/16, W/16)."""
    return F.avg_pool2d(((a - b) ** 2).sum(1, keepdim=True), BLOCK) * BLOCK**2


def mse_target(psnr: float) -> float:
    return 255.0**2 / 10 ** (psnr / 10)


def blocks_reaching(target: Tensor, estimate: Tensor, psnr: float) -> Tensor:
    """(1, 1, H/16, W/16) bool: blocks of ``estimate`` within ``psnr`` dB of ``target`` (both (1, 3, H, W), 0..255)."""
    return block_sse(target, estimate) <= mse_target(psnr) * 3 * BLOCK**2


def to_pixels(image) -> Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 255]."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()
