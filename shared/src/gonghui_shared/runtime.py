"""What a running service holds: settings, database, bus, relay, consumers, keys.

Built in the app's lifespan (or a CLI) from settings; stopped in reverse order
so the relay and consumers drain before the connections close.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table

from gonghui_shared import keys
from gonghui_shared.auth import TokenVerifier
from gonghui_shared.bus import Bus, EventConsumer, OutboxRelay, Subscription
from gonghui_shared.db import Database
from gonghui_shared.pii import PiiCipher
from gonghui_shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def load_jwt_private_key(settings: ServiceSettings) -> Ed25519PrivateKey:
    pem = settings.jwt_private_key or keys.dev_key(
        settings.data_dir, "jwt_ed25519.pem", keys.new_ed25519_pem, production=settings.production
    )
    return keys.load_private_key(pem)


def load_verifier(settings: ServiceSettings) -> TokenVerifier:
    if settings.jwt_public_key:
        return TokenVerifier(keys.load_public_key(settings.jwt_public_key))
    return TokenVerifier(load_jwt_private_key(settings).public_key())


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
    consumers: list[EventConsumer] = field(default_factory=list)

    @classmethod
    def create(cls, settings: ServiceSettings, outbox: Table) -> ServiceRuntime:
        db = Database(settings.database_url)
        bus = Bus(
            settings.nats_url,
            settings.service_name,
            root=settings.subject_root,
            replicas=settings.stream_replicas,
        )
        relay = OutboxRelay(
            db,
            bus,
            outbox,
            service=settings.service_name,
            poll_seconds=settings.outbox_poll_seconds,
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            relay=relay,
            verifier=load_verifier(settings),
            pii=load_pii_cipher(settings),
        )

    def start(self, inbox: Table | None = None, subscriptions: Sequence[Subscription] = ()) -> None:
        self.bus.start()
        self.relay.start()
        for sub in subscriptions:
            if inbox is None:
                raise ValueError("consumers need the service's inbox table")
            consumer = EventConsumer(self.db, self.bus, inbox, sub)
            consumer.start()
            self.consumers.append(consumer)

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.bus.close()
        await self.db.dispose()
        log.info("stopped cleanly")
