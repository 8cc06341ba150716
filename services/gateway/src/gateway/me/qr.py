"""A QR code as a PNG image, from `qrcode`'s module matrix and the standard library.

qrcode draws images through Pillow or pypng; a black-and-white PNG is simple enough
(one IHDR, one zlib-compressed IDAT of 1-bit rows, IEND) that neither is worth a
dependency here.
"""

from __future__ import annotations

import struct
import zlib

import qrcode
from qrcode.constants import ERROR_CORRECT_M

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODULE_PIXELS = 8  # a 69-module card token (version 13) is 616 px square with its margin
QUIET_ZONE = 4  # modules of white margin, as ISO/IEC 18004 asks


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code's modules (True = dark), quiet zone included; error correction M."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE)
    code.add_data(text)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of(matrix: list[list[bool]], scale: int = MODULE_PIXELS) -> bytes:
    """A 1-bit greyscale PNG: each module a `scale`×`scale` square, dark modules black."""
    side = len(matrix) * scale
    rows = []
    for modules in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in modules)
        bits += "0" * (-len(bits) % 8)
        line = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type 0: none
        rows.append(line * scale)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _chunk(b"IEND", b"")
    )


def qr_png(text: str) -> bytes:
    """The QR code of `text` as a PNG image."""
    return png_of(qr_matrix(text))
