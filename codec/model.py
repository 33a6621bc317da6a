"""The progressive RNN codec of Toderici et al. 2017 ("Full Resolution Image Compression with RNNs").

Images enter as float (B, 3, H, W) in [-0.5, 0.5]. Each iteration codes the current residual into 32 bits per
16x16 block (0.125 bpp raw); the decoder's reconstruction after iteration t is a function of the bits of
iterations 0..t only, so any prefix of iterations decodes. Layer widths and kernels follow
1zb/pytorch-image-comp-rnn ``network.py`` scaled by a width multiplier.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec import sparse
from codec.binarizer import Binarizer
from codec.layers import make_cell

BLOCK = 16  # pixels per code position along each axis
PAD = 32  # the network needs H and W divisible by this (five stride-2 stages after the binarizer's 16)
RECONSTRUCTIONS = ("one_shot", "additive", "scaled_additive")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that builds a :class:`RNNCodec`; saved as JSON beside the weights."""

    unit: str = "residual_gru"  # lstm | gru | residual_gru
    reconstruction: str = "scaled_additive"  # one_shot | additive | scaled_additive (per-iteration learned gains)
    width: float = 0.25  # channel multiplier: 1.0 is the paper's width (about 110 MB fp32); 0.25 fits a CPU (7 MB)
    bits: int = 32  # bits per 16x16 block per iteration
    max_iterations: int = 16  # iterations with their own learned gain (scaled_additive); later ones reuse the last
    condition: bool = False  # encoder and decoder also see a condition image both sides have (a P-frame's prediction)

    def to_dict(self) -> dict:
        return asdict(self)


def _ch(base: int, width: float) -> int:
    """Scaled channel count, a multiple of 4 so depth-to-space (factor 2) divides it."""
    return max(4, int(round(base * width / 4)) * 4)


@dataclass
class Codes:
    """The bits of one coded image.

    bits: (T, 32, h, w) int8 in {-1, +1}, 0 where a block was not transmitted (h = Hp/16, w = Wp/16).
    counts: (h, w) uint8, iterations transmitted per block (block (y, x) is active in iteration t iff t < count).
    height, width: the original image size; the padded size is the next multiple of 32.
    recon: the encoder's reconstruction (1, 3, height, width) in [-0.5, 0.5], or None when decoded from bytes.
    """

    bits: np.ndarray
    counts: np.ndarray
    height: int
    width: int
    recon: Tensor | None = None

    @property
    def iterations(self) -> int:
        return int(self.bits.shape[0])

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.bits.shape[2] * BLOCK, self.bits.shape[3] * BLOCK


# (t, reconstruction before iteration t, after it, iteration t's bits (1, C, h, w)) -> (h, w) bool: the blocks
# that keep iteration t and go on; the others finish with t iterations.
Keep = Callable[[int, Tensor, Tensor, Tensor], Tensor]


