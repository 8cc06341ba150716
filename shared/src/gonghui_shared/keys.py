"""Keys: loaded from settings, or generated once for development.

Generated keys live under `<data_dir>/dev-keys/`, are announced in the log as
dev-only, and are refused in production: a production service never generates one
(`dev_key`), and its settings refuse to load when a key it needs is missing or is a
copy of a generated dev key (`production_key_problems`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


# How a configured value is compared with a dev key file: a public PEM with the public
# half of the dev private key, a Fernet list entry by entry; a URL is never a dev key.
KeyKind = Literal["private_pem", "public_pem", "fernet_list", "secret", "url"]


@dataclass(frozen=True)
class ProductionKey:
    """A key a service needs in production: any one of `fields` (name -> kind) set will do,
    and none set may be a copy of `dev_file`, the generated key under `<data_dir>/dev-keys/`."""

    fields: dict[str, KeyKind]
    dev_file: str
    required: bool = True  # False: may be left unset, but never be a dev key


def _same_key(kind: KeyKind, configured: str, dev: bytes) -> bool:
    if kind == "url":
        return False
    if kind == "secret":
        return configured.strip().encode() == dev.strip()
    if kind == "fernet_list":
        return any(k.strip().encode() == dev.strip() for k in configured.split(","))
    try:
        dev_public = load_private_key(dev).public_key()
        publics = (
            [load_private_key(configured).public_key()]
            if kind == "private_pem"
            else load_public_keys(configured)
        )
    except ValueError:
        return False  # not a usable key at all: loading it later says so
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return any(p.public_bytes(*raw) == dev_public.public_bytes(*raw) for p in publics)


def production_key_problems(
    values: dict[str, Any],
    needed: tuple[ProductionKey, ...],
    env_names: dict[str, str],
    data_dir: Path,
) -> list[str]:
    """What keeps these settings from running in production: each key in `needed` that is
    not set, or is set to a copy of a generated dev key, named by its environment variable."""
    problems = []
    for key in needed:
        configured = [
            (name, kind, values[name]) for name, kind in key.fields.items() if values.get(name)
        ]
        if not configured and key.required:
            problems.append(f"{' or '.join(env_names[name] for name in key.fields)} is not set")
        dev_path = data_dir / "dev-keys" / key.dev_file
        if not dev_path.is_file():
            continue
        dev = dev_path.read_bytes()
        for name, kind, value in configured:
            if _same_key(kind, str(value), dev):
                problems.append(
                    f"{env_names[name]} is the generated dev key {dev_path}; "
                    "generate one of its own for production"
                )
    return problems


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


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def load_public_keys(pems: str) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a text of one PEM block or several: while a signing key
    is rotated, a setting lists the old and the new one."""
    blocks = [match.group(0) for match in _PEM_BLOCK.finditer(pems)]
    if not blocks:
        raise ValueError("expected one or more PEM blocks of Ed25519 public keys")
    return [load_public_key(block) for block in blocks]


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
