"""``python -m pipeline encode IN.png OUT.bin codec.iterations=K``: code one image with the RNN codec."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from codec.bitstream import write_atomic
from codec.coder import ImageCodec
from pipeline.imageio import read_image

log = logging.getLogger("drivecodec.encode")


def main(cfg: DictConfig, args: list[str]) -> int:
    if len(args) != 2:
        raise ValueError(f"encode takes IN_IMAGE OUT.bin, got {len(args)} positional arguments: {args}")
    source, target = Path(args[0]), Path(args[1])
    image = read_image(source)
    codec = ImageCodec.load(cfg.codec.weights)
    data = codec.compress(image, int(cfg.codec.iterations))
    write_atomic(target, data)
    h, w = image.shape[:2]
    log.info("%s -> %s: %d bytes, %.4f bpp, %d iterations", source, target, len(data), len(data) * 8 / (h * w),
             cfg.codec.iterations)
    return 0
