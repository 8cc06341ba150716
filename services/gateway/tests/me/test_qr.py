"""The card's QR image: a valid PNG whose modules are exactly the QR code of the text."""

from __future__ import annotations

from gateway.me.qr import MODULE_PIXELS, PNG_SIGNATURE, QUIET_ZONE, qr_matrix, qr_png
from gateway.me.testing import png_chunks, png_modules

TOKEN = "eyJhbGciOiJFZERTQSIsImtpZCI6InNlYWwifQ." + "x" * 380 + ".c2lnbmF0dXJl"


def test_the_png_carries_exactly_the_qr_code_of_the_text() -> None:
    image = qr_png(TOKEN)
    assert image.startswith(PNG_SIGNATURE)
    assert [kind for kind, _ in png_chunks(image)] == [b"IHDR", b"IDAT", b"IEND"]
    modules = png_modules(image, MODULE_PIXELS)
    expected = qr_matrix(TOKEN)
    assert modules == expected
    # A QR code of this length: version 4k+17 modules a side, plus the quiet zone.
    side = len(modules) - 2 * QUIET_ZONE
    assert (side - 17) % 4 == 0 and 1 <= (side - 17) // 4 <= 40
    assert not any(modules[0]) and not any(row[0] for row in modules)  # white margin
    # The finder pattern's top-left corner is dark; another text gives another code.
    assert modules[QUIET_ZONE][QUIET_ZONE] is True
    assert png_modules(qr_png(TOKEN[:-1] + "A"), MODULE_PIXELS) != expected
