"""Codecs wrapped with learned nets: a restoration post-filter (``jpeg+rec``, ``x264+rec``: same bits, filtered
frames), and the base that Jiang et al.'s system (:mod:`pipeline.evaluation.compact`) shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from codec.restoration import load_restoration, restore
from pipeline.evaluation.codecs import CodedSequence, VideoCodec


class WrappedCodec:
    """``codec`` with a net (from ``weights``, through ``load``) trained for that codec's output; the net is told
    each rate point as ``point x cond_scale`` (from the weights' JSON)."""

    def __init__(self, name: str, codec: VideoCodec, weights: str | Path,
                 load: Callable[[str | Path], tuple[nn.Module, dict]]) -> None:
        self.name = name
        self.codec = codec
        self.point_name = codec.point_name
        self.intra = codec.intra
        self.net, meta = load(weights)
        if meta.get("codec") != codec.name:
            raise ValueError(f"codec {name!r}: {weights} was trained for {meta.get('codec')!r} output, "
                             f"not {codec.name!r}")
        self.cond_scale = float(meta["cond_scale"])

    def points(self) -> list[Any]:
        return self.codec.points()


class RestoredCodec(WrappedCodec):
    """``codec`` codes; every decoded frame then goes through the filter in ``weights`` (trained for that codec
    by ``python -m pipeline train_filter``). The filter's time counts as decoding time."""

    def __init__(self, name: str, codec: VideoCodec, weights: str | Path) -> None:
        super().__init__(name, codec, weights, load_restoration)

    def code(self, frames: list[np.ndarray], point: Any) -> CodedSequence:
        coded = self.codec.code(frames, point)
        start = time.perf_counter()
        coded.decoded = [restore(self.net, frame, float(point) * self.cond_scale) for frame in coded.decoded]
        coded.decode_seconds += time.perf_counter() - start
        return coded
