"""The sequence container: a header, then one checksummed record per frame.

Layout (integers little-endian)::

    b"DCVS" | version u8 | header length u32 | header JSON | header CRC32 u32
    per frame: b"FR" | type u8 | frame index u32 | payload length u32 | payload CRC32 u32 | payload

A payload is a list of blobs (motion vectors, residual chunks, ...), each prefixed by its u32 length.
Every read is bounds- and checksum-checked so a cut or damaged file names the frame it fails on.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

MAGIC = b"DCVS"
VERSION = 8  # 2: entropy coding with the prior's channel plan; 3: range-coded count maps, context-coded vectors;
# 4: vectors MED-predicted (flow.vector_coding version 3); 5: vector merges (flow.vector_coding version 4);
# 6: recurrent layers updated only around the coded blocks (codec.sparse, image format version 4);
# 7: the header names the networks' precision (fp32 or bf16); 8: vectors start from fitted counts, with parity,
# left-flag and sign contexts (flow.vector_coding version 5)
OLDEST_READ = 8
_RECORD = struct.Struct("<2sBIII")
FRAME_TYPES = {0: "I", 1: "P"}
_TYPE_CODES = {name: code for code, name in FRAME_TYPES.items()}


@dataclass
class FrameRecord:
    type: str  # "I" or "P"
    index: int
    blobs: list[bytes]


def pack_blobs(blobs: list[bytes]) -> bytes:
    return struct.pack("<I", len(blobs)) + b"".join(struct.pack("<I", len(b)) + b for b in blobs)


def unpack_blobs(data: bytes, what: str) -> list[bytes]:
    if len(data) < 4:
        raise ValueError(f"{what}: payload too short")
    (count,) = struct.unpack_from("<I", data)
    pos, blobs = 4, []
    for _ in range(count):
        if pos + 4 > len(data):
            raise ValueError(f"{what}: payload ends inside blob {len(blobs)}")
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + size > len(data):
            raise ValueError(f"{what}: blob {len(blobs)} needs {size} bytes, {len(data) - pos} left")
        blobs.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise ValueError(f"{what}: {len(data) - pos} unexpected trailing bytes")
    return blobs


def encode_header(header: dict[str, Any]) -> bytes:
    body = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<BI", VERSION, len(body)) + body + struct.pack("<I", zlib.crc32(body))


def encode_record(record: FrameRecord) -> bytes:
    payload = pack_blobs(record.blobs)
    head = _RECORD.pack(b"FR", _TYPE_CODES[record.type], record.index, len(payload), zlib.crc32(payload))
    return head + payload


def decode_header(data: bytes, source: str = "stream") -> tuple[dict[str, Any], int]:
    """Parse the header; return it and the offset of the first frame record."""
    if data[:4] != MAGIC:
        raise ValueError(f"{source}: not a drivecodec sequence file (magic {data[:4]!r}, expected {MAGIC!r})")
    if len(data) < 9:
        raise ValueError(f"{source}: truncated header")
    version, size = struct.unpack_from("<BI", data, 4)
    if 1 <= version < OLDEST_READ:
        raise ValueError(f"{source}: written by an older drivecodec in sequence format version {version}; this "
                         f"build reads versions {OLDEST_READ}-{VERSION} only: decode it with a drivecodec that reads "
                         f"{version}")
    if not OLDEST_READ <= version <= VERSION:
        raise ValueError(f"{source}: corrupt or not a drivecodec stream (format version byte {version}; this build "
                         f"reads versions {OLDEST_READ}-{VERSION})")
    end = 9 + size
    if end + 4 > len(data):
        raise ValueError(f"{source}: truncated header ({len(data)} bytes, header needs {end + 4})")
    body = data[9:end]
    (crc,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(body) != crc:
        raise ValueError(f"{source}: header checksum mismatch (corrupt file)")
    return json.loads(body), end + 4


def iter_records(data: bytes, offset: int, names: list[str], source: str = "stream"):
    """Yield the frame records after ``offset``; errors name the frame that is cut or corrupt."""
    for index, name in enumerate(names):
        what = f"{source}: frame {index} ({name})"
        if offset + _RECORD.size > len(data):
            raise ValueError(f"{what}: file is truncated before this frame's record")
        tag, type_code, stored_index, size, crc = _RECORD.unpack_from(data, offset)
        if tag != b"FR" or type_code not in FRAME_TYPES or stored_index != index:
            raise ValueError(f"{what}: corrupt record header")
        start = offset + _RECORD.size
        payload = data[start : start + size]
        if len(payload) != size:
            raise ValueError(f"{what}: record is truncated ({len(payload)} of {size} bytes)")
        if zlib.crc32(payload) != crc:
            raise ValueError(f"{what}: checksum mismatch (corrupt record)")
        yield FrameRecord(FRAME_TYPES[type_code], index, unpack_blobs(payload, what))
        offset = start + size
    if offset != len(data):
        raise ValueError(f"{source}: {len(data) - offset} unexpected bytes after the last frame")
