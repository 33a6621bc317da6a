"""The one interface every codec under evaluation implements: ours and the baselines alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class CodedSequence:
    """What coding one sequence at one rate point produced.

    ``decoded`` holds uint8 (H, W, 3) RGB frames, as many and as large as the input; ``bits`` is the coded
    payload per frame (bitstream bits, not a container's overhead); the seconds are wall-clock totals for
    the whole sequence.
    """

    decoded: list[np.ndarray]
    bits: list[int]
    encode_seconds: float
    decode_seconds: float
    motion_bits: list[int] | None = None  # of ``bits``, the motion vectors' per frame, where the codec says
    # per frame, what a restoration filter may be told beyond the rate point (ours: per-block iteration counts
    # and frame type, pipeline.video.loop_filter.condition), where the codec says
    conditioning: list[np.ndarray] | None = None

    def check(self, frames: list[np.ndarray], codec: str, point: Any) -> None:
        """Raise ``ValueError`` unless this output matches ``frames`` in count, size and dtype."""
        where = f"codec {codec!r} at point {point!r}"
        if len(self.decoded) != len(frames) or len(self.bits) != len(frames):
            raise ValueError(f"{where}: {len(frames)} frames in, but {len(self.decoded)} decoded frames and "
                             f"{len(self.bits)} bit counts out; expected one of each per input frame")
        for i, (src, out) in enumerate(zip(frames, self.decoded, strict=True)):
            if out.shape != src.shape or out.dtype != np.uint8:
                raise ValueError(f"{where}: decoded frame {i} is {out.dtype} {out.shape}, expected uint8 {src.shape}")
        if any(b < 0 for b in self.bits):
            raise ValueError(f"{where}: negative bit count in {self.bits}")


@runtime_checkable
class VideoCodec(Protocol):
    """A codec the evaluation can sweep.

    ``name`` labels curves and tables ("x264", "jpeg", "rnn_mc"); ``point_name`` says what a point is
    ("crf", "quality"; ours name the rate setting they sweep, "rate.quality" or "rate.iterations", and get the
    per-rate-point flow table);
    ``intra`` is true for codecs that code every frame alone (their BD-rate anchor is the intra reference).
    """

    name: str
    point_name: str
    intra: bool

    def points(self) -> list[Any]:
        """The rate sweep from config, lowest rate first where the codec knows the order."""
        ...

    def code(self, frames: list[np.ndarray], point: Any) -> CodedSequence:
        """Encode and decode ``frames`` (uint8 (H, W, 3) RGB) at ``point``."""
        ...
