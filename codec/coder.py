"""Image in, bytes out: the RNN model, the entropy coder and the bitstream together (CompressAI-style API)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file

from codec.bitstream import chunks_to_codes, codes_to_chunks, pack, unpack
from codec.entropy import Prior
from codec.model import Codes, RNNCodec
from codec.precision import compute_precision
from codec.scaled import ScaledHead, factor_of, load_heads
from codec.zoo import WEIGHTS_DIR, load_model, weights_stem

# (t, reconstruction before iteration t, after it, each block's estimated bits for it (h, w)) -> (h, w) bool,
# the blocks that keep iteration t and go on (see :meth:`RNNCodec.encode`).
RateKeep = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float (1, 3, H, W) in [-0.5, 0.5]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0 - 0.5


def to_image(x: torch.Tensor) -> np.ndarray:
    """float (1, 3, H, W) in [-0.5, 0.5] -> uint8 (H, W, 3) RGB."""
    return ((x[0].clamp(-0.5, 0.5) + 0.5) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class ImageCodec:
    """A model plus its entropy prior (:class:`codec.entropy.Prior`, or None for uniform) and the decoder heads
    that decode its streams at reduced size ({factor: head}, :mod:`codec.scaled`)."""

    def __init__(self, model: RNNCodec, prior: Prior | None = None,
                 heads: dict[int, ScaledHead] | None = None) -> None:
        self.model = model.eval()
        self.prior = prior
        self.heads = heads or {}
        self._rate_prior = prior or Prior.uniform(model.config.bits)  # what estimate_bits prices with
        digest = hashlib.sha256(model.model_id())
        if prior is not None:
            digest.update(prior.digest_bytes())
        self.model_id = digest.digest()[:8]  # a stream names the exact weights and prior it needs

    @classmethod
    def load(cls, stem: str | Path = WEIGHTS_DIR / "intra", device: str = "cpu") -> ImageCodec:
        """Weights ``stem.safetensors`` + ``stem.json`` and, when present, the prior ``stem.entropy.safetensors``
        and the decoder heads ``stem.half`` / ``stem.quarter``."""
        stem = weights_stem(stem)
        model = load_model(stem, device)
        prior_path = stem.with_name(stem.name + ".entropy.safetensors")
        prior = None
        if prior_path.is_file():
            try:
                prior = Prior.from_arrays(load_file(str(prior_path)), model.config.bits)
            except (SafetensorError, OSError, ValueError) as err:
                raise ValueError(f"entropy prior {prior_path} is unusable: {err}") from err
        return cls(model, prior, load_heads(stem, model))

    # ---- tensors <-> codes <-> chunks --------------------------------------------------------------
    def encode(self, x: torch.Tensor, iterations: int, keep: RateKeep | None = None,
               active: torch.Tensor | None = None, cond: torch.Tensor | None = None, precision: str = "fp32") -> Codes:
        """(1, 3, H, W) in [-0.5, 0.5] -> :class:`Codes` (see :meth:`RNNCodec.encode`; ``cond`` is the condition
        image (1, 3, H, W) in [-0.5, 0.5] of a conditional model; ``precision``: :data:`codec.precision.PRECISIONS`).

        ``keep`` also sees each iteration's bit cost per block, estimated from the entropy prior
        (:meth:`estimate_bits`), so it can weigh distortion against rate.
        """
        hook = None
        if keep is not None:
            sent: list[np.ndarray] = []  # the previous iteration's bits as sent: the next one's context

            def hook(t: int, before: torch.Tensor, after: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
                now = bits[0].to(torch.int8).cpu().numpy()
                kept = keep(t, before, after, self.estimate_bits(now, sent[-1] if sent else None, t))
                sent.append(now * kept.cpu().numpy().astype(np.int8))
                return kept

        device = self.model.dec_out.weight.device
        with compute_precision(precision, device):
            return self.model.encode(x.to(device), iterations, hook, active, None if cond is None else cond.to(device))

    def estimate_bits(self, bits: np.ndarray, previous: np.ndarray | None = None, t: int = 0) -> torch.Tensor:
        """(h, w) estimated coded bits of each block for iteration ``t``'s bits (C, h, w) in {-1, 0, +1}."""
        return torch.from_numpy(self._rate_prior.estimate_bits(bits, previous, t)).float()

    def decode(self, codes: Codes, iterations: int | None = None, cond: torch.Tensor | None = None,
               scale: float = 1.0, precision: str = "fp32") -> torch.Tensor:
        """:class:`Codes` -> (1, 3, H, W) in [-0.5, 0.5] from the first ``iterations`` (``cond``, ``precision``:
        see encode).

        ``scale`` 0.5 or 0.25 decodes the same codes at that size, (1, 3, ceil(H * scale), ceil(W * scale)),
        with the decoder head shipped for it; ``cond`` is then at that size too.
        """
        head = self.head(scale)
        with compute_precision(precision, self.model.dec_out.weight.device):
            return self.model.decode(codes, iterations, cond, head)

    def head(self, scale: float) -> ScaledHead | None:
        """The decoder head for ``scale`` (None at full size); a clear error for a scale without one."""
        factor = factor_of(scale, self.heads)
        return self.heads[factor] if factor > 1 else None

    def codes_to_chunks(self, codes: Codes) -> list[bytes]:
        """[meta, iteration 0, ...] byte chunks for a container."""
        return codes_to_chunks(codes, self.prior)

    def chunks_to_codes(self, chunks: list[bytes], iterations: int | None = None) -> Codes:
        return chunks_to_codes(chunks, self.prior, iterations)

    # ---- images <-> bytes ----------------------------------------------------------------------------
    def compress(self, image: np.ndarray, iterations: int) -> bytes:
        """uint8 (H, W, 3) RGB -> a self-checking bitstream with ``iterations`` chunks after the meta chunk."""
        codes = self.encode(to_tensor(image), iterations)
        return pack(self.model_id, self.codes_to_chunks(codes))

    def decompress(self, data: bytes, iterations: int | None = None, scale: float = 1.0) -> np.ndarray:
        """Bitstream -> uint8 (H, W, 3) RGB from its first ``iterations`` (default: all that are present); at
        ``scale`` 0.5 or 0.25 directly at that size (ceil(H * scale), ceil(W * scale))."""
        head = self.head(scale)
        model_id, chunks = unpack(data)
        if model_id != self.model_id:
            raise ValueError(f"bitstream was made by model {model_id.hex()}, these weights are "
                             f"{self.model_id.hex()}")
        return to_image(self.model.decode(self.chunks_to_codes(chunks, iterations), head=head))
