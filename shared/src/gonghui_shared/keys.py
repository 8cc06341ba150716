"""Keys: loaded from settings, or generated once for development.

Generated keys live under `<data_dir>/dev-keys/`, are announced in the log as
dev-only, and are refused in production (`require_configured`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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


def public_pem(private: Ed25519PrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
