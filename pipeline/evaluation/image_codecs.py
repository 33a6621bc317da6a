"""Intra baselines: every frame coded alone as JPEG or WebP through OpenCV, over a quality sweep."""

from __future__ import annotations

import time

import cv2
import numpy as np

from pipeline.evaluation.codecs import CodedSequence

# format -> (file extension for cv2.imencode, quality flag, valid quality range)
_FORMATS = {
    "jpeg": (".jpg", cv2.IMWRITE_JPEG_QUALITY, (0, 100)),
    "webp": (".webp", cv2.IMWRITE_WEBP_QUALITY, (1, 100)),
}


class OpenCVImageCodec:
    """JPEG or WebP per frame. The bit count is the whole encoded file (its headers are part of the stream)."""

    point_name = "quality"
    intra = True

    def __init__(self, name: str, format: str, qualities: list[int]) -> None:
        if format not in _FORMATS:
            raise ValueError(f"codec {name!r}: format {format!r} is not one of {sorted(_FORMATS)}")
        self.ext, self.flag, (lo, hi) = _FORMATS[format]
        bad = [q for q in qualities if not lo <= int(q) <= hi]
        if not qualities or bad:
            raise ValueError(f"codec {name!r}: qualities {list(qualities)} must be a non-empty list in [{lo}, {hi}]")
        self.name = name
        self.format = format
        self._qualities = sorted(int(q) for q in qualities)

    def points(self) -> list[int]:
        return list(self._qualities)

    def code(self, frames: list[np.ndarray], point: int) -> CodedSequence:
        """Code each uint8 (H, W, 3) RGB frame alone at quality ``point``."""
        payloads: list[bytes] = []
        start = time.perf_counter()
        for frame in frames:
            ok, buf = cv2.imencode(self.ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [self.flag, int(point)])
            if not ok:
                raise ValueError(f"codec {self.name!r}: OpenCV could not encode a {frame.shape} frame as {self.format}")
            payloads.append(buf.tobytes())
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = [cv2.cvtColor(cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                   for p in payloads]
        decode_seconds = time.perf_counter() - start
        return CodedSequence(decoded=decoded, bits=[8 * len(p) for p in payloads],
                             encode_seconds=encode_seconds, decode_seconds=decode_seconds)
