"""Code one sequence end to end: bitstream, decoded frames and per-frame scores, written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.evaluation.metrics import msssim, psnr
from pipeline.frames import Frame, Sequence
from pipeline.imageio import write_image
from pipeline.video import container
from pipeline.video.coder import VideoCoder

# (original t-1, original t, decoded t-1, decoded t) -> flow consistency of the pair, in px
PairScore = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]


@dataclass
class SequenceResult:
    name: str
    bitstream: Path
    bytes: int
    frames: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return summarize(self.frames)


def summarize(rows: list[dict]) -> dict:
    """Per-frame rows averaged; ``frames`` counts them, ``bits`` sums them."""
    out: dict = {"frames": len(rows), "bits": int(sum(r["bits"] for r in rows))}
    for key in ("bpp", "psnr", "msssim", "flow_consistency", "iterations", "skipped"):
        values = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        out[key] = float(np.mean(values)) if values else None
    return out


def code_sequence(coder: VideoCoder, sequence: Sequence, stream_path: Path, frames_dir: Path | None = None,
                  flow_score: PairScore | None = None, verify: bool = True,
                  on_frame: Callable[[dict], None] | None = None) -> SequenceResult:
    """Encode ``sequence`` into ``stream_path``; optionally write decoded PNGs into ``frames_dir``.

    Frames stream through: only the previous original and decoded frames are kept. The bitstream and the
    frame folder are written under temporary names and renamed when complete. With ``verify``, the file is
    decoded again and must reproduce the encoder's reconstruction bit for bit (compared by SHA-256).
    """
    if len(sequence) == 0:
        raise ValueError(f"sequence {sequence.name} ({sequence.source}) has no frames")
    stream_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stream_path.with_name(stream_path.name + ".tmp")
    staging = None if frames_dir is None else frames_dir.with_name(frames_dir.name + ".tmp")
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    result = SequenceResult(sequence.name, stream_path, 0)
    current: dict[str, Frame] = {}
    digests: list[bytes] = []

    def source() -> Iterator[Frame]:
        for frame in sequence:
            current["frame"] = frame
            yield frame

    previous: tuple[np.ndarray, np.ndarray] | None = None
    try:
        with open(tmp, "wb") as out:
            for coded in coder.encode(source()):
                frame = current["frame"]
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
            _verify(coder, tmp, digests)
        os.replace(tmp, stream_path)
        if staging is not None:
            shutil.rmtree(frames_dir, ignore_errors=True)
            os.replace(staging, frames_dir)
    finally:
        tmp.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
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
        row["flow_consistency"] = float(flow_score(previous[0], frame.image, previous[1], coded.decoded))
    return row


def _verify(coder: VideoCoder, path: Path, expected: list[bytes]) -> None:
    count = 0
    for index, (_, image) in enumerate(coder.decode(path.read_bytes(), str(path))):
        if index >= len(expected) or hashlib.sha256(image.tobytes()).digest() != expected[index]:
            raise ValueError(f"{path}: decoded frame {index} differs from the encoder's reconstruction (a decoder "
                             "fault, or torch changed its arithmetic between encoding and decoding)")
        count += 1
    if count != len(expected):
        raise ValueError(f"{path}: decoder produced {count} frames, the encoder {len(expected)}")
