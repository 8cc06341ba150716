"""A minimal service for testing the shared machinery end to end.

It has the bus tables of `busdb` (and its `tally`), one event type, a consumer of
its own stream whose handler can be made to fail for chosen things, and one write
endpoint that records an event: the app comes from `create_service_app`, so its
readiness, error handlers and dead letter endpoints are the ones every service has.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.app import create_service_app
from gonghui_shared.bus import Bus, Subscription, record_event
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.db import Database
from gonghui_shared.deps import SessionDep
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing.busdb import inbox, outbox, tally

SOURCE = "testsvc"


class ThingHappened(Event):
    type = "testsvc.thing.happened"

    thing_id: str


class ThingNoted(Event):
    """A type the probe consumer has no handler for."""

    type = "testsvc.thing.noted"

    thing_id: str


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = SOURCE


@dataclass
class Tally:
    """The consumer's handler: one `tally` row per applied event; fails for `failing` things."""

    failing: set[str] = field(default_factory=set)
    calls: int = 0

    async def __call__(self, session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, ThingHappened)
        self.calls += 1
        await session.execute(insert(tally).values(event_id=str(envelope.event_id)))
        if event.thing_id in self.failing:
            raise RuntimeError(f"cannot apply {event.thing_id}")


def subscription(handler: Tally, **kwargs: Any) -> Subscription:
    """A durable of its own (named for the test), reading the probe's stream."""
    durable = kwargs.pop("durable", f"test_{uuid.uuid4().hex[:8]}")
    return Subscription(durable=durable, source=SOURCE, handlers={ThingHappened: handler}, **kwargs)


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/things/{thing_id}", status_code=201)
    async def record_thing(thing_id: str, session: SessionDep) -> dict[str, str]:
        """Record that a thing happened: one event in the outbox."""
        await record_event(session, outbox, ThingHappened(thing_id=thing_id), aggregate_id=thing_id)
        return {"thing_id": thing_id}

    return router


@asynccontextmanager
async def probe_app(
    settings: ProbeSettings, subscriptions: list[Subscription] | None = None
) -> AsyncIterator[FastAPI]:
    """The running app (its lifespan entered), consuming with `subscriptions`."""
    app = create_service_app(
        settings,
        title="probe",
        description="a minimal service",
        version="0",
        routers=[_router()],
        outbox=outbox,
        inbox=inbox,
        subscriptions=subscriptions or [],
    )
    async with app.router.lifespan_context(app):
        yield app


def thing_envelope(
    thing_id: str,
    *,
    seq: int | None = None,
    org_path: str | None = None,
    event_type: str = ThingHappened.type,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type=event_type,
        version=1,
        occurred_at=datetime.now(UTC),
        source=SOURCE,
        aggregate_id=thing_id,
        aggregate_seq=seq,
        org_path=org_path,
        data={"thing_id": thing_id},
    )


async def publish(bus: Bus, envelope: EventEnvelope) -> None:
    """Straight to the stream, in the order of the calls (no Nats-Msg-Id: copies stay)."""
    await bus.js.publish(envelope.subject(bus.root), envelope.model_dump_json().encode())


async def applied_ids(db: Database) -> list[str]:
    """Event ids in the tally, in the order they were applied."""
    async with db.sessions() as session:
        return list(await session.scalars(select(tally.c.event_id).order_by(tally.c.id)))


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> float:
    """Poll until `predicate()` holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if await predicate():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001, S110 - not there yet (a stream, a consumer, NATS)
            pass
        assert time.monotonic() - started < timeout, f"{what} not reached in {timeout} s"
        await asyncio.sleep(0.05)
