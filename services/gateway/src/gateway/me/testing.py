"""Test support for the me-endpoints: reading a QR code's modules back out of a PNG."""

from __future__ import annotations

import struct
import zlib

from gateway.me.qr import PNG_SIGNATURE


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, each CRC checked."""
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b""), "malformed PNG"
    return chunks


def png_modules(data: bytes, module_pixels: int) -> list[list[bool]]:
    """The dark (True) and light modules of a 1-bit greyscale PNG of a QR code, sampled at
    each module's centre."""
    chunks = png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (1, 0, 0), "expected a 1-bit greyscale PNG"
    assert width == height and width % module_pixels == 0, (width, height)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + (width + 7) // 8
    assert len(raw) == stride * height
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0, "only filter type 0 is expected"
        bits = "".join(f"{byte:08b}" for byte in line[1:])[:width]
        rows.append([bit == "0" for bit in bits])  # 0 is black
    centre = module_pixels // 2
    size = width // module_pixels
    return [
        [rows[r * module_pixels + centre][c * module_pixels + centre] for c in range(size)]
        for r in range(size)
    ]