class RNNCodec(nn.Module):
    """Encoder (conv + 3 recurrent layers), binarizer, decoder (conv + 4 recurrent layers with depth-to-space)."""

    def __init__(self, config: ModelConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config or ModelConfig(**kwargs)
        if config.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction {config.reconstruction!r} is unknown; expected one of {RECONSTRUCTIONS}")
        self.config = config
        u, w = config.unit, config.width
        c64, c128, c256, c512 = (_ch(c, w) for c in (64, 128, 256, 512))
        self.enc_conv = nn.Conv2d(3, c64, 3, 2, 1, bias=False)
        self.enc_rnn = nn.ModuleList([make_cell(u, c64, c256, 3, 2, 1), make_cell(u, c256, c512, 3, 2, 1),
                                      make_cell(u, c512, c512, 3, 2, 1)])
        self.binarizer = Binarizer(c512, config.bits)
        self.dec_conv = nn.Conv2d(config.bits, c512, 1, bias=False)
        self.dec_rnn = nn.ModuleList([make_cell(u, c512, c512, 3, 1, 1), make_cell(u, c512 // 4, c512, 3, 1, 1),
                                      make_cell(u, c512 // 4, c256, 3, 1, 3), make_cell(u, c256 // 4, c128, 3, 1, 3)])
        self.dec_out = nn.Conv2d(c128 // 4, 3, 1, bias=False)
        # Per-iteration gain of scaled-additive reconstruction; residuals shrink, so later gains start larger.
        init = torch.tensor([0.7 * math.log1p(t) for t in range(config.max_iterations)])
        self.log_gain = nn.Parameter(init, requires_grad=config.reconstruction == "scaled_additive")
        if config.condition:
            # Conditional residual coding (Brand et al. 2023): the condition enters beside the encoder's input
            # and before the decoder's last two stages. Zero-initialised, so a model fine-tuned from an
            # unconditional one starts out computing exactly what that one did.
            self.enc_cond = nn.Conv2d(3, c64, 3, 2, 1, bias=False)
            self.dec_cond = nn.ModuleList([nn.Conv2d(3, c256 // 4, 3, 2, 1, bias=False),
                                           nn.Conv2d(3, c128 // 4, 3, 1, 1, bias=False)])
            for conv in (self.enc_cond, *self.dec_cond):
                nn.init.zeros_(conv.weight)

    # ---- one iteration -------------------------------------------------------------------------------
    def gain(self, t: int) -> float | Tensor:
        if self.config.reconstruction != "scaled_additive":
            return 1.0
        return torch.exp(self.log_gain[min(t, self.config.max_iterations - 1)])

    def encode_step(self, residual: Tensor, state: list | None, cond: Tensor | None = None,
                    active: Tensor | None = None) -> tuple[Tensor, list]:
        """(B, 3, H, W) scaled residual -> (B, 32, H/16, W/16) bits in {-1, +1} and the new encoder state.

        ``cond`` (B, 3, H, W) in [-0.5, 0.5] is the condition image of a conditional model (else None).
        ``active`` (H/16, W/16) bool (one image; (B, H/16, W/16) for a batch): the blocks coded in this iteration;
        the recurrent layers are then updated only around them (:mod:`codec.sparse`), and the other blocks' bits
        are meaningless.
        """
        self._check_cond(cond, residual)
        state = state or [None] * len(self.enc_rnn)
        x = self.enc_conv(residual)
        if cond is not None:
            x = x + self.enc_cond(cond)
        blocks = None if active is None else sparse.region(active)
        new_state = []
        for i, (cell, s) in enumerate(zip(self.enc_rnn, state, strict=True)):
            scale = 2 ** (len(self.enc_rnn) - 1 - i)  # positions per block side at this cell's output
            x, s = sparse.step(cell, x, s, None if blocks is None else sparse.at_scale(blocks, scale))
            new_state.append(s)
        return self.binarizer(x), new_state

    def decode_step(self, bits: Tensor, state: list | None, cond: Tensor | None = None,
                    head: nn.Module | None = None, active: Tensor | None = None) -> tuple[Tensor, list]:
        """(B, 32, h, w) bits (0 where not sent) -> (B, 3, 16h, 16w) output in [-0.5, 0.5] and the new state.

        ``cond`` (B, 3, 16h, 16w) in [-0.5, 0.5] is the condition image of a conditional model (else None).
        A ``head`` (:class:`codec.scaled.ScaledHead`) takes over after the first ``head.trunk`` recurrent layers:
        the output is then (B, 3, 16h / f, 16w / f), f = ``head.factor``, and ``cond`` is at that size.
        ``active`` (h, w) bool (one image; (B, h, w) for a batch): the blocks sent in this iteration (see
        :meth:`decode_trunk`); the output is meaningful only there.
        """
        layers = head.trunk if head is not None else len(self.dec_rnn)
        state = state or [None] * layers
        x, new_state = self.decode_trunk(bits, state[:layers], None if head is not None else cond, active)
        if head is not None:  # a head with memory keeps its state after the trunk's
            positions = None if active is None else sparse.at_scale(sparse.region(active), 2 ** (layers - 1))
            out, head_state = head(x, cond, state[layers] if len(state) > layers else None, positions)
            return out, new_state if head_state is None else [*new_state, head_state]
        x = F.pixel_shuffle(x, 2)
        if cond is not None:
            x = x + self.dec_cond[1](cond)
        return torch.tanh(self.dec_out(x)) * 0.5, new_state

    def decode_trunk(self, bits: Tensor, state: list, cond: Tensor | None = None,
                     active: Tensor | None = None) -> tuple[Tensor, list]:
        """The first k = ``len(state)`` recurrent decoder layers, each but the last followed by depth-to-space:
        (B, 32, h, w) bits -> the k-th layer's output (B, C, h * 2 ** (k - 1), w * 2 ** (k - 1)) and the layers' new
        states (``cond``: see decode_step). With ``active`` (h, w) bool (one image) the layers are updated only
        around the sent blocks and keep their state elsewhere (:mod:`codec.sparse`); None updates them all."""
        x = self.dec_conv(bits)
        blocks = None if active is None else sparse.region(active)
        new_state = []
        for i, s in enumerate(state):
            if i:
                x = F.pixel_shuffle(x, 2)
            if cond is not None and i == len(self.dec_rnn) - 1:
                x = x + self.dec_cond[0](cond)
            x, s = sparse.step(self.dec_rnn[i], x, s, None if blocks is None else sparse.at_scale(blocks, 2 ** i))
            new_state.append(s)
        return x, new_state

    def _check_cond(self, cond: Tensor | None, x: Tensor) -> None:
        if self.config.condition and (cond is None or cond.shape != x.shape):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"a conditional model needs a condition image shaped like its input {tuple(x.shape)}, "
                             f"got {got}")
        if not self.config.condition and cond is not None:
            raise ValueError("this model is not conditional: it takes no condition image")

    def update(self, t: int, recon: Tensor | None, out: Tensor) -> Tensor:
        """Reconstruction after iteration ``t`` from the previous one and the decoder output (B, 3, H, W)."""
        mode = self.config.reconstruction
        if mode == "one_shot":
            return out
        step = out if mode == "additive" else out / self.gain(t)
        return step if recon is None else recon + step

    # ---- training ------------------------------------------------------------------------------------
    def forward(self, x: Tensor, iterations: int, cond: Tensor | None = None,
                bits_out: list[Tensor] | None = None, counts: Tensor | None = None) -> list[Tensor]:
        """Reconstructions after each iteration: ``iterations`` tensors (B, 3, H, W) in [-0.5, 0.5] (unclamped).

        ``x`` is (B, 3, H, W) in [-0.5, 0.5] with H and W divisible by 32, ``cond`` the condition image of a
        conditional model, shaped like ``x``. Bits are stochastic in training mode; each iteration's bits
        (B, C, H/16, W/16), straight-through differentiable, are appended to ``bits_out`` when given (rate losses).
        ``counts`` (B, H/16, W/16) int: each block's iterations, as :meth:`encode` spends them (0: never sent);
        a block's bits past its count are 0, its reconstruction stays, and the layers update only around the
        blocks still sent (as the coder runs them). None: every block every iteration.
        """
        _check_input(x)
        enc_state = dec_state = None
        recon = torch.zeros_like(x)
        recons = []
        for t in range(iterations):
            active = None if counts is None else counts > t
            bits, enc_state = self.encode_step((x - recon) * self.gain(t), enc_state, cond, active)
            if active is not None:
                bits = bits * active[:, None].to(bits.dtype)
            if bits_out is not None:
                bits_out.append(bits)
            out, dec_state = self.decode_step(bits, dec_state, cond, active=active)
            recon = self.update(t, recon, out) if active is None else self._masked_update(t, recon, out, active)
            recons.append(recon)
        return recons

    # ---- spatially adaptive coding -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor, iterations: int, keep: Keep | None = None,
               active: Tensor | None = None, cond: Tensor | None = None) -> Codes:
        """Code ``x`` (1, 3, H, W) in [-0.5, 0.5] for up to ``iterations`` iterations (any H, W).

        The image is edge-padded to multiples of 32. ``active`` (Hp/16, Wp/16) bool marks the blocks coded at
        all; the others (e.g. skipped blocks of a video residual) get zero iterations and reconstruct as 0.
        After iteration t, ``keep(t, before, after, bits)`` says which blocks keep it (reconstructions before
        and after it, (1, 3, Hp, Wp) clamped to [-0.5, 0.5]; its bits (1, C, h, w)). The others finish with t
        iterations: their bits of iteration t are not sent, and the decoder step is run again without them, so
        every decision weighs an iteration's real gain (spatially adaptive rate, Johnston et al. 2018; a
        rate-distortion decision when ``keep`` weighs gain against bits). Coding ends when no block goes on.
        The encoder runs the decoder on exactly the transmitted bits, so ``Codes.recon`` equals what
        :meth:`decode` returns. A conditional model takes its condition image ``cond`` (1, 3, H, W), which the
        decoder must be given too.
        """
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"encode expects one image (1, 3, H, W), got {tuple(x.shape)}")
        if iterations < 1 or iterations > 255:
            raise ValueError(f"iterations must be in 1..255, got {iterations}")
        height, width = x.shape[-2:]
        xp = pad(x)
        cond = None if cond is None else pad(cond)
        h, w = xp.shape[-2] // BLOCK, xp.shape[-1] // BLOCK
        counts = torch.zeros(h, w, dtype=torch.int64)
        if active is None:
            active = torch.ones(h, w, dtype=torch.bool, device=x.device)
        elif active.shape != (h, w):
            raise ValueError(f"active must be ({h}, {w}) bool, got {tuple(active.shape)}")
        active = active.to(device=x.device, dtype=torch.bool)
        enc_state = dec_state = None
        recon = torch.zeros_like(xp)  # 0 + first step is exact, and blocks never coded stay 0
        all_bits = []
        for t in range(iterations):
            if not bool(active.any()):
                break
            bits, enc_state = self.encode_step((xp - recon) * self.gain(t), enc_state, cond, active)
            bits = bits * active.to(bits.dtype)
            out, new_state = self.decode_step(bits, dec_state, cond, active=active)
            after = self._masked_update(t, recon, out, active)
            if keep is not None:
                kept = keep(t, recon.clamp(-0.5, 0.5), after.clamp(-0.5, 0.5), bits)
                if kept.shape != (h, w):
                    raise ValueError(f"keep must return ({h}, {w}) bool, got {tuple(kept.shape)}")
                kept = active & kept.to(device=active.device, dtype=torch.bool)
                if not bool(kept.any()):
                    break
                if not torch.equal(kept, active):  # the decoder must see only what is sent
                    active = kept
                    bits = bits * active.to(bits.dtype)
                    out, new_state = self.decode_step(bits, dec_state, cond, active=active)
                    after = self._masked_update(t, recon, out, active)
            all_bits.append(bits[0].to(torch.int8).cpu())
            counts += active.cpu().long()
            recon, dec_state = after, new_state
        if not all_bits:  # no block coded (e.g. a P-frame that is all prediction): one iteration of nothing
            all_bits.append(torch.zeros(self.config.bits, h, w, dtype=torch.int8))
        return Codes(bits=torch.stack(all_bits).numpy(), counts=counts.to(torch.uint8).numpy(),
                     height=int(height), width=int(width), recon=recon.clamp(-0.5, 0.5)[..., :height, :width])

    @torch.no_grad()
    def decode(self, codes: Codes, iterations: int | None = None, cond: Tensor | None = None,
               head: nn.Module | None = None) -> Tensor:
        """Reconstruction (1, 3, height, width) in [-0.5, 0.5] from the first ``iterations`` (default all);
        ``head``: see :meth:`iter_decode`."""
        *_, last = self.iter_decode(codes, iterations, cond, head)
        return last

    @torch.no_grad()
    def iter_decode(self, codes: Codes, iterations: int | None = None, cond: Tensor | None = None,
                    head: nn.Module | None = None) -> Iterator[Tensor]:
        """Yield the reconstruction (1, 3, height, width) in [-0.5, 0.5] after each of the first ``iterations``.

        ``cond``: the condition image (1, 3, height, width) the encoder was given (conditional models only).
        With a ``head`` (:class:`codec.scaled.ScaledHead`) the same codes decode at 1 / f of the size,
        f = ``head.factor``: (1, 3, ceil(height / f), ceil(width / f)), and ``cond`` is at that size too.
        """
        total = codes.iterations
        iterations = total if iterations is None else iterations
        if not 1 <= iterations <= total:
            raise ValueError(f"cannot decode {iterations} iterations: the codes hold {total}")
        factor = head.factor if head is not None else 1
        block = BLOCK // factor
        height, width = -(-codes.height // factor), -(-codes.width // factor)
        device = self.dec_out.weight.device
        counts = torch.from_numpy(codes.counts.astype(np.int64)).to(device)
        dec_state = None
        padded = (1, 3, codes.bits.shape[2] * block, codes.bits.shape[3] * block)
        recon = torch.zeros(padded, device=device)
        if cond is not None:
            cond = pad(cond.to(device), PAD // factor)
        self._check_cond(cond, recon)
        for t in range(iterations):
            bits = torch.from_numpy(codes.bits[t].astype(np.float32))[None].to(device)
            out, dec_state = self.decode_step(bits, dec_state, cond, head, counts > t)
            recon = self._masked_update(t, recon, out, counts > t, block)
            yield recon.clamp(-0.5, 0.5)[..., :height, :width]

    def _masked_update(self, t: int, recon: Tensor, out: Tensor, active: Tensor, block: int = BLOCK) -> Tensor:
        """Update only active blocks (``block`` px each); finished blocks keep their reconstruction (both sides do
        the same)."""
        new = self.update(t, recon, out)
        if bool(active.all()):
            return new
        mask = active.view(-1, 1, *active.shape[-2:]).to(new.dtype)
        mask = mask.repeat_interleave(block, -2).repeat_interleave(block, -1)
        return torch.where(mask > 0, new, recon)

    def model_id(self) -> bytes:
        """8-byte hash of the config and weights, written into every bitstream."""
        digest = hashlib.sha256(repr(sorted(self.config.to_dict().items())).encode())
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
        return digest.digest()[:8]


def pad(x: Tensor, multiple: int = PAD) -> Tensor:
    """Edge-replicate pad (B, C, H, W) on the bottom and right to multiples of ``multiple``."""
    ph, pw = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _check_input(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % PAD or x.shape[-1] % PAD:
        raise ValueError(f"expected (B, 3, H, W) with H, W divisible by {PAD}, got {tuple(x.shape)}")
