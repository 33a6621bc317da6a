"""Decoding one bitstream at 1/2 or 1/4 size: a light head in place of the decoder's most expensive layer.

The decoder grows its output by recurrent layers, each followed by depth-to-space (H/16 -> H/8 -> H/4 -> H/2
-> H); the last one, at H/2, takes about 60 % of a full decode's time. A head keeps the first three layers
exactly (their recurrent state carries everything the bits said so far) and replaces the last one and the output
convolution by two convolutions at H/4 (1x1 + ReLU, 3x3), then depth-to-space to H/2 for half size: the same
bits give the smaller image in 44-45 % of the time of a full decode plus resize on a quiet core (bench/multires.py
``timing``; at high rates it falls short of that decode's detail). Encoder and bitstream are untouched; a head is
trained against the area-downscaled original with the trunk frozen (:mod:`codec.scaled_train`). Shipped beside its
model as ``NAME.half`` and, for the intra model, ``NAME.quarter`` (sequences decode 1/4 through the 1/2 loop).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec import sparse
from codec.layers import make_cell
from codec.model import RNNCodec
from codec.restoration import load_weights, save_weights

# Supported decode scales and the size divisor f of each; a head's file is NAME.<HEAD_NAMES[f]>.
FACTORS: dict[float, int] = {1.0: 1, 0.5: 2, 0.25: 4}
HEAD_NAMES: dict[int, str] = {2: "half", 4: "quarter"}
TRUNK = 3  # decoder layers a head keeps exactly: it reads the third one's output, at H/4


@dataclass(frozen=True)
class HeadConfig:
    factor: int  # output at 1 / factor of the coded size: 2 or 4
    hidden: int = 32  # channels between the head's two convolutions
    memory: int = 0  # channels of the head's own recurrent state at H/4 (0: none)


class ScaledHead(nn.Module):
    """(B, C, H/4, W/4) trunk output -> (B, 3, H/f, W/f) output increment in [-0.5, 0.5].

    In place of the decoder's last recurrent layer (at H/2, the most expensive one) and its output convolution:
    a 1x1 convolution + ReLU and a 3x3 convolution at H/4, then depth-to-space to H/2 for half size. The
    decoder's recurrent state lives in the exact trunk; with ``memory`` channels the head also keeps a small GRU
    state of its own at H/4 (1x1 input, 3x3 hidden convolution) beside the 1x1 mix, as the layer it replaces
    remembers what it drew in earlier iterations. A conditional model's head also sees the condition image at H/f
    (space-to-depth to H/4; a zero-initialised input, as the model's own).
    """

    trunk = TRUNK

    def __init__(self, model: RNNCodec, config: HeadConfig) -> None:
        super().__init__()
        if config.factor not in HEAD_NAMES:
            raise ValueError(f"no decoder head for factor {config.factor}; expected one of {sorted(HEAD_NAMES)}")
        self.config = config
        self.factor = config.factor
        self.depth = 4 // config.factor  # depth-to-space from H/4 to H/f: 2 for half size, 1 for quarter
        in_ch = model.dec_rnn[TRUNK - 1].hidden
        self.mix = nn.Conv2d(in_ch, config.hidden, 1)
        self.cell = make_cell("gru", in_ch, config.memory, 1, 1, 3) if config.memory else None
        self.out = nn.Conv2d(config.hidden + config.memory, 3 * self.depth**2, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.cond = None
        if model.config.condition:
            self.cond = nn.Conv2d(3 * self.depth**2, in_ch, 1, bias=False)
            nn.init.zeros_(self.cond.weight)

    def forward(self, x: Tensor, cond: Tensor | None = None, state: tuple | None = None,
                positions: Tensor | None = None) -> tuple[Tensor, tuple | None]:
        """-> (output, new state): ``state`` is what the last iteration returned (None at first, and always for a
        head without memory), ``positions`` (H/4, W/4) bool where the state is updated (None: everywhere)."""
        if self.cond is not None:
            if cond is None:
                raise ValueError("this head belongs to a conditional model: it needs the condition image")
            x = x + self.cond(F.pixel_unshuffle(cond, self.depth))
        features = F.relu(self.mix(x))
        if self.cell is not None:
            remembered, state = sparse.step(self.cell, x, state, positions)
            features = torch.cat([features, remembered], dim=1)
        out = self.out(features)
        return torch.tanh(F.pixel_shuffle(out, self.depth)) * 0.5, state


def with_memory(head: ScaledHead, model: RNNCodec, memory: int) -> ScaledHead:
    """``head`` (without memory) grown by ``memory`` state channels: it computes what ``head`` does until trained,
    since the output weights of the new channels start at zero."""
    if head.cell is not None:
        raise ValueError("this head has a memory already")
    grown = ScaledHead(model, replace(head.config, memory=memory)).to(head.out.weight.device)
    missing, unexpected = grown.load_state_dict({k: v for k, v in head.state_dict().items() if k != "out.weight"},
                                                strict=False)
    if unexpected or any(not k.startswith(("cell.", "out.weight")) for k in missing):
        raise ValueError(f"cannot grow this head: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        grown.out.weight[:, : head.config.hidden] = head.out.weight
    return grown


def factor_of(scale: float, available: Container[int] | None = None) -> int:
    """The size divisor of a decode ``scale`` (1, 0.5 or 0.25); a clear error for any other, or for one whose
    divisor is not among ``available`` (e.g. a model's heads)."""
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
