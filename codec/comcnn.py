"""Jiang et al. 2017's compact-representation system: ComCNN halves the image, a standard codec codes the
small image, RecCNN restores the full-size image from its decoded, upscaled version.

ComCNN ends in a sigmoid (the paper's notes: it helped) around a learned correction of the area-downscaled
image, so a new net starts as a plain 2x area downscale; RecCNN is :class:`codec.restoration.RestorationNet`
(residual learning on the bicubic upscale, told the codec's quality). The codec is not differentiable: in
training it runs for real in the forward pass and passes gradients straight through (x + (codec(x) - x)
detached), the "differentiable stand-in" of the paper's alternatives.

Weights: ``NAME.safetensors`` (``com.*`` and ``rec.*``) + ``NAME.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.restoration import RestorationConfig, RestorationNet, load_weights, save_weights


@dataclass(frozen=True)
class ComCNNConfig:
    channels: int = 32
    depth: int = 4
    rec: RestorationConfig = RestorationConfig()

    def __post_init__(self) -> None:
        if isinstance(self.rec, dict):
            object.__setattr__(self, "rec", RestorationConfig(**self.rec))
        if self.channels < 1 or self.depth < 2:
            raise ValueError(f"comcnn config {self}: need channels >= 1, depth >= 2")


class ComCNN(nn.Module):
    """(B, 3, H, W) in [0, 1], H and W even -> (B, 3, H/2, W/2) compact image in (0, 1)."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, padding_mode="replicate"), nn.ReLU(True),
                                   nn.Conv2d(channels, channels, 3, stride=2, padding=1, padding_mode="replicate"),
                                   nn.ReLU(True)]
        for _ in range(depth - 3):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"), nn.ReLU(True)]
        layers.append(nn.Conv2d(channels, 3, 3, padding=1, padding_mode="replicate"))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        down = F.avg_pool2d(x, 2).clamp(1e-3, 1 - 1e-3)
        return torch.sigmoid(torch.logit(down) + self.body(x - 0.5))


class CompactSystem(nn.Module):
    """ComCNN + RecCNN. ``compact`` makes the image the codec codes; ``reconstruct`` restores the decoded one."""

    def __init__(self, config: ComCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.com = ComCNN(config.channels, config.depth)
        self.rec = RestorationNet(config.rec)

    def compact(self, x: Tensor) -> Tensor:
        return self.com(x)

    def reconstruct(self, decoded: Tensor, cond: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, 3, h, w) decoded compact image, (B, cond, 1, 1) quality -> (B, 3, *size) in [0, 1]."""
        up = F.interpolate(decoded, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
        return self.rec(up, cond)


def to_uint8(image: Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (image.detach().permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def from_uint8(image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


def compact_frame(system: CompactSystem, frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (ceil(H/2), ceil(W/2), 3): ComCNN's half-size frame (odd edges repeated)."""
    h, w = frame.shape[:2]
    with torch.inference_mode():
        return to_uint8(system.compact(from_uint8(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")))[0])


def upscale_frame(decoded: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 half-size frame -> uint8 (H, W, 3), bicubic: what RecCNN restores."""
    h, w = size
    up = F.interpolate(from_uint8(decoded), size=(h + h % 2, w + w % 2), mode="bicubic", align_corners=False)
    return to_uint8(up.clamp(0, 1)[0])[:h, :w]


def save_system(system: CompactSystem, stem: str | Path, extra: dict[str, Any] | None = None) -> Path:
    return save_weights(system, stem, {"comcnn": asdict(system.config), **(extra or {})})


def load_system(stem: str | Path) -> tuple[CompactSystem, dict[str, Any]]:
    return load_weights(stem, lambda meta: CompactSystem(ComCNNConfig(**meta["comcnn"])), "ComCNN system")
