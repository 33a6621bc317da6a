"""The networks' arithmetic: fp32, or bf16 convolutions and matrix products (autocast).

bf16 runs the video coder 1.2-1.7x faster on a CPU with native bf16 (AVX512-BF16; bench/RESULTS.md). Encoder and
decoder must use the same precision: the two reconstructions differ by a level here and there.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (a GPU; a CPU with AVX512-BF16 or AMX), so that bf16 pays."""
    if device.type != "cpu":
        return True
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported",
                                                                        "_is_amx_tile_supported"))


def resolve(setting: str, device: torch.device) -> str:
    """A precision setting (``auto`` or one of :data:`PRECISIONS`) on ``device``: auto is bf16 where it is native."""
    if setting == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if setting not in PRECISIONS:
        raise ValueError(f"precision={setting!r} is unknown; expected auto or one of {PRECISIONS}")
    return setting


def compute_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """A context in which the network runs at ``precision`` (one of :data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; expected one of {PRECISIONS}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
