"""Our codec under evaluation: the closed-loop video coder (intra, diff or mc) swept over one rate setting."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.evaluation.codecs import CodedSequence
from pipeline.frames import Frame
from pipeline.video.build import make_coder
from pipeline.video.coder import Motion, VideoCoder
from pipeline.video.container import encode_header, encode_record
from pipeline.video.rate import RateControl


class RNNVideoCodec:
    """``rnn_mc`` / ``rnn_diff`` / ``rnn_intra``: bits are the sequence container's frame payloads.

    The coder is the one ``run`` builds (:func:`pipeline.video.build.make_coder`) from the same ``codec``,
    ``motion`` and ``rate`` groups and GOP; each point sets the rate field ``sweep`` (``quality`` under
    ``rate.mode=rdo``, ``iterations`` under ``rate.mode=iterations``).
    """

    def __init__(self, name: str, mode: str, sweep: str, points: list[float], codec: Mapping[str, Any],
                 motion: Motion, rate: Mapping[str, Any], gop: int, decode: bool = True) -> None:
        if sweep not in RateControl.__dataclass_fields__:
            raise ValueError(f"codec {name!r}: sweep={sweep!r} is not a rate setting; expected one of "
                             f"{sorted(RateControl.__dataclass_fields__)}")
        if not points:
            raise ValueError(f"codec {name!r}: points must be a non-empty list of {sweep} values")
        self.name, self.mode, self.point_name = name, mode, f"rate.{sweep}"
        self.intra = mode == "intra"
        # Lowest rate first: a higher quality value means fewer bits, more iterations mean more.
        self._points = sorted(points, reverse=sweep == "quality")
        self._sweep = sweep
        self._decode = decode
        self._coder = make_coder(codec, motion, rate, mode, gop)  # weights read once; a bad setting fails here
        for point in self._points:
            replace(self._coder.rate, **{sweep: point})  # so does a bad point

    def points(self) -> list[float]:
        return list(self._points)

    def code(self, frames: list[np.ndarray], point: float) -> CodedSequence:
        """Encode ``frames`` (uint8 (H, W, 3)) at ``point``, then decode the bytes (with ``decode=False`` the
        encoder's reconstruction is returned instead: the same frames, as the tests check, in half the time)."""
        base = self._coder
        coder = VideoCoder(base.intra, base.residual, base.motion, mode=base.mode, gop=base.gop,
                           rate=replace(base.rate, **{self._sweep: point}), residual_gain=base.residual_gain,
                           loop_filter=base.loop_filter, precision=base.precision)
        names = [f"{i:06d}.png" for i in range(len(frames))]
        start = time.perf_counter()
        h, w = frames[0].shape[:2]
        stream = [encode_header(coder.header(names, h, w))]
        bits, motion_bits, conditions, reconstructed = [], [], [], []
        inputs = (Frame(image, name, i) for i, (image, name) in enumerate(zip(frames, names, strict=True)))
        for coded in coder.encode(inputs):
            stream.append(encode_record(coded.record))
            bits.append(coded.bits)
            motion_bits.append(coded.motion_bits)
            conditions.append(coded.condition)
            reconstructed.append(coded.decoded)
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = [image for _, image in coder.decode(b"".join(stream))] if self._decode else reconstructed
        decode_seconds = time.perf_counter() - start
        return CodedSequence(decoded=decoded, bits=bits, encode_seconds=encode_seconds,
                             decode_seconds=decode_seconds, motion_bits=motion_bits, conditioning=conditions)
