import pytest

from pipeline.video import container


def _stream(records):
    names = [f"f{i}.png" for i in range(len(records))]
    data = container.encode_header({"names": names, "mode": "mc"})
    data += b"".join(container.encode_record(r) for r in records)
    return data, names


RECORDS = [container.FrameRecord("I", 0, [b"abc", b""]), container.FrameRecord("P", 1, [b"mv", b"x" * 300])]


def test_round_trip():
    data, names = _stream(RECORDS)
    header, offset = container.decode_header(data)
    assert header["names"] == names
    out = list(container.iter_records(data, offset, names))
    assert [(r.type, r.index, r.blobs) for r in out] == [(r.type, r.index, r.blobs) for r in RECORDS]


def test_truncation_names_the_frame():
    data, names = _stream(RECORDS)
    header, offset = container.decode_header(data)
    with pytest.raises(ValueError, match=r"frame 1 \(f1.png\).*truncated"):
        list(container.iter_records(data[:-10], offset, names))


def test_corrupt_payload_names_the_frame():
    data, names = _stream(RECORDS)
    header, offset = container.decode_header(data)
    damaged = bytearray(data)
    damaged[-5] ^= 0xFF
    with pytest.raises(ValueError, match=r"frame 1 \(f1.png\): checksum mismatch"):
        list(container.iter_records(bytes(damaged), offset, names))


def test_foreign_and_damaged_headers():
    with pytest.raises(ValueError, match="not a drivecodec sequence file"):
        container.decode_header(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    data, _ = _stream(RECORDS)
    damaged = bytearray(data)
    damaged[12] ^= 0x01
    with pytest.raises(ValueError, match="header checksum"):
        container.decode_header(bytes(damaged))
    with pytest.raises(ValueError, match="truncated header"):
        container.decode_header(data[:12])


def test_trailing_garbage_is_reported():
    data, names = _stream(RECORDS)
    header, offset = container.decode_header(data)
    with pytest.raises(ValueError, match="unexpected bytes after the last frame"):
        list(container.iter_records(data + b"junk", offset, names))


def test_old_and_random_versions_are_told_apart():
    data, _ = _stream(RECORDS)
    old = data[:4] + bytes([container.OLDEST_READ - 1]) + data[5:]
    with pytest.raises(ValueError, match=f"older drivecodec in sequence format version {container.OLDEST_READ - 1}"):
        container.decode_header(old)
    readable = data[:4] + bytes([container.OLDEST_READ]) + data[5:]
    assert container.decode_header(readable) == container.decode_header(data)
    with pytest.raises(ValueError, match="corrupt or not a drivecodec stream"):
        container.decode_header(container.MAGIC + bytes([132]) + b"\x07" * 40)
