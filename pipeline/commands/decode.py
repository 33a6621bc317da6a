"""``python -m pipeline decode IN.bin OUT [scale=0.5] [codec.decode_iterations=K]``: decode a bitstream by its
magic.

Image bitstreams (``DCIM``) decode to one image file; sequence containers (``DCVS``) to a folder of PNGs
with the original frame names. ``scale`` 0.5 or 0.25 decodes directly at that size (no full decode, no resize;
:mod:`codec.scaled`; a sequence at 0.25 runs its 1/2-size loop and area-downscales each frame). Formats register
a handler in ``DECODERS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from atomic import staged_dir
from codec import bitstream
from codec.coder import ImageCodec
from pipeline.imageio import write_image
from pipeline.video import container
from pipeline.video.build import build_coder
from pipeline.video.sequence import png_name

log = logging.getLogger("drivecodec.decode")


def decode_image(cfg: DictConfig, data: bytes, source: Path, target: Path) -> None:
    codec = ImageCodec.load(cfg.codec.weights)
    iterations = cfg.codec.get("decode_iterations")
    try:
        image = codec.decompress(data, None if iterations is None else int(iterations), float(cfg.scale))
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err
    write_image(target, image)
    log.info("%s -> %s: %dx%d", source, target, image.shape[1], image.shape[0])


def decode_sequence(cfg: DictConfig, data: bytes, source: Path, target: Path) -> None:
    """A sequence container -> one PNG per frame (original names) in the folder ``target``, renamed into place."""
    if target.is_file() or (target.is_dir() and any(target.iterdir())):
        raise ValueError(f"output folder {target} exists and is not empty; choose a new folder")
    if cfg.codec.get("decode_iterations") is not None:
        raise ValueError("codec.decode_iterations applies to image bitstreams; a sequence decodes in full")
    coder = build_coder(cfg)
    frames = len(container.decode_header(data, str(source))[0].get("names", []))
    count = 0
    with staged_dir(target) as staging, tqdm(total=frames, unit="frame", desc="decode", disable=None) as bar:
        for name, image in coder.decode(data, str(source), float(cfg.scale)):
            if Path(name).name != name or name in {"", ".", ".."}:
                raise ValueError(f"{source}: frame name {name!r} is not a plain file name")
            write_image(staging / png_name(name), image)
            count += 1
            bar.update()
    log.info("%s -> %s/: %d frames", source, target, count)


# magic -> handler(cfg, file bytes, source path, output path)
DECODERS: dict[bytes, Callable[[DictConfig, bytes, Path, Path], None]] = {
    bitstream.MAGIC: decode_image, container.MAGIC: decode_sequence}


def main(cfg: DictConfig, args: list[str]) -> int:
    if len(args) != 2:
        raise ValueError(f"decode takes IN.bin OUT, got {len(args)} positional arguments: {args}")
    source, target = Path(args[0]), Path(args[1])
    if not source.is_file():
        raise FileNotFoundError(f"bitstream {source} does not exist")
    data = source.read_bytes()
    handler = DECODERS.get(data[:4])
    if handler is None:
        known = ", ".join(repr(m) for m in DECODERS)
        raise ValueError(f"{source}: unknown format (magic {data[:4]!r}; expected one of {known})")
    handler(cfg, data, source, target)
    return 0
