"""A small restoration CNN for decoded frames (Jiang et al. 2017's RecCNN role; DnCNN / AR-CNN style).

Residual learning: the network predicts the coding error and adds it back. It runs at half resolution after
a space-to-depth step (so 3x3 kernels see 6x6 pixels and it costs a quarter of the operations), with
replicate padding (zero "same" padding leaves border artifacts). A conditioning map tells it what the
decoder knows: a codec's quality setting as one constant plane, or a per-block map such as our iteration
counts; it is upsampled (nearest) to the working resolution.

Weights: ``NAME.safetensors`` + ``NAME.json`` (the :class:`RestorationConfig` and how they were trained).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from atomic import temporary_path, write_bytes


@dataclass(frozen=True)
class RestorationConfig:
    channels: int = 32  # feature width at half resolution
    depth: int = 7  # conv layers in all
    cond: int = 1  # conditioning planes

    def __post_init__(self) -> None:
        if self.channels < 1 or self.depth < 2 or self.cond < 0:
            raise ValueError(f"restoration config {self}: need channels >= 1, depth >= 2, cond >= 0")


class RestorationNet(nn.Module):
    """(B, 3, H, W) decoded frame in [0, 1] and (B, cond, h, w) conditioning -> (B, 3, H, W) restored frame.

    H and W need not be even (edges are replicated and cropped again).
    """

    def __init__(self, config: RestorationConfig) -> None:
        super().__init__()
        self.config = config
        width = config.channels
        layers: list[nn.Module] = []
        for i in range(config.depth):
            c_in = 12 + config.cond if i == 0 else width
            c_out = 12 if i == config.depth - 1 else width
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="replicate"))
            if i < config.depth - 1:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)  # starts as the identity: the decoded frame unchanged
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        features = F.pixel_unshuffle(padded - 0.5, 2)  # centred input (ReLU nets learn faster)
        if self.config.cond:
            if cond is None:
                raise ValueError(f"this restoration net needs {self.config.cond} conditioning planes")
            features = torch.cat([features, F.interpolate(cond, size=features.shape[-2:], mode="nearest")], 1)
        return x + F.pixel_shuffle(self.body(features), 2)[..., :h, :w]


def restore(net: RestorationNet, frame: np.ndarray, cond: np.ndarray | float) -> np.ndarray:
    """Restore one uint8 (H, W, 3) RGB frame; ``cond`` is a scalar or a (cond, h, w) map. Returns uint8."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255
    c = np.asarray(cond, dtype=np.float32)
    c = torch.from_numpy(np.full((net.config.cond, 1, 1), c, np.float32) if c.ndim == 0 else c)[None]
    with torch.inference_mode():
        y = net(x, c)
    return (y[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def save_weights(net: nn.Module, stem: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` (``meta``: the config that builds ``net``, and more), each via
    a temporary name; the JSON last."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_name(stem.name + ".safetensors")
    with temporary_path(weights) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    write_bytes(stem.with_name(stem.name + ".json"), json.dumps(meta, indent=2).encode())
    return weights


def load_weights(stem: str | Path, build: Callable[[dict[str, Any]], nn.Module],
                 what: str) -> tuple[nn.Module, dict[str, Any]]:
    """``build(meta)`` from ``stem.json`` with ``stem.safetensors`` loaded, in eval mode and channels-last (as
    :func:`codec.zoo.load_model`), and the metadata; a missing file or damaged weights get an error naming
    ``what`` and the stem."""
    stem = Path(str(stem).removesuffix(".safetensors").removesuffix(".json"))
    try:
        meta = json.loads(stem.with_name(stem.name + ".json").read_text())
        net = build(meta)
        net.load_state_dict(load_file(str(stem.with_name(stem.name + ".safetensors"))))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{what} weights {stem}: {err.filename} is missing") from err
    except (json.JSONDecodeError, KeyError, TypeError, RuntimeError, SafetensorError) as err:
        raise ValueError(f"{what} weights {stem} are damaged or not a {what}: {err}") from err
    return net.to(memory_format=torch.channels_last).eval(), meta


def save_restoration(net: RestorationNet, stem: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Weights and ``{"restoration": config, **extra}`` as ``stem.safetensors`` + ``stem.json``."""
    return save_weights(net, stem, {"restoration": asdict(net.config), **(extra or {})})


def load_restoration(stem: str | Path) -> tuple[RestorationNet, dict[str, Any]]:
    """The net from ``stem.json`` + ``stem.safetensors`` (eval mode) and its metadata; clear errors if broken."""
    return load_weights(stem, lambda meta: RestorationNet(RestorationConfig(**meta["restoration"])),
                        "restoration net")
