"""Our codec under evaluation: the closed-loop video coder (intra, diff or mc) swept over iteration counts."""

from __future__ import annotations

import time

import numpy as np

from codec.coder import ImageCodec
from pipeline.evaluation.codecs import CodedSequence
from pipeline.frames import Frame
from pipeline.video.coder import Motion, VideoCoder
from pipeline.video.container import encode_header, encode_record
from pipeline.video.rate import RateControl


class RNNVideoCodec:
    """``rnn_mc`` / ``rnn_diff`` / ``rnn_intra``: bits are the sequence container's frame payloads."""

    point_name = "iterations"

    def __init__(self, name: str, mode: str, iterations: list[int], weights: str, residual_weights: str,
                 motion: Motion, gop: int = 30, residual_gain: float = 2.0, skip: bool = True,
                 skip_psnr: float = 36.0) -> None:
        if not iterations or any(int(i) < 1 for i in iterations):
            raise ValueError(f"codec {name!r}: iterations {list(iterations)} must be a non-empty list of ints >= 1")
        self.name, self.mode = name, mode
        self.intra = mode == "intra"
        self._iterations = sorted(int(i) for i in iterations)
        self._intra_codec = ImageCodec.load(weights)
        self._residual_codec = ImageCodec.load(residual_weights)
        self._motion, self._gop, self._gain = motion, gop, residual_gain
        self._skip, self._skip_psnr = skip, skip_psnr

    def points(self) -> list[int]:
        return list(self._iterations)

    def code(self, frames: list[np.ndarray], point: int) -> CodedSequence:
        """Encode ``frames`` (uint8 (H, W, 3)) with ``point`` iterations per coded block, then decode the bytes."""
        rate = RateControl(mode="iterations", iterations=int(point), skip=self._skip, psnr=self._skip_psnr)
        coder = VideoCoder(self._intra_codec, self._residual_codec, self._motion, mode=self.mode, gop=self._gop,
                           rate=rate, residual_gain=self._gain)
        names = [f"{i:06d}.png" for i in range(len(frames))]
        start = time.perf_counter()
        h, w = frames[0].shape[:2]
        stream = [encode_header(coder.header(names, h, w))]
        bits = []
        inputs = (Frame(image, name, i) for i, (image, name) in enumerate(zip(frames, names, strict=True)))
        for coded in coder.encode(inputs):
            stream.append(encode_record(coded.record))
            bits.append(coded.bits)
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = [image for _, image in coder.decode(b"".join(stream))]
        decode_seconds = time.perf_counter() - start
        return CodedSequence(decoded=decoded, bits=bits, encode_seconds=encode_seconds,
                             decode_seconds=decode_seconds)
