"""What accounts keep for the life of the process: the issuer, caches, membership, the sender.

Two caches sit on the path of every request, so that a revocation check costs no
database round trip: the set of revoked access-token ids and the API keys recently
seen. Both are trusted for `revocation_cache_seconds`; a revocation made by this
process applies at once (it updates them after its commit), one made by another
gateway process within that time. (A token's signature is checked once, then
remembered until it expires, by the runtime's `TokenVerifier` itself.)
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from gateway.accounts import repository
from gateway.accounts.directory import MembershipDirectory
from gateway.accounts.models import ApiKey
from gateway.accounts.otp import OtpSender, load_sender
from gateway.base import utcnow
from gateway.config import GatewaySettings
from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.db import Database
from gonghui_shared.permissions import ApiScope, Role, scope_actions
from gonghui_shared.pii import PiiCipher
from gonghui_shared.runtime import ServiceRuntime, load_jwt_private_key

API_KEY_SUBJECT = "api-key:"


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (refresh token, API key): enough to store and find it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def key_scopes(key: ApiKey) -> list[ApiScope]:
    return [ApiScope(s) for s in key.scopes.split()]


def principal_of_key(key: ApiKey) -> Principal:
    """A government system acting by API key: gov_system, the key's org, its scopes' actions."""
    return Principal(
        subject=f"{API_KEY_SUBJECT}{key.id}",
        role=Role.gov_system,
        org_id=key.org_id,
        org_path=key.org_path,
        scopes=sorted(scope_actions(key_scopes(key))),
    )


class RevocationCache:
    """The ids of revoked access tokens that have not expired yet."""

    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._jtis: set[str] = set()
        self._local: dict[str, datetime] = {}  # revoked here, kept until a reload has them
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def is_revoked(self, jti: str) -> bool:
        if self._ttl <= 0:
            async with self._db.sessions() as session:
                return await repository.is_revoked(session, jti)
        if time.monotonic() - self._loaded_at >= self._ttl:
            async with self._lock:
                if time.monotonic() - self._loaded_at >= self._ttl:
                    await self._reload()
        return jti in self._jtis

    async def _reload(self) -> None:
        now = utcnow()
        async with self._db.sessions() as session:
            stored = set(await repository.live_revoked_jtis(session, now))
        # A revocation committed while the query ran may be missing from it: keep it.
        self._local = {j: exp for j, exp in self._local.items() if j not in stored and exp > now}
        self._jtis = stored | set(self._local)
        self._loaded_at = time.monotonic()

    def add(self, tokens: Iterable[tuple[str, datetime]]) -> None:
        """Revocations this process has just committed."""
        for jti, expires_at in tokens:
            self._jtis.add(jti)
            self._local[jti] = expires_at


@dataclass
class _CachedKey:
    principal: Principal
    at: float


class ApiKeyCache:
    """API keys recently presented, by secret hash; unknown secrets are never cached."""

    MAX_ENTRIES = 10_000

    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._entries: dict[str, _CachedKey] = {}

    async def principal(self, secret: str) -> Principal | None:
        digest = secret_hash(secret)
        hit = self._entries.get(digest)
        if hit is not None and time.monotonic() - hit.at < self._ttl:
            return hit.principal
        async with self._db.sessions() as session:
            key = await repository.key_by_secret_hash(session, digest)
        if key is None or key.revoked_at is not None:
            self._entries.pop(digest, None)
            return None
        principal = principal_of_key(key)
        if self._ttl > 0:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = _CachedKey(principal, time.monotonic())
        return principal

    def evict(self, key_id: str) -> None:
        subject = f"{API_KEY_SUBJECT}{key_id}"
        for digest in [d for d, e in self._entries.items() if e.principal.subject == subject]:
            del self._entries[digest]


@dataclass
class AccountsState:
    settings: GatewaySettings
    db: Database
    pii: PiiCipher
    issuer: TokenIssuer
    revocations: RevocationCache
    api_keys: ApiKeyCache
    directory: MembershipDirectory
    sender: OtpSender

    @classmethod
    def create(cls, runtime: ServiceRuntime) -> AccountsState:
        settings = runtime.settings
        assert isinstance(settings, GatewaySettings)
        issuer = TokenIssuer(load_jwt_private_key(settings))
        return cls(
            settings=settings,
            db=runtime.db,
            pii=runtime.pii,
            issuer=issuer,
            revocations=RevocationCache(runtime.db, settings.revocation_cache_seconds),
            api_keys=ApiKeyCache(runtime.db, settings.revocation_cache_seconds),
            directory=MembershipDirectory(settings, issuer),
            sender=load_sender(settings),
        )


def get_accounts(request: Request) -> AccountsState:
    state: AccountsState = request.app.state.accounts
    return state


async def _accounts(request: Request) -> AccountsState:
    # async: a plain `def` dependency would cost a hop to the thread pool on every call.
    return get_accounts(request)


AccountsDep = Annotated[AccountsState, Depends(_accounts)]
