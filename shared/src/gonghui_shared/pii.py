"""Personal data: encrypted at rest, looked up by keyed hash, masked on output.

ID numbers and phone numbers are encrypted with AES-256-GCM. The configured keys are
Fernet keys (what `GONGHUI_PII_KEYS` has always held), newest first; each one's AES key is
derived from it with HKDF, and a value names the key it was written with, so old rows stay
readable while keys rotate. A value is `g1.` and, in unpadded URL-safe base64, the key's
4-byte id, a 12-byte random nonce and the ciphertext with its tag.

Values written before AES-GCM are Fernet tokens (AES-128-CBC with HMAC-SHA256), read as
before. They cost seven times as much to open (14 µs against 2 µs, twice on every member
lookup that shows personal data): `rotate-pii-keys` rewrites them in the new form, as it
rewrites a value under an older key.

Lookup and duplicate detection use an HMAC of the normalised value, never the plain value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "g1."  # never the start of a Fernet token, which is base64 of the byte 0x80: "gA"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


def _derived(fernet_key: bytes, purpose: bytes, length: int) -> bytes:
    """Bytes for `purpose` from a configured Fernet key's 32 bytes, through HKDF-SHA256."""
    info = b"gonghui personal data, AES-256-GCM v1: " + purpose
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
    return hkdf.derive(base64.urlsafe_b64decode(fernet_key))


class PiiCipher:
    def __init__(self, keys: list[bytes], hash_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one personal-data key is required")
        self._legacy = MultiFernet([Fernet(k) for k in keys])  # checks each key's form too
        self._aeads: dict[bytes, AESGCM] = {}
        for key in keys:
            key_id = _derived(key, b"key id", _KEY_ID_BYTES)
            self._aeads.setdefault(key_id, AESGCM(_derived(key, b"key", 32)))
        self._newest_id = next(iter(self._aeads))
        self._newest = self._aeads[self._newest_id]
        self._hash_key = hash_key

    def encrypt(self, value: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._newest.encrypt(nonce, value.encode(), None)
        return PREFIX + _b64(self._newest_id + nonce + sealed)

    def decrypt(self, token: str) -> str:
        """The plain value; `InvalidToken` if no configured key opens it."""
        if not token.startswith(PREFIX):
            return self._legacy.decrypt(token.encode()).decode()
        return self._open(token)[1]

    def rotate(self, token: str) -> str:
        """Re-encrypt with the newest key, in the current form."""
        return self.encrypt(self.decrypt(token))

    def is_current(self, token: str) -> bool:
        """Whether `token` is in the current form and the newest key opens it: a rotation
        can leave it as it is."""
        if not token.startswith(PREFIX):
            return False
        try:
            return self._open(token)[0] == self._newest_id
        except InvalidToken:
            return False

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def _open(self, token: str) -> tuple[bytes, str]:
        """A current-form value's key id and plain value; `InvalidToken` if it is damaged or
        no configured key is the one it names."""
        text = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidToken from None
        nonce_end = _KEY_ID_BYTES + _NONCE_BYTES
        key_id, nonce, sealed = raw[:_KEY_ID_BYTES], raw[_KEY_ID_BYTES:nonce_end], raw[nonce_end:]
        aead = self._aeads.get(key_id)
        if aead is None or len(sealed) < 16:  # 16: the GCM tag
            raise InvalidToken
        try:
            return key_id, aead.decrypt(nonce, sealed, None).decode()
        except InvalidTag:
            raise InvalidToken from None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


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
