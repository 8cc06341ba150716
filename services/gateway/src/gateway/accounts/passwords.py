"""Password hashes: scrypt from the standard library, a salt per password, constant-time checks.

A hash is stored as `scrypt$<n>$<r>$<p>$<salt>$<digest>` (base64url), so the cost can
rise later without invalidating the passwords already stored. Hashing takes tens of
milliseconds on purpose: call these from a thread (`asyncio.to_thread`), never on the
event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

_R, _P, _SALT_BYTES, _DKLEN = 8, 1, 16, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem above OpenSSL's 32 MiB default, which N=2**15 with r=8 would exceed.
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=256 * r * n + 2**20
    )


def hash_password(password: str, *, n: int) -> str:
    """A new salted hash of `password` with cost `n` (a power of two)."""
    salt = os.urandom(_SALT_BYTES)
    digest = _scrypt(password, salt, n, _R, _P)
    return f"scrypt${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None, *, n: int) -> bool:
    """Whether `password` matches `stored`; with no stored hash, spend the same time and fail.

    Checking a dummy hash for unknown users keeps the answer time the same, so timing
    does not tell which usernames exist.
    """
    if stored is None:
        hmac.compare_digest(_scrypt(password, b"\0" * _SALT_BYTES, n, _R, _P), _dummy(n))
        return False
    try:
        scheme, n_text, r_text, p_text, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n_text), int(r_text), int(p_text))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@lru_cache(maxsize=4)
def _dummy(n: int) -> bytes:
    return _scrypt("not a password", b"\1" * _SALT_BYTES, n, _R, _P)
