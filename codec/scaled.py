"""Decoding one bitstream at 1/2 or 1/4 size: a light head in place of the decoder's expensive last layers.

The decoder grows its output by recurrent layers, each followed by depth-to-space (H/16 -> H/8 -> H/4 -> H/2
-> H); the layers at H/4 and H/2 do most of the work (about 80 % of a full decode's time). A head takes the
features the third layer would read (at H/4), runs one light recurrent cell there (the third layer's own
weights to start with, its hidden-state convolution cut to 1x1) and one convolution to the image at H/2 (by
depth-to-space) or H/4, so the same bits give the smaller image for about a quarter of a full decode's work.
Encoder and bitstream are untouched; a head is trained against the area-downscaled original with the trunk
frozen (:mod:`codec.scaled_train`). Shipped beside its model as ``NAME.half`` and ``NAME.quarter``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.layers import make_cell
from codec.model import RNNCodec
from codec.restoration import load_weights, save_weights

# Supported decode scales and the size divisor f of each; a head's file is NAME.<HEAD_NAMES[f]>.
FACTORS: dict[float, int] = {1.0: 1, 0.5: 2, 0.25: 4}
HEAD_NAMES: dict[int, str] = {2: "half", 4: "quarter"}
TRUNK = 2  # decoder layers a head keeps: it starts at H/4


@dataclass(frozen=True)
class HeadConfig:
    factor: int  # output at 1 / factor of the coded size: 2 or 4
    hidden: int = 64  # channels of the head's recurrent cell (the model's third layer's width: it starts from it)


class ScaledHead(nn.Module):
    """(B, C, H/4, W/4) trunk features -> (B, 3, H/f, W/f) output in [-0.5, 0.5], recurrent over iterations.

    A conditional model's head also sees the condition image at H/f (space-to-depth to H/4; a zero-initialised
    input, as the model's own).
    """

    trunk = TRUNK

    def __init__(self, model: RNNCodec, config: HeadConfig) -> None:
        super().__init__()
        if config.factor not in HEAD_NAMES:
            raise ValueError(f"no decoder head for factor {config.factor}; expected one of {sorted(HEAD_NAMES)}")
        self.config = config
        self.factor = config.factor
        self.depth = 4 // config.factor  # depth-to-space from H/4 to H/f: 2 for half size, 1 for quarter
        third = model.dec_rnn[TRUNK]
        in_ch = third.conv_x.in_channels
        self.cell = make_cell(model.config.unit, in_ch, config.hidden, 3, 1, 1)
        self.out = nn.Conv2d(config.hidden, 3 * self.depth**2, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if config.hidden == third.hidden:
            self._start_from(third)
        self.cond = None
        if model.config.condition:
            self.cond = nn.Conv2d(3 * self.depth**2, in_ch, 1, bias=False)
            nn.init.zeros_(self.cond.weight)

    @torch.no_grad()
    def _start_from(self, layer: nn.Module) -> None:
        """The model's third layer's weights, its k x k hidden convolution cut to the centre tap."""
        own = self.cell.state_dict()
        for name, value in layer.state_dict().items():
            if name == "conv_h.weight":
                k = value.shape[-1] // 2
                value = value[..., k : k + 1, k : k + 1]
            own[name] = value.clone()
        self.cell.load_state_dict(own)

    def forward(self, x: Tensor, state: Any, cond: Tensor | None = None) -> tuple[Tensor, Any]:
        if self.cond is not None:
            if cond is None:
                raise ValueError("this head belongs to a conditional model: it needs the condition image")
            x = x + self.cond(F.pixel_unshuffle(cond, self.depth))
        x, state = self.cell(x, state)
        return torch.tanh(F.pixel_shuffle(self.out(x), self.depth)) * 0.5, state


def factor_of(scale: float, available: dict[int, ScaledHead] | None = None) -> int:
    """The size divisor of a decode ``scale`` (1, 0.5 or 0.25); a clear error for any other, or for one whose head
    is not among ``available``."""
    supported = [s for s, f in FACTORS.items() if f == 1 or available is None or f in available]
    factor = FACTORS.get(float(scale))
    if factor is None or float(scale) not in supported:
        raise ValueError(f"scale={scale} is not supported; expected one of {', '.join(map(str, supported))}")
    return factor


def scaled_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """(height, width) of an image decoded at 1 / ``factor``: rounded up, so no source pixel is lost."""
    return -(-height // factor), -(-width // factor)


def head_stem(stem: str | Path, factor: int) -> Path:
    stem = Path(stem)
    return stem.with_name(f"{stem.name}.{HEAD_NAMES[factor]}")


def save_head(head: ScaledHead, model: RNNCodec, stem: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """``stem.safetensors`` + ``stem.json`` (head config, the trunk's model id, ``extra``)."""
    meta = {"head": asdict(head.config), "trunk": model.model_id().hex(), **(extra or {})}
    return save_weights(head, stem, meta)


def load_head(stem: str | Path, model: RNNCodec) -> ScaledHead:
    """A head saved by :func:`save_head`; an error when it was trained on another model's trunk."""
    head, meta = load_weights(stem, lambda m: ScaledHead(model, HeadConfig(**m["head"])), "decoder head")
    if meta.get("trunk") != model.model_id().hex():
        raise ValueError(f"decoder head {stem} was trained for model {meta.get('trunk')}, not for these weights "
                         f"({model.model_id().hex()}); retrain it (codec/README.md)")
    return head.to(model.dec_out.weight.device)


def load_heads(stem: str | Path, model: RNNCodec) -> dict[int, ScaledHead]:
    """{factor: head} for every head shipped beside the model ``stem``."""
    heads = {}
    for factor in HEAD_NAMES:
        path = head_stem(stem, factor)
        if path.with_name(path.name + ".json").is_file():
            heads[factor] = load_head(path, model)
    return heads


def area_downscale(x: Tensor, factor: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H/f, W/f) mean of each f x f cell (H, W divisible by f; as cv2.INTER_AREA)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)
