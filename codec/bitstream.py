"""The image bitstream: a checked header, then one checksummed chunk per piece, cut-friendly.

Layout (integers little-endian)::

    b"DCIM" | version u8 | model id 8 bytes | chunk count u16 | header CRC32 u32
    per chunk: payload length u32 | payload CRC32 u32 | payload

Chunk 0 is the meta chunk (image size, iterations, per-block iteration counts); chunk 1 + t holds the
entropy-coded bits of iteration t. A file cut after any whole chunk still parses (at a lower rate); a cut
inside a chunk, a bad checksum, a foreign magic or an unknown version raises ValueError.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from atomic import write_bytes
from codec.entropy import Prior, bit_coder, decode_counts, encode_counts
from codec.model import BLOCK, PAD, Codes

MAGIC = b"DCIM"
VERSION = 4  # 2: entropy coding with the prior's channel plan; 3: range-coded block count map;
# 4: recurrent layers updated only around the coded blocks (codec.sparse)
_HEADER = struct.Struct("<4sB8sH")
_CHUNK = struct.Struct("<II")
_META = struct.Struct("<IIBB")  # height, width, iterations, channels
MAX_SIDE = 1 << 16


def meta_chunk(codes: Codes) -> bytes:
    """Chunk 0: image size, iterations, channels and the per-block iteration counts."""
    return _META.pack(codes.height, codes.width, codes.iterations, codes.bits.shape[1]) + encode_counts(
        codes.counts, codes.iterations)


def parse_meta(chunk: bytes) -> tuple[int, int, int, int, np.ndarray]:
    """Meta chunk -> (height, width, iterations, channels, counts (h, w) uint8); ValueError when inconsistent."""
    if len(chunk) < _META.size:
        raise ValueError(f"meta chunk has {len(chunk)} bytes, expected at least {_META.size}")
    height, width, iterations, channels = _META.unpack_from(chunk)
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and iterations > 0 and channels > 0):
        raise ValueError(f"meta chunk holds an impossible size {width}x{height}, {iterations} iterations, "
                         f"{channels} channels")
    h, w = -(-height // PAD) * PAD // BLOCK, -(-width // PAD) * PAD // BLOCK
    try:
        counts = decode_counts(chunk[_META.size :], (h, w), iterations)
    except ValueError as err:
        raise ValueError(f"meta chunk: {err}") from err
    return height, width, iterations, channels, counts.astype(np.uint8)


def codes_to_chunks(codes: Codes, prior: Prior | None = None) -> list[bytes]:
    """[meta chunk, iteration 0, iteration 1, ...]: bytes a container can store one by one."""
    coder = bit_coder(codes.bits.shape[1], prior)
    chunks = [meta_chunk(codes)]
    for t in range(codes.iterations):
        chunks.append(coder.encode(codes.bits[t], codes.counts > t))
    return chunks


def chunks_to_codes(chunks: list[bytes], prior: Prior | None = None, iterations: int | None = None) -> Codes:
    """Inverse of :func:`codes_to_chunks`; any prefix of the iteration chunks (or ``iterations`` of them)."""
    if len(chunks) < 2:
        raise ValueError(f"a coded image needs the meta chunk and at least one iteration, got {len(chunks)} chunks")
    height, width, total, channels, counts = parse_meta(chunks[0])
    available = min(total, len(chunks) - 1)
    if len(chunks) - 1 > total:
        raise ValueError(f"{len(chunks) - 1} iteration chunks but the meta chunk announces {total}")
    use = available if iterations is None else iterations
    if not 1 <= use <= available:
        raise ValueError(f"cannot decode {use} iterations: {available} are present")
    coder = bit_coder(channels, prior)
    bits = np.stack([coder.decode(chunks[1 + t], counts > t) for t in range(use)])
    return Codes(bits=bits, counts=np.minimum(counts, use).astype(np.uint8), height=height, width=width)


def pack(model_id: bytes, chunks: list[bytes]) -> bytes:
    """Header plus checksummed chunks."""
    if len(model_id) != 8:
        raise ValueError(f"model id must be 8 bytes, got {len(model_id)}")
    header = _HEADER.pack(MAGIC, VERSION, model_id, len(chunks))
    parts = [header, struct.pack("<I", zlib.crc32(header))]
    for chunk in chunks:
        parts += [_CHUNK.pack(len(chunk), zlib.crc32(chunk)), chunk]
    return b"".join(parts)


def unpack(data: bytes, what: str = "image bitstream") -> tuple[bytes, list[bytes]]:
    """-> (model id, whole chunks present). A file cut between chunks returns the chunks before the cut."""
    size = _HEADER.size + 4
    if len(data) < size:
        raise ValueError(f"{what}: {len(data)} bytes is too short for the {size}-byte header")
    magic, version, model_id, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"{what}: not a drivecodec image (magic {magic!r}, expected {MAGIC!r})")
    if 1 <= version < VERSION:
        raise ValueError(f"{what}: written by an older drivecodec in image format version {version}; this build "
                         f"reads version {VERSION} only: decode it with a drivecodec that reads {version}")
    if version != VERSION:
        raise ValueError(f"{what}: format version {version} is not supported (expected {VERSION})")
    (crc,) = struct.unpack_from("<I", data, _HEADER.size)
    if crc != zlib.crc32(data[: _HEADER.size]):
        raise ValueError(f"{what}: header checksum mismatch")
    pos, chunks = size, []
    while pos < len(data):
        if len(chunks) == count:
            raise ValueError(f"{what}: {len(data) - pos} unexpected bytes after the last of {count} chunks")
        if pos + _CHUNK.size > len(data):
            raise ValueError(f"{what}: truncated inside the header of chunk {len(chunks)}")
        length, crc = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        if pos + length > len(data):
            raise ValueError(f"{what}: truncated inside chunk {len(chunks)} ({length} bytes announced, "
                             f"{len(data) - pos} present)")
        chunk = data[pos : pos + length]
        if zlib.crc32(chunk) != crc:
            raise ValueError(f"{what}: checksum mismatch in chunk {len(chunks)}")
        chunks.append(chunk)
        pos += length
    return model_id, chunks


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write via a temporary name and rename, so readers never see half a file."""
    write_bytes(path, data)
