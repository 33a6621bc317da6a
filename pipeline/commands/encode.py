"""``python -m pipeline encode IN.png OUT.bin codec.iterations=K``: code one image with the RNN codec."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from codec.bitstream import write_atomic
from codec.coder import ImageCodec
from pipeline.imageio import read_image


def main(cfg: DictConfig, args: list[str]) -> int:
    if len(args) != 2:
        raise ValueError(f"encode takes IN_IMAGE OUT.bin, got {len(args)} positional arguments: {args}")
    source, target = Path(args[0]), Path(args[1])
    image = read_image(source)
    codec = ImageCodec.load(cfg.codec.weights)
    data = codec.compress(image, int(cfg.codec.iterations))
    write_atomic(target, data)
    h, w = image.shape[:2]
    print(f"{source} -> {target}: {len(data)} bytes, {len(data) * 8 / (h * w):.4f} bpp, "
          f"{cfg.codec.iterations} iterations")
    return 0
