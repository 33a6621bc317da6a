"""Code one sequence end to end: bitstream, decoded frames and per-frame scores, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atomic import staged_dir, temporary_path
from pipeline.frames import Frame, Sequence
from pipeline.image_quality import msssim, psnr
from pipeline.imageio import write_image
from pipeline.video import container
from pipeline.video.coder import VideoCoder

# (original t-1, original t, decoded t-1, decoded t) -> (flow consistency of the pair in px, its reliable pixels)
PairScore = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[float, float]]


@dataclass
class SequenceResult:
    name: str
    bitstream: Path
    bytes: int
    frames: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return summarize(self.frames)


def summarize(rows: list[dict]) -> dict:
    """Per-frame rows of one sequence averaged; ``frames`` counts them, ``bits`` sums them.

    Flow consistency pools the reliable pixels of all pairs (each pair weighs by its reliable pixels), the
    definition ``evaluate`` uses (:class:`pipeline.evaluation.flow_scores.FlowConsistency`).
    """
    out: dict = {"frames": len(rows), "bits": int(sum(r["bits"] for r in rows))}
    for key in ("bpp", "psnr", "msssim", "iterations", "skipped"):
        values = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        out[key] = float(np.mean(values)) if values else None
    pairs = [(r["flow_consistency"], r["flow_reliable_pixels"]) for r in rows if r.get("flow_consistency") is not None]
    weight = sum(w for _, w in pairs)
    out["flow_consistency"] = sum(e * w for e, w in pairs) / weight if weight else None
    return out


def code_sequence(coder: VideoCoder, sequence: Sequence, stream_path: Path, frames_dir: Path | None = None,
                  flow_score: PairScore | None = None, verify: bool = True,
                  on_frame: Callable[[dict], None] | None = None,
                  on_verified: Callable[[], None] | None = None) -> SequenceResult:
    """Encode ``sequence`` into ``stream_path``; optionally write decoded PNGs into ``frames_dir``.

    Frames stream through: only the previous original and decoded frames are kept, and the frames the coder
    has read ahead (``rate.lookahead``). The bitstream and the
    frame folder are written under temporary names and renamed when complete. With ``verify``, the file is
    decoded again and must reproduce the encoder's reconstruction bit for bit (compared by SHA-256).
    ``on_frame`` receives each coded frame's scores, ``on_verified`` is called per verified frame (progress).
    """
    if len(sequence) == 0:
        raise ValueError(f"sequence {sequence.name} ({sequence.source}) has no frames")
    result = SequenceResult(sequence.name, stream_path, 0)
    pending: dict[int, Frame] = {}  # read by the coder, not yet coded: frames by their place in the sequence
    digests: list[bytes] = []

    def source() -> Iterator[Frame]:
        for index, frame in enumerate(sequence):
            pending[index] = frame
            yield frame

    previous: tuple[np.ndarray, np.ndarray] | None = None
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(temporary_path(stream_path))
        staging = None if frames_dir is None else stack.enter_context(staged_dir(frames_dir))
        with open(tmp, "wb") as out:
            for coded in coder.encode(source()):
                frame = pending.pop(coded.record.index)
                if coded.record.index == 0:
                    h, w = frame.image.shape[:2]
                    out.write(container.encode_header(coder.header(list(sequence.frame_names), h, w)))
                out.write(container.encode_record(coded.record))
                row = _score(frame, coded, previous, flow_score)
                result.frames.append(row)
                if on_frame is not None:
                    on_frame(row)
                if staging is not None:
                    write_image(staging / png_name(frame.name), coded.decoded)
                if verify:
                    digests.append(hashlib.sha256(coded.decoded.tobytes()).digest())
                previous = (frame.image, coded.decoded)
            out.flush()
            os.fsync(out.fileno())
        if verify:
            _verify(coder, tmp.read_bytes(), stream_path, digests, on_verified)
    result.bytes = stream_path.stat().st_size
    return result


def png_name(name: str) -> str:
    """Decoded frames keep their original names, as PNG."""
    return str(Path(name).with_suffix(".png"))


def _score(frame: Frame, coded, previous, flow_score: PairScore | None) -> dict:
    h, w = frame.image.shape[:2]
    row = {"frame": frame.name, "number": frame.number, "type": coded.record.type, "bits": coded.bits,
           "motion_bits": coded.motion_bits, "bpp": coded.bits / (h * w), "psnr": psnr(frame.image, coded.decoded),
           "msssim": msssim(frame.image, coded.decoded), "iterations": coded.iterations, "skipped": coded.skipped,
           "flow_consistency": None}
    if not np.isfinite(row["msssim"]):
        row["msssim"] = None
    if flow_score is not None and previous is not None:
        epe, reliable = flow_score(previous[0], frame.image, previous[1], coded.decoded)
        row["flow_consistency"], row["flow_reliable_pixels"] = float(epe), float(reliable)
    return row


def _verify(coder: VideoCoder, data: bytes, path: Path, expected: list[bytes],
            on_verified: Callable[[], None] | None) -> None:
    count = 0
    for index, (_, image) in enumerate(coder.decode(data, str(path))):
        if on_verified is not None:
            on_verified()
        if index >= len(expected) or hashlib.sha256(image.tobytes()).digest() != expected[index]:
            raise ValueError(f"{path}: decoded frame {index} differs from the encoder's reconstruction (a decoder "
                             "fault, or torch changed its arithmetic between encoding and decoding)")
        count += 1
    if count != len(expected):
        raise ValueError(f"{path}: decoder produced {count} frames, the encoder {len(expected)}")
