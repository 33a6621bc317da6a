"""Video baselines through PyAV (FFmpeg): x264, x265 and SVT-AV1 with a CRF sweep and our GOP.

Every encoder is set up low-delay like our coder: an I-frame every ``gop`` frames and never elsewhere
(no scene-cut I-frames), no B-frames, 4:2:0. Bits are the encoder's packet sizes (in-band parameter sets
included, no container), so they compare with our bitstream rather than with an mp4 file.
"""

from __future__ import annotations

import os
import re
import time
from fractions import Fraction

import av
import numpy as np

from pipeline.evaluation.codecs import CodedSequence

# SVT-AV1 prints its whole configuration to stderr at every encoder start unless told to log errors only.
os.environ.setdefault("SVT_LOG", "1")

# encoder -> (default decoder, options that make it low-delay with a fixed GOP; {gop} is filled in)
_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "libx264": ("h264", {"x264-params": "keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"}),
    "libx265": ("hevc", {"x265-params": "keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0"
                                        ":info=0:log-level=error"}),
    # pred-struct=1 is SVT-AV1's low-delay prediction structure; scd=0 turns scene-change detection off.
    "libsvtav1": ("libdav1d", {"svtav1-params": "keyint={gop}:pred-struct=1:scd=0"}),
}


class PyAVCodec:
    """One FFmpeg encoder swept over CRF values; frames go in and out as uint8 (H, W, 3) RGB."""

    point_name = "crf"
    intra = False

    def __init__(self, name: str, encoder: str, crfs: list[int], gop: int = 30, preset: str | int = "medium",
                 fps: float = 17.0, decoder: str | None = None, pix_fmt: str = "yuv420p") -> None:
        if encoder not in _ENCODERS:
            raise ValueError(f"codec {name!r}: encoder {encoder!r} is not one of {sorted(_ENCODERS)}")
        if not crfs:
            raise ValueError(f"codec {name!r}: crfs must be a non-empty list")
        if int(gop) < 1:
            raise ValueError(f"codec {name!r}: gop must be >= 1 (I-frame period in frames), got {gop}")
        try:
            av.codec.Codec(encoder, "w")
        except av.codec.codec.UnknownCodecError as err:
            raise ValueError(f"codec {name!r}: this PyAV build has no encoder {encoder!r}") from err
        self.name = name
        self.encoder = encoder
        self.decoder = decoder or _ENCODERS[encoder][0]
        self.gop = int(gop)
        self.preset = str(preset)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.pix_fmt = pix_fmt
        # Higher CRF is fewer bits: list the sweep lowest rate first.
        self._crfs = sorted((int(c) for c in crfs), reverse=True)

    def points(self) -> list[int]:
        return list(self._crfs)

    def options(self, crf: int) -> dict[str, str]:
        """The FFmpeg private options used at ``crf``."""
        opts = {key: value.format(gop=self.gop) for key, value in _ENCODERS[self.encoder][1].items()}
        return {"crf": str(int(crf)), "preset": self.preset, **opts}

    def _metadata_bytes(self, payload: bytes) -> int:
        """Bytes of H.264 SEI NAL units in an Annex-B packet; x264 writes its version and full option
        string (~0.5 kB) as SEI into the first frame, which no decoder needs (x265's ``info=0`` drops its own)."""
        if self.decoder != "h264":
            return 0
        starts = [m.end() for m in re.finditer(b"\x00\x00\x01", payload)]
        ends = [*(s - 3 for s in starts[1:]), len(payload)]
        return sum(end - start + 3 for start, end in zip(starts, ends, strict=True)
                   if start < len(payload) and payload[start] & 0x1F == 6)

    def code(self, frames: list[np.ndarray], point: int) -> CodedSequence:
        """Encode then decode uint8 (H, W, 3) RGB ``frames`` at CRF ``point``."""
        h, w = frames[0].shape[:2]
        if h % 2 or w % 2:
            raise ValueError(f"codec {self.name!r}: {self.pix_fmt} needs even frame sizes, got {w}x{h}")
        enc = av.CodecContext.create(self.encoder, "w")
        enc.width, enc.height, enc.pix_fmt = w, h, self.pix_fmt
        enc.time_base, enc.framerate = 1 / self.fps, self.fps
        enc.gop_size, enc.max_b_frames = self.gop, 0
        enc.options = self.options(point)
        packets: list[av.Packet] = []
        start = time.perf_counter()
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            packets += enc.encode(frame)
        packets += enc.encode(None)
        encode_seconds = time.perf_counter() - start

        bits = [0] * len(frames)
        for packet in packets:
            if packet.pts is None or not 0 <= packet.pts < len(frames):
                raise ValueError(f"codec {self.name!r}: encoder returned a packet with pts {packet.pts}, "
                                 f"expected 0..{len(frames) - 1}")
            bits[packet.pts] += 8 * (packet.size - self._metadata_bytes(bytes(packet)))

        dec = av.CodecContext.create(self.decoder, "r")
        if enc.extradata:
            dec.extradata = enc.extradata
        decoded: list[np.ndarray] = []
        start = time.perf_counter()
        for packet in [*packets, None]:
            decoded += [f.to_ndarray(format="rgb24") for f in dec.decode(packet)]
        decode_seconds = time.perf_counter() - start
        if len(decoded) != len(frames):
            raise ValueError(f"codec {self.name!r} at CRF {point}: {len(frames)} frames encoded, "
                             f"{len(decoded)} decoded")
        return CodedSequence(decoded=decoded, bits=bits, encode_seconds=encode_seconds,
                             decode_seconds=decode_seconds)
