"""Personal data: encrypted at rest, looked up by keyed hash, masked on output.

ID numbers and phone numbers are encrypted with Fernet (AES + HMAC); several
keys may be configured, newest first, so old rows stay readable while keys
rotate. Lookup and duplicate detection use an HMAC of the normalised value,
never the plain value.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class PiiCipher:
    def __init__(self, keys: list[bytes], hash_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one personal-data key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._newest = Fernet(keys[0])
        self._hash_key = hash_key

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def rotate(self, token: str) -> str:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """Whether the newest key opens `token`: a rotation can leave it as it is."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def mask_id_number(number: str) -> str:
    """530921199001011234 -> 530921********1234"""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str) -> str:
    """+8613800138000 -> 138****8000 (mainland mobiles shown without +86)."""
    digits = phone[3:] if phone.startswith("+86") else phone
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
