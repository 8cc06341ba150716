"""Keys: loaded from settings, or generated once for development.

Generated keys live under `<data_dir>/dev-keys/`, are announced in the log as
dev-only, and are refused in production (`require_configured`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

log = logging.getLogger(__name__)


class DevKeyInProduction(RuntimeError):
    """A key is missing in production mode; we never fall back to a generated one there."""


def dev_key(data_dir: Path, name: str, make: Callable[[], bytes], *, production: bool) -> bytes:
    """Return the dev key `name`, creating it atomically on first use."""
    if production:
        raise DevKeyInProduction(
            f"{name} is not configured; production mode does not generate dev keys"
        )
    folder = data_dir / "dev-keys"
    path = folder / name
    if path.exists():
        return path.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    # Several services may start at once: write aside, then link into place;
    # link fails if another process won, and we read theirs.
    fd, tmp = tempfile.mkstemp(dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
            log.warning("generated dev-only key %s; never use it in production", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def new_ed25519_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_fernet_key() -> bytes:
    return Fernet.generate_key()


def new_secret() -> bytes:
    return os.urandom(32).hex().encode()


def load_private_key(pem: str | bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("expected an Ed25519 private key")
    return key


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("expected an Ed25519 public key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint: a stable `kid` that changes when the key does."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The public key as an OKP/Ed25519 JWK (RFC 8037) with its `kid`, for a JWKS."""
    jwk: dict[str, str] = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": key_id(public), "alg": "EdDSA", "use": "sig"}


def keys_from_jwks(jwks: dict[str, Any]) -> list[Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS document; other key types are skipped."""
    found = []
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or jwk.get("use", "sig") != "sig":
            continue
        key = OKPAlgorithm.from_jwk(jwk)
        if isinstance(key, Ed25519PublicKey):
            found.append(key)
    if not found:
        raise ValueError("the JWKS holds no Ed25519 signing key")
    return found


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_pem(private: Ed25519PrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
