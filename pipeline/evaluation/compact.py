"""Jiang et al. 2017's system as an evaluated codec (``comcnn_jpeg``): ComCNN halves every frame, a standard
codec codes the small frames, RecCNN restores full-size frames from them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codec.comcnn import compact_frame, from_uint8, load_system, to_uint8
from pipeline.evaluation.codecs import CodedSequence, VideoCodec
from pipeline.evaluation.restored import WrappedCodec


class CompactCodec(WrappedCodec):
    """``codec`` codes ComCNN's half-size frames (its bits are all the bits); RecCNN, told the point as
    ``point x cond_scale``, restores them. ComCNN's time counts as encoding, RecCNN's as decoding."""

    def __init__(self, name: str, codec: VideoCodec, weights: str | Path) -> None:
        super().__init__(name, codec, weights, load_system)

    def code(self, frames: list[np.ndarray], point: Any) -> CodedSequence:
        h, w = frames[0].shape[:2]
        start = time.perf_counter()
        compact = [compact_frame(self.net, f) for f in frames]
        compact_seconds = time.perf_counter() - start
        coded = self.codec.code(compact, point)
        start = time.perf_counter()
        cond = torch.full((1, 1, 1, 1), float(point) * self.cond_scale)
        with torch.inference_mode():
            decoded = [to_uint8(self.net.reconstruct(from_uint8(d), cond, (h + h % 2, w + w % 2))[0])[:h, :w]
                       for d in coded.decoded]
        return CodedSequence(decoded=decoded, bits=coded.bits,
                             encode_seconds=coded.encode_seconds + compact_seconds,
                             decode_seconds=coded.decode_seconds + time.perf_counter() - start,
                             motion_bits=coded.motion_bits)
