"""The closed-loop video coder: I-frames with the intra RNN model, P-frames as RNN-coded residuals.

Modes (identical outputs, so they compare directly):
- ``intra``: every frame coded alone;
- ``diff``: residual against the previous *decoded* frame, no motion;
- ``mc``: residual against the motion-compensated previous decoded frame (default).

The encoder reconstructs exactly what the decoder will (the codec's encoder runs the decoder on the bits it
sends), so prediction never drifts.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torch import Tensor

from codec.bitstream import meta_chunk
from codec.coder import ImageCodec
from codec.model import Codes, pad
from codec.precision import PRECISIONS
from codec.scaled import HEAD_NAMES, factor_of, scaled_size
from pipeline.frames import Frame
from pipeline.video import container, lookahead
from pipeline.video.distortion import adaptive_weights, block_weights
from pipeline.video.loop_filter import LoopFilter, condition
from pipeline.video.rate import RateControl, block_sse, blocks_reaching, keeps, to_pixels

MODES = ("intra", "diff", "mc")
# Smallest size a sequence's prediction loop runs at: smaller decodes run the loop at 1/2 and area-downscale each
# frame on output. Nothing corrects a reduced loop's prediction, and at 1/4 it drifted 4-8 dB from the full
# decode within a GOP against about 2 dB at 1/2 (bench/multires.py), for little more decode time.
LOOP_FACTOR = 2


class Motion(Protocol):
    def estimate(self, cur: np.ndarray, ref: np.ndarray, previous: np.ndarray | None = None,
                 rate_lambda: float | None = None) -> np.ndarray: ...
    def compensate(self, ref: np.ndarray, mv: np.ndarray, factor: int = 1) -> np.ndarray: ...
    def encode(self, mv: np.ndarray, frame_shape: tuple[int, ...] | None = None) -> bytes: ...
    def decode(self, data: bytes, frame_shape: tuple[int, ...]) -> np.ndarray: ...


@dataclass
class CodedFrame:
    record: container.FrameRecord
    decoded: np.ndarray  # (H, W, 3) uint8, what the decoder will output
    motion_bits: int
    residual_bits: int
    iterations: float  # mean iterations per 16x16 block
    skipped: float  # fraction of blocks with zero iterations
    prediction: np.ndarray | None = None  # (H, W, 3) uint8 prediction of a P-frame (residual training data)
    condition: np.ndarray | None = None  # (2, h, w) what the in-loop filter is told per 16x16 block

    @property
    def bits(self) -> int:
        return self.motion_bits + self.residual_bits


class VideoCoder:
    """Codes a stream of frames into container records and back.

    ``residual_gain`` scales residuals (frame - prediction, in [-1, 1]) before they are clipped to the codec's
    [-0.5, 0.5] input: motion-compensated residuals are small, so a gain above 1 spends the codec's precision
    where they live; with gain 2 residuals beyond +-64 levels are clipped (a fraction of a percent of pixels).
    ``loop_filter`` restores every decoded frame before it is output and used as a reference. ``precision``
    (:data:`codec.precision.PRECISIONS`) is the networks' arithmetic; the stream records it and decoding uses it.
    """

    def __init__(self, intra: ImageCodec, residual: ImageCodec, motion: Motion, mode: str = "mc", gop: int = 30,
                 rate: RateControl | None = None, residual_gain: float = 2.0,
                 loop_filter: LoopFilter | None = None, precision: str = "fp32") -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is unknown; expected one of {MODES}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is unknown; expected one of {PRECISIONS}")
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        self.intra, self.residual, self.motion = intra, residual, motion
        self.mode, self.gop = mode, gop
        self.rate = rate or RateControl()
        self.residual_gain = float(residual_gain)
        self.loop_filter = loop_filter
        self.precision = precision

    # ---- header --------------------------------------------------------------------------------------
    def header(self, names: list[str], height: int, width: int) -> dict[str, Any]:
        return {"mode": self.mode, "gop": self.gop, "height": height, "width": width, "names": names,
                "residual_gain": self.residual_gain, "intra_model": self.intra.model_id.hex(),
                "residual_model": self.residual.model_id.hex(), "compensation": self._compensation(),
                "threads": torch.get_num_threads(), "loop_filter": self._filter_id(), "precision": self.precision}

    def _filter_id(self) -> str | None:
        return self.loop_filter.filter_id if self.loop_filter else None

    def _compensation(self) -> dict[str, Any]:
        """The motion settings the decoder must share (prediction has to match the encoder's exactly)."""
        return {key: getattr(self.motion, key, None) for key in ("block", "obmc", "interpolation")}

    def check_header(self, header: dict[str, Any], source: str) -> None:
        for key, model in (("intra_model", self.intra), ("residual_model", self.residual)):
            if header.get(key) != model.model_id.hex():
                raise ValueError(f"{source}: coded with {key.replace('_', ' ')} {header.get(key)}, but the loaded "
                                 f"model is {model.model_id.hex()}; decode with the weights that encoded it")
        if header.get("loop_filter") != self._filter_id():
            raise ValueError(f"{source}: coded with in-loop filter {header.get('loop_filter')}, but the decoder's is "
                             f"{self._filter_id()}; set codec.loop_filter to the weights that encoded it")
        if header.get("mode") == "mc" and header.get("compensation") != self._compensation():
            raise ValueError(f"{source}: coded with motion settings {header.get('compensation')}, but the decoder "
                             f"is configured with {self._compensation()}; pass matching motion.* overrides")
        if header.get("threads") != torch.get_num_threads():
            # The network's float sums depend on the thread count: pixels may differ by a level, and P-frames
            # carry that forward.
            warnings.warn(f"{source}: encoded with {header.get('threads')} torch threads, decoding with "
                          f"{torch.get_num_threads()}: frames may differ from the encoder's by a level; pass "
                          f"threads={header.get('threads')} to decode exactly", stacklevel=2)

    # ---- encoding ------------------------------------------------------------------------------------
    def frame_type(self, index: int) -> str:
        return "I" if self.mode == "intra" or index % self.gop == 0 else "P"

    def encode(self, frames: Iterable[Frame]) -> Iterator[CodedFrame]:
        previous: np.ndarray | None = None
        vectors: np.ndarray | None = None
        if self.rate.mode == "rdo" and self.rate.propagation > 0:
            weighted = self._look_ahead(frames)
        else:
            weighted = ((frame, None) for frame in frames)
        for index, (frame, propagation) in enumerate(weighted):
            if self.frame_type(index) == "I":
                coded = self._encode_intra(frame.image, index, propagation)
                vectors = None
            else:
                coded, vectors = self._encode_inter(frame.image, previous, vectors, index, propagation)
            previous = coded.decoded
            yield coded

    def _look_ahead(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, np.ndarray]]:
        """(frame, its blocks' propagation weights) in order, each once the ``rate.lookahead`` frames after it
        in its GOP have been analysed (:mod:`pipeline.video.lookahead`)."""
        window: deque[tuple[Frame, lookahead.BlockCosts]] = deque()
        previous = None

        def first() -> tuple[Frame, np.ndarray]:
            weights = lookahead.propagation_weights([costs for _, costs in window], self.rate.propagation)
            return window.popleft()[0], weights

        for index, frame in enumerate(frames):
            luma = lookahead.half_luma(frame.image)
            intra = self.frame_type(index) == "I"
            while intra and window:  # nothing after a GOP's end predicts from it
                yield first()
            window.append((frame, lookahead.analyse(luma, None if intra else previous)))
            previous = luma
            if len(window) > self.rate.lookahead:
                yield first()
        while window:
            yield first()

    def _encode_intra(self, image: np.ndarray, index: int, propagation: np.ndarray | None = None) -> CodedFrame:
        target = to_pixels(image)
        codes, chunks = self._code(self.intra, target / 255.0 - 0.5, lambda recon: (recon + 0.5) * 255.0,
                                   pad(target), "I", None, 0, propagation=propagation)
        decoded = _to_uint8((codes.recon + 0.5) * 255.0)
        return self._record("I", index, decoded, b"", codes, chunks)

    def _encode_inter(self, image: np.ndarray, previous: np.ndarray, vectors: np.ndarray | None,
                      index: int, propagation: np.ndarray | None = None) -> tuple[CodedFrame, np.ndarray | None]:
        mv_bytes = b""
        if self.mode == "mc":
            lam = self.rate.lagrangian("P") if self.rate.mode == "rdo" else None
            vectors = self.motion.estimate(image, previous, vectors, lam)
            mv_bytes = self.motion.encode(vectors, image.shape)
            prediction = self.motion.compensate(previous, vectors)
        else:
            prediction = previous
        target, pred = to_pixels(image), to_pixels(prediction)
        x = ((target - pred) / 255.0 * self.residual_gain).clamp(-0.5, 0.5)
        padded_target, padded_pred = pad(target), pad(pred)
        scale = 255.0 / self.residual_gain
        initial = None
        if self.rate.skip and self.rate.mode != "rdo":
            initial = ~blocks_reaching(padded_target, padded_pred, self.rate.psnr)[0, 0]
        codes, chunks = self._code(self.residual, x, lambda recon: (padded_pred + recon * scale).clamp(0, 255),
                                   padded_target, "P", initial, 8 * len(mv_bytes), self._condition(pred),
                                   propagation)
        decoded = _to_uint8(pred + codes.recon * scale)
        coded = self._record("P", index, decoded, mv_bytes, codes, chunks)
        coded.prediction = prediction
        return coded, vectors

    def _condition(self, prediction: Tensor) -> Tensor | None:
        """What a conditional residual model sees beside the residual: the prediction in [-0.5, 0.5]."""
        return prediction / 255.0 - 0.5 if self.residual.model.config.condition else None

    def _code(self, codec: ImageCodec, x: Tensor, to_frame: Callable[[Tensor], Tensor], padded_target: Tensor,
              frame_type: str, initial: Tensor | None, side_bits: int, cond: Tensor | None = None,
              propagation: np.ndarray | None = None) -> tuple[Codes, list[bytes]]:
        """Code ``x``; ``to_frame`` maps the codec's padded reconstruction to frame pixels (0..255).
        ``propagation``: (ceil(H/16), ceil(W/16)) distortion weights from the lookahead, or None."""
        keep = None
        if self.rate.mode == "rdo":
            lam = self.rate.lagrangian(frame_type)
            weights = (block_weights(self.rate.distortion, padded_target)
                       * adaptive_weights(padded_target, self.rate.aq_strength))
            if propagation is not None:
                rows, cols = weights.shape[-2:]
                edges = ((0, rows - propagation.shape[0]), (0, cols - propagation.shape[1]))
                weights = weights * torch.from_numpy(np.pad(propagation, edges, mode="edge")).float()

            def distortion(recon: Tensor) -> Tensor:
                return (block_sse(padded_target, to_frame(recon)) * weights)[0, 0]

            def keep(t: int, before: Tensor, after: Tensor, rate: Tensor) -> Tensor:
                # Each iteration stays where the distortion it removed beats lambda x its bits; in a P-frame the
                # first decision is skip (prediction only) or code. Every I-frame block gets a first iteration.
                if frame_type == "I" and t == 0:
                    return torch.ones_like(rate, dtype=torch.bool)
                return keeps(distortion(before), distortion(after), rate, lam)

        codes = codec.encode(x, self.rate.coded_iterations, keep, initial, cond, self.precision)
        chunks = codec.codes_to_chunks(codes)
        if self.rate.mode == "bpp":
            pixels = x.shape[-1] * x.shape[-2]
            codes, chunks = _truncate_to_budget(codec, codes, chunks, self.rate.bpp * pixels - side_bits, cond,
                                                self.precision)
        return codes, chunks

    def _record(self, kind: str, index: int, decoded: np.ndarray, mv_bytes: bytes, codes: Codes,
                chunks: list[bytes]) -> CodedFrame:
        blobs = [mv_bytes, *chunks] if kind == "P" else chunks
        counts = codes.counts.astype(np.float64)
        return CodedFrame(record=container.FrameRecord(kind, index, blobs), decoded=self._filter(decoded, codes, kind),
                          motion_bits=8 * len(mv_bytes), residual_bits=8 * sum(len(c) for c in chunks),
                          iterations=float(counts.mean()), skipped=float((counts == 0).mean()),
                          condition=condition(codes.counts, kind))

    def _filter(self, decoded: np.ndarray, codes: Codes, kind: str) -> np.ndarray:
        return self.loop_filter(decoded, codes.counts, kind) if self.loop_filter else decoded

    # ---- decoding ------------------------------------------------------------------------------------
    def check_scale(self, scale: float) -> int:
        """The size divisor of decoding at ``scale``; an error, before any frame is decoded, for a reduced scale
        when the two models lack the heads of the reduced loop (:data:`LOOP_FACTOR`), or with an in-loop filter."""
        loop_heads = all(LOOP_FACTOR in codec.heads for codec in (self.intra, self.residual))
        factor = factor_of(scale, HEAD_NAMES if loop_heads else ())
        if factor > 1 and self.loop_filter is not None:
            raise ValueError("a stream with an in-loop filter decodes at full size only (scale=1)")
        return factor

    def decode(self, data: bytes, source: str = "stream", scale: float = 1.0) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (frame name, decoded uint8 frame) for every frame of a sequence container.

        ``scale`` 0.5 decodes every frame directly at half size (the models' decoder heads): P-frames are
        predicted from the previous frame decoded at that size, with the vectors scaled to it. Nothing at that
        size corrects the prediction, so small differences carry over to the following P-frames until the next
        I-frame (bench/multires.py measures this drift). ``scale`` 0.25 runs the same half-size loop and
        area-downscales each frame it yields (:data:`LOOP_FACTOR`).
        """
        header, offset = container.decode_header(data, source)
        self.check_header(header, source)
        precision = header.get("precision")
        if precision not in PRECISIONS:
            raise ValueError(f"{source}: coded at precision {precision!r}, which this build does not know "
                             f"({PRECISIONS})")
        try:
            factor = self.check_scale(scale)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from err
        names = header["names"]
        loop = min(factor, LOOP_FACTOR)
        loop_scale = 1.0 / loop
        shape = (*scaled_size(header["height"], header["width"], loop), 3)
        out_height, out_width = scaled_size(header["height"], header["width"], factor)
        full_shape = (header["height"], header["width"], 3)
        gain = float(header["residual_gain"])
        previous: np.ndarray | None = None
        for record in container.iter_records(data, offset, names, source):
            what = f"{source}: frame {record.index} ({names[record.index]})"
            try:
                if record.type == "I":
                    codes = self.intra.chunks_to_codes(record.blobs)
                    decoded = _to_uint8((self.intra.decode(codes, scale=loop_scale, precision=precision) + 0.5) * 255.0)
                else:
                    if previous is None:
                        raise ValueError("P-frame without a preceding decoded frame")
                    mv_bytes, *chunks = record.blobs
                    if header["mode"] == "mc":
                        prediction = self.motion.compensate(previous, self.motion.decode(mv_bytes, full_shape),
                                                            loop)
                    else:
                        prediction = previous
                    codes = self.residual.chunks_to_codes(chunks)
                    pred = to_pixels(prediction)
                    residual = self.residual.decode(codes, cond=self._condition(pred), scale=loop_scale,
                                                    precision=precision)
                    decoded = _to_uint8(pred + residual * (255.0 / gain))
            except ValueError as err:
                raise ValueError(f"{what}: {err}") from err
            if decoded.shape != shape:
                raise ValueError(f"{what}: decoded size {decoded.shape}, expected {shape} from the header")
            decoded = self._filter(decoded, codes, record.type)
            previous = decoded
            if loop < factor:
                decoded = cv2.resize(decoded, (out_width, out_height), interpolation=cv2.INTER_AREA)
            yield names[record.index], decoded


def _truncate_to_budget(codec: ImageCodec, codes: Codes, chunks: list[bytes],
                        budget_bits: float, cond: Tensor | None = None,
                        precision: str = "fp32") -> tuple[Codes, list[bytes]]:
    """The longest prefix of iterations (at least one) whose chunks fit ``budget_bits``.

    Chunk t codes exactly the blocks active in iteration t, so a prefix's size is the sum of its chunks.
    """
    sizes = np.cumsum([len(c) for c in chunks[1:]]) + len(chunks[0])
    keep = max(1, int(np.searchsorted(sizes * 8, budget_bits, side="right")))
    if keep >= codes.iterations:
        return codes, chunks
    prefix = Codes(bits=codes.bits[:keep], counts=np.minimum(codes.counts, keep).astype(np.uint8),
                   height=codes.height, width=codes.width)
    prefix.recon = codec.decode(prefix, cond=cond, precision=precision)
    return prefix, [meta_chunk(prefix), *chunks[1 : keep + 1]]


def _to_uint8(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 255] -> (H, W, 3) uint8, rounded and clipped."""
    return image[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
