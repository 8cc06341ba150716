"""What a running service holds: settings, database, bus, relay, consumers, keys.

Built in the app's lifespan (or a CLI) from settings; stopped in reverse order
so the relay and consumers drain before the connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Table

from gonghui_shared import keys
from gonghui_shared.auth import TokenVerifier
from gonghui_shared.bus import Bus, EventConsumer, OutboxRelay, Subscription
from gonghui_shared.bus.connection import StreamLimits
from gonghui_shared.db import Database
from gonghui_shared.pii import PiiCipher
from gonghui_shared.reads import ReadPool
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.tracing import Tracing

log = logging.getLogger(__name__)


# Gen-1 collections between full ones, while start-up is frozen (CPython's default: 10).
FULL_COLLECTION_EVERY = 100


@contextmanager
def startup_frozen() -> Iterator[None]:
    """What start-up built (modules, routes, models, pools) is kept out of the cyclic
    collector's sight until the block ends: a full collection then walks only what the
    work made since. A service's 150,000 start-up objects took a full collection 60-100
    ms (every ~1,500 requests, most of the gateway's p99); a 20,000-row roster import
    spent 0.55 s of its 3.5 s of CPU in four of them. They are still freed by their
    reference counts; only cycles among them wait for the block's end.

    Full collections are also made ten times rarer (`FULL_COLLECTION_EVERY`). Walking the
    gateway's 20,000 objects made since start-up still took 7-15 ms of CPU under load,
    their references into the frozen ones read from all over memory, and came several
    times a second at 6,000 requests/s: the cached overview's p99 went from 9-13 ms to
    5-6. Cycles of garbage that live that long wait longer to be freed; there are few."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def load_jwt_private_key(settings: ServiceSettings) -> Ed25519PrivateKey:
    pem = settings.jwt_private_key or keys.dev_key(
        settings.data_dir, "jwt_ed25519.pem", keys.new_ed25519_pem, production=settings.production
    )
    return keys.load_private_key(pem)


def load_verifier(settings: ServiceSettings) -> TokenVerifier:
    """The verifier from local keys: the issuer's own key (and those it accepts beside it),
    the configured PEMs, or the dev key."""
    if settings.jwt_public_key and not settings.issues_tokens:
        return TokenVerifier(keys.load_public_keys(settings.jwt_public_key))
    signing = load_jwt_private_key(settings).public_key()
    accepted = settings.jwt_accepted_public_keys if settings.issues_tokens else None
    return TokenVerifier([signing, *(keys.load_public_keys(accepted) if accepted else [])])


class JwksUnavailable(RuntimeError):
    """The JWKS could not be fetched within the start-up window."""


async def fetch_jwks(
    url: str,
    *,
    wait_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Ed25519PublicKey]:
    """The signing keys published at `url`, retrying with back-off for up to `wait_seconds`.

    The gateway may start after the services: connection errors, 5xx answers and
    unusable documents are retried; the last problem is reported when time runs out.
    """
    deadline = time.monotonic() + wait_seconds
    delay, attempts, problem = 0.2, 0, ""
    async with httpx.AsyncClient(timeout=5.0, transport=transport, trust_env=False) as client:
        while True:
            attempts += 1
            try:
                response = await client.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                return keys.keys_from_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            left = deadline - time.monotonic()
            if left <= 0:
                raise JwksUnavailable(
                    f"no usable JWKS at {url} after {attempts} attempts ({problem})"
                )
            log.warning("JWKS not available yet, retrying", extra={"url": url, "error": problem})
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


async def build_verifier(settings: ServiceSettings) -> TokenVerifier:
    """The service's verifier: from the gateway's JWKS when configured, else from local keys."""
    if settings.jwks_url and not settings.issues_tokens:
        found = await fetch_jwks(settings.jwks_url, wait_seconds=settings.jwks_wait_seconds)
        log.info("verifying tokens with the JWKS", extra={"url": settings.jwks_url})
        return TokenVerifier(found)
    return load_verifier(settings)


class JwksRefresher:
    """Keeps a verifier's keys the same as those the gateway's JWKS publishes while the
    service runs, so a signing key can be rotated without restarting the services (README,
    "Rotate keys").

    The JWKS is fetched again every `every_seconds`, which also withdraws a key the gateway
    no longer publishes, and at once when a token names a key not yet known
    (`fetch_for_unknown_key`), though not more often than every `MIN_INTERVAL_SECONDS`: a
    made-up `kid` must not turn every request into a fetch. A failed fetch keeps the keys
    held and is logged; the next one tries again."""

    MIN_INTERVAL_SECONDS = 10.0

    def __init__(self, url: str, verifier: TokenVerifier, every_seconds: float) -> None:
        self.url = url
        self.verifier = verifier
        self.every_seconds = every_seconds
        self._fetched_at = time.monotonic()  # start-up has just fetched it
        self._fetching: asyncio.Task[bool] | None = None
        self._schedule: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(
        cls, settings: ServiceSettings, verifier: TokenVerifier
    ) -> JwksRefresher | None:
        """The refresher of a verifier `build_verifier` made from the JWKS; None otherwise."""
        if settings.jwks_url and not settings.issues_tokens:
            return cls(settings.jwks_url, verifier, settings.jwks_refresh_seconds)
        return None

    def start(self) -> None:
        self._schedule = asyncio.create_task(self._every(), name="jwks-refresh")

    async def stop(self) -> None:
        for task in (self._schedule, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def fetch_for_unknown_key(self) -> bool:
        """Fetch the JWKS for a token naming an unknown key, unless that was done moments
        ago; whether the keys were fetched, so the token is worth verifying again. Callers
        at once share one fetch."""
        if self._fetching is None:
            if time.monotonic() - self._fetched_at < self.MIN_INTERVAL_SECONDS:
                return False
            self._fetching = asyncio.create_task(self._fetch("a token of an unknown key"))
            self._fetching.add_done_callback(self._fetched)
        return await asyncio.shield(self._fetching)

    def _fetched(self, task: asyncio.Task[bool]) -> None:
        if self._fetching is task:
            self._fetching = None

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            await self._fetch("scheduled")

    async def _fetch(self, reason: str) -> bool:
        self._fetched_at = time.monotonic()
        try:
            found = await fetch_jwks(self.url, wait_seconds=0)
        except JwksUnavailable as exc:
            log.warning("JWKS not fetched; verifying with the keys held", extra={"error": str(exc)})
            return False
        added, withdrawn = self.verifier.replace_keys(found)
        if added or withdrawn:
            log.info(
                "JWKS keys changed",
                extra={"reason": reason, "added": sorted(added), "withdrawn": sorted(withdrawn)},
            )
        return True


def load_pii_cipher(settings: ServiceSettings) -> PiiCipher:
    production = settings.production
    if settings.pii_keys:
        fernet_keys = [k.strip().encode() for k in settings.pii_keys.split(",") if k.strip()]
    else:
        fernet_keys = [
            keys.dev_key(settings.data_dir, "pii.key", keys.new_fernet_key, production=production)
        ]
    hash_key = (
        settings.pii_hash_key.encode()
        if settings.pii_hash_key
        else keys.dev_key(settings.data_dir, "pii-hash.key", keys.new_secret, production=production)
    )
    return PiiCipher(fernet_keys, hash_key)


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    db: Database
    bus: Bus
    relay: OutboxRelay
    verifier: TokenVerifier
    pii: PiiCipher
    # The hot reads' own connections (`gonghui_shared.reads`); opened in the app's start-up.
    reads: ReadPool
    consumers: list[EventConsumer] = field(default_factory=list)
    tracing: Tracing = field(default_factory=Tracing)
    # Set when the verifier's keys come from the gateway's JWKS: keeps them current.
    jwks: JwksRefresher | None = None

    @classmethod
    def create(
        cls,
        settings: ServiceSettings,
        outbox: Table,
        verifier: TokenVerifier | None = None,
        *,
        tracing: Tracing | None = None,
    ) -> ServiceRuntime:
        """The runtime; `verifier` defaults to one from local keys (see `build_verifier`),
        `tracing` to off (the app makes it from the settings, for its requests too)."""
        tracing = tracing or Tracing()
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_timeout=settings.db_connect_timeout,
        )
        bus = Bus(
            settings.nats_url,
            settings.service_name,
            root=settings.subject_root,
            replicas=settings.stream_replicas,
            limits=StreamLimits(
                max_age_seconds=settings.stream_max_age_seconds,
                max_bytes=settings.stream_max_bytes,
                max_msgs=settings.stream_max_msgs,
            ),
            connect_timeout=settings.nats_connect_timeout,
            request_timeout=settings.nats_request_timeout,
        )
        relay = OutboxRelay(
            db,
            bus,
            outbox,
            service=settings.service_name,
            poll_seconds=settings.outbox_poll_seconds,
            tracing=tracing,
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            relay=relay,
            verifier=verifier or load_verifier(settings),
            pii=load_pii_cipher(settings),
            reads=ReadPool(db, settings),
            tracing=tracing,
        )

    def start(self, inbox: Table | None = None, subscriptions: Sequence[Subscription] = ()) -> None:
        if self.jwks is not None:
            self.jwks.start()
        self.bus.start()
        self.relay.start()
        for sub in subscriptions:
            if inbox is None:
                raise ValueError("consumers need the service's inbox table")
            consumer = EventConsumer(self.db, self.bus, inbox, sub, tracing=self.tracing)
            consumer.start()
            self.consumers.append(consumer)

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.bus.close()
        if self.jwks is not None:
            await self.jwks.stop()
        await self.reads.dispose()
        await self.db.dispose()
        if self.tracing.enabled:
            # In a thread: exporting may wait on an unreachable collector for its timeout.
            await asyncio.to_thread(self.tracing.flush)
        log.info("stopped cleanly")
