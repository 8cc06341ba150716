"""The NATS connection: reconnects forever, and never blocks a service's start.

A service starts even when NATS is down (readiness says so); the relay and the
consumers wait for `Bus.connected()` and carry on once it is back.

Streams are durable event logs: file storage, `num_replicas` from settings (3
in production), and when a limit is reached JetStream refuses new events
(`DiscardPolicy.NEW`) rather than silently dropping the oldest: a refused publish
stays in the producer's outbox (the backlog metric shows it) until someone raises
the limit, whereas a dropped event would be lost for every consumer that had not
read it yet, and for every dashboard rebuild after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

# Longer than the relay's retry horizon (`relay.RETRY_HORIZON_SECONDS`), so a
# re-publish after a crash is recognised as the same message; a test holds them apart.
DUPLICATE_WINDOW_SECONDS = 24 * 3600.0

# The stream of dead letters: `<root>.deadletter.<durable>`, one per deployment root.
DEAD_LETTER_SOURCE = "deadletter"


def stream_name(root: str, service: str) -> str:
    return f"{root}_{service}".upper().replace(".", "_").replace("-", "_")


def dead_letter_subject(root: str, durable: str) -> str:
    return f"{root}.{DEAD_LETTER_SOURCE}.{durable}"


@dataclass(frozen=True)
class StreamLimits:
    """How much a stream keeps; 0 / -1 mean no limit (JetStream's own convention)."""

    max_age_seconds: float = 0.0
    max_bytes: int = -1
    max_msgs: int = -1


class Bus:
    """One NATS connection with JetStream, shared by a service's relay and consumers."""

    def __init__(
        self,
        servers: str,
        name: str,
        *,
        root: str = "gonghui",
        replicas: int = 1,
        limits: StreamLimits | None = None,
        connect_timeout: float = 2.0,
        request_timeout: float = 5.0,
    ) -> None:
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.name = name
        self.root = root
        self.replicas = replicas
        self.limits = limits or StreamLimits()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        # Bumped on every reconnect: consumers compare it to re-create their pull
        # subscriptions, which a reconnect can leave without an outstanding pull.
        self.reconnects = 0
        # Called after each reconnect: whoever backed off while NATS was away resumes now.
        self.reconnect_listeners: list[Callable[[], None]] = []
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._streams: set[str] = set()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NATS is not connected yet")
        return self._js

    @property
    def is_connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        """Connect in the background, retrying until NATS answers."""
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.name}-nats-connect")

    async def connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    servers=self.servers,
                    name=self.name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=self.connect_timeout,
                    drain_timeout=5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                self._js = self.nc.jetstream(timeout=self.request_timeout)
                self._ready.set()
                log.info("connected to NATS", extra={"servers": self.servers})
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "try again"
                log.warning("NATS not reachable yet: %s", exc, extra={"servers": self.servers})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS error: %s", exc)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        log.info("reconnected to NATS")
        for listener in self.reconnect_listeners:
            listener()

    def stream_config(self, service: str) -> StreamConfig:
        """The configuration of the stream holding `service`'s events."""
        return StreamConfig(
            name=stream_name(self.root, service),
            subjects=[f"{self.root}.{service}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_age=self.limits.max_age_seconds,
            max_bytes=self.limits.max_bytes,
            max_msgs=self.limits.max_msgs,
            num_replicas=self.replicas,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )

    async def ensure_stream(self, service: str, *, update: bool = True) -> str:
        """Create the stream that holds `service`'s events, or bring its settings up to date;
        safe to repeat. Only the owner updates (`update=False` for a consumer): otherwise,
        during a rolling upgrade, old and new consumers would flip the producer's settings."""
        config = self.stream_config(service)
        name = config.name
        assert name is not None
        try:
            await self.js.stream_info(name)
            if update:
                await self.js.update_stream(config)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                # Another instance created it between our look and our add.
                if update:
                    await self.js.update_stream(config)
        self._streams.add(name)
        return name

    async def check(self) -> None:
        """Raise unless NATS is connected and JetStream answers."""
        if not self.is_connected:
            raise ConnectionError("not connected to NATS")
        await self.js.account_info()

    async def close(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.warning("NATS drain failed: %s", exc)
                await self.nc.close()
