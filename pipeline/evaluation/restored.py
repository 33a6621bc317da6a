"""A codec followed by a learned restoration post-filter (``jpeg+rec``, ``x264+rec``): same bits, filtered frames."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from codec.restoration import load_restoration, restore
from pipeline.evaluation.codecs import CodedSequence, VideoCodec


class RestoredCodec:
    """``codec`` codes; every decoded frame then goes through the filter in ``weights`` (trained for that codec
    by ``python -m pipeline train_filter``), told the rate point as ``point x cond_scale`` (from the weights'
    JSON). The filter's time counts as decoding time."""

    def __init__(self, name: str, codec: VideoCodec, weights: str | Path) -> None:
        self.name = name
        self.codec = codec
        self.point_name = codec.point_name
        self.intra = codec.intra
        self.net, meta = load_restoration(weights)
        if meta.get("codec") != codec.name:
            raise ValueError(f"codec {name!r}: the filter {weights} was trained for {meta.get('codec')!r} "
                             f"output, not {codec.name!r}")
        self.cond_scale = float(meta["cond_scale"])

    def points(self) -> list[Any]:
        return self.codec.points()

    def code(self, frames: list[np.ndarray], point: Any) -> CodedSequence:
        coded = self.codec.code(frames, point)
        start = time.perf_counter()
        coded.decoded = [restore(self.net, frame, float(point) * self.cond_scale) for frame in coded.decoded]
        coded.decode_seconds += time.perf_counter() - start
        return coded
