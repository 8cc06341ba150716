"""Membership's events on real NATS, for testing the services that consume them."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, func, select

from gonghui_shared.bus.consumer import ConsumerTables
from gonghui_shared.contracts import Event, EventEnvelope, envelope_for
from gonghui_shared.contracts.membership import CadreAppointed, MemberApproved, OrgCreated
from gonghui_shared.deadletters import repository as dead_letters
from gonghui_shared.ids import new_id
from gonghui_shared.runtime import ServiceRuntime

_member_serial = itertools.count(1)


@dataclass
class MembershipFeed:
    """Publishes membership's events on NATS, as membership would, and waits until a
    consuming service has applied them (its inbox has their ids)."""

    runtime: ServiceRuntime
    inbox: Table  # the consuming service's inbox
    durable: str  # its durable consumer of membership's stream
    published: list[str] = field(default_factory=list)

    async def publish(
        self,
        event: Event,
        *,
        aggregate_id: str,
        org_path: str | None,
        occurred_at: datetime | None = None,
    ) -> EventEnvelope:
        envelope = envelope_for(
            event, aggregate_id=aggregate_id, org_path=org_path, occurred_at=occurred_at
        )
        await self.resend(envelope)
        return envelope

    async def resend(self, envelope: EventEnvelope) -> None:
        """Deliver an envelope (again): a redelivery, as after a relay crash."""
        bus = self.runtime.bus
        await bus.ensure_stream("membership")
        # No Nats-Msg-Id on purpose: a resend must reach the consumer, like a redelivery.
        await bus.js.publish(envelope.subject(bus.root), envelope.model_dump_json().encode())
        self.published.append(str(envelope.event_id))

    async def synced(self, timeout: float = 10.0) -> None:
        """Wait until every event published so far is in training's inbox."""
        wanted = set(self.published)
        deadline = time.monotonic() + timeout
        while True:
            async with self.runtime.db.sessions() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(self.inbox)
                    .where(
                        self.inbox.c.consumer == self.durable,
                        self.inbox.c.event_id.in_(wanted),
                    )
                )
            if done == len(wanted):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.durable} applied {done} of {len(wanted)} events")
            await asyncio.sleep(0.02)

    async def org(
        self,
        parent: dict[str, Any] | None,
        org_type: str,
        name: str,
        region_code: str,
        *,
        lon: float | None = None,
        lat: float | None = None,
    ) -> dict[str, Any]:
        """Create an org (optionally located, WGS-84) under `parent`; not waited for."""
        org_id = new_id()
        path = f"{parent['path'] if parent else '/'}{org_id}/"
        await self.publish(
            OrgCreated(
                org_id=org_id,
                parent_id=parent["id"] if parent else None,
                path=path,
                org_type=org_type,
                name=name,
                region_code=region_code,
                lon=lon,
                lat=lat,
            ),
            aggregate_id=org_id,
            org_path=path,
        )
        return {"id": org_id, "path": path, "name": name, "region_code": region_code}

    async def tree(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A county, one township and one village, known to the consumer."""
        county = await self.org(None, "county_federation", "凤庆县总工会", "530921000000")
        township = await self.org(county, "township_union", "凤山镇工会", "530921101000")
        village = await self.org(township, "village_union", "京竹林村工会委员会", "530921101201")
        await self.synced()
        return county, township, village

    async def member(
        self,
        org: dict[str, Any],
        *,
        category: str = "migrant_worker",
        subtype: str | None = None,
        name: str | None = None,
        sync: bool = True,
    ) -> str:
        """Admit a member (as membership would announce it); returns the member number."""
        approval = _approval(org, category=category, subtype=subtype, name=name)
        await self.publish(approval, aggregate_id=approval.member_id, org_path=org["path"])
        if sync:
            await self.synced()
        return approval.member_no

    async def dead_letter(self, org: dict[str, Any]) -> str:
        """A member's approval in `org` that the consumer gave up on, stored as the consumer
        stores one (replaying it admits the member); returns the dead letter's id."""
        approval = _approval(org)
        envelope = envelope_for(approval, aggregate_id=approval.member_id, org_path=org["path"])
        now = datetime.now(UTC)
        row = {
            "id": new_id(),
            "consumer": self.durable,
            "event_id": str(envelope.event_id),
            "event_type": envelope.type,
            "aggregate_id": envelope.aggregate_id,
            "aggregate_seq": envelope.aggregate_seq,
            "org_path": envelope.org_path,
            "subject": envelope.subject(self.runtime.bus.root),
            "payload": envelope.model_dump_json(),
            "error": "RuntimeError: the handler failed (a test's dead letter)",
            "attempts": 5,
            "first_failed_at": now,
            "last_failed_at": now,
        }
        async with self.runtime.db.transaction() as session:
            await dead_letters.store(session, ConsumerTables.beside(self.inbox).dead_letters, row)
        return str(row["id"])

    async def cadre(self, org: dict[str, Any], member_no: str, role: str = "chair") -> None:
        cadre_id = new_id()
        await self.publish(
            CadreAppointed(
                cadre_id=cadre_id,
                org_id=org["id"],
                member_id=new_id(),
                member_no=member_no,
                role=role,
                appointed_on=date(2026, 1, 1),
            ),
            aggregate_id=cadre_id,
            org_path=org["path"],
        )
        await self.synced()


def _approval(
    org: dict[str, Any],
    *,
    category: str = "migrant_worker",
    subtype: str | None = None,
    name: str | None = None,
) -> MemberApproved:
    """A new member of `org`, approved, as membership announces it."""
    n = next(_member_serial)
    return MemberApproved(
        member_id=new_id(),
        member_no=f"{org['region_code'][:6]}{date.today().year}{n:06d}",
        application_id=new_id(),
        org_id=org["id"],
        name=name or f"学员{n}",
        category=category,
        subtype=subtype,
        household_type="rural",
        gender="male" if n % 2 else "female",
        birth_year=1980 + n % 30,
        approval_doc_no="凤工复〔2026〕1号",
        approved_at=datetime.now(UTC),
    )
