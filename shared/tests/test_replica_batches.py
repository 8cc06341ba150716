"""The replicas' consumer applying fetched batches whole (`ReplicaBatches`): against a real
NATS and both databases, the rows it keeps are those one message per transaction gives, for
events that arrive out of order and more than once."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import DeclarativeBase

from gonghui_shared.bus import Bus, EventConsumer, stream_name
from gonghui_shared.bus.consumer import Subscription
from gonghui_shared.contracts import Event, EventEnvelope, envelope_for
from gonghui_shared.contracts import membership as m
from gonghui_shared.db import Database, new_metadata
from gonghui_shared.models import TYPE_ANNOTATION_MAP
from gonghui_shared.replicas import (
    MemberReplicaColumns,
    OrgReplicaColumns,
    member_handlers,
    membership_subscription,
    org_handlers,
)
from gonghui_shared.testing.busdb import inbox
from gonghui_shared.testing.probe import wait_until

MEMBERS = 200


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Org(OrgReplicaColumns, Base):
    __tablename__ = "org_replicas"


class Member(MemberReplicaColumns, Base):
    __tablename__ = "member_replicas"


class RefOrg(OrgReplicaColumns, Base):
    """What one message per transaction builds, to compare with."""

    __tablename__ = "ref_org_replicas"


class RefMember(MemberReplicaColumns, Base):
    __tablename__ = "ref_member_replicas"


def province() -> list[EventEnvelope]:
    """Orgs created and renamed, members approved, moved and ended: numbered ones shuffled
    (held back until their predecessor comes), unnumbered ones in reverse time order (the
    rules of `last_event_at` decide), a fifth of them twice."""
    rnd = random.Random(8)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    orgs = [str(uuid.uuid4()) for _ in range(4)]
    envelopes: list[EventEnvelope] = []
    for n, org_id in enumerate(orgs):
        path = f"/{orgs[0]}/" if n == 0 else f"/{orgs[0]}/{org_id}/"
        created = m.OrgCreated(
            org_id=org_id,
            parent_id=None if n == 0 else orgs[0],
            path=path,
            org_type="village_union",
            name=f"工会{n}",
            region_code="530921101201",
            lon=100.0 + n,
            lat=24.0,
        )
        renamed = m.OrgUpdated(
            org_id=org_id,
            path=path,
            name=f"工会{n}（新）",
            region_code="530921101202",
            status="active",
            changed=["name"],
        )
        seqs = (1, 2) if n % 2 else (None, None)  # unnumbered: the update overtakes
        envelopes.append(
            envelope_for(
                renamed,
                aggregate_id=org_id,
                aggregate_seq=seqs[1],
                org_path=path,
                occurred_at=start + timedelta(hours=1),
            )
        )
        envelopes.append(
            envelope_for(
                created,
                aggregate_id=org_id,
                aggregate_seq=seqs[0],
                org_path=path,
                occurred_at=start,
            )
        )
    for n in range(MEMBERS):
        member_id, member_no = str(uuid.uuid4()), f"53092120269{n:05d}"
        org, to = rnd.choice(orgs), rnd.choice(orgs)
        at = start + timedelta(days=n % 30)
        events: list[tuple[Event, str, datetime]] = [
            (
                m.MemberApproved(
                    member_id=member_id,
                    member_no=member_no,
                    application_id=str(uuid.uuid4()),
                    org_id=org,
                    name=f"会员{n}",
                    category=rnd.choice(["staff", "farmer"]),
                    subtype=None,
                    household_type="rural",
                    gender="female",
                    birth_year=1990,
                    approval_doc_no="凤工复〔2026〕1号",
                    approved_at=at,
                ),
                org,
                at,
            )
        ]
        if n % 3 == 0:
            moved = m.MemberTransferred(
                member_id=member_id,
                member_no=member_no,
                transfer_id=str(uuid.uuid4()),
                from_org_id=org,
                to_org_id=to,
                from_org_path=f"/{org}/",
                category="staff",
            )
            events.append((moved, to, at + timedelta(days=10)))
        if n % 4 == 0:
            ended_at = events[-1][1]
            ended = rnd.choice([m.MemberWithdrawn, m.MemberLapsed, m.MemberExpelled])(
                member_id=member_id,
                member_no=member_no,
                org_id=ended_at,
                category="staff",
                reason="退会",
            )
            events.append((ended, ended_at, at + timedelta(days=20)))
        numbered = n % 2 == 0
        mine = [
            envelope_for(
                e,
                aggregate_id=member_id,
                aggregate_seq=seq if numbered else None,
                org_path=f"/{org_id}/",
                occurred_at=occurred_at,
            )
            for seq, (e, org_id, occurred_at) in enumerate(events, 1)
        ]
        if numbered:
            rnd.shuffle(mine)
        else:
            mine.reverse()
        envelopes += mine
    rnd.shuffle(envelopes)  # aggregates interleaved; each one's order kept as chosen above
    ordered = _keep_each_aggregates_order(envelopes)
    copies = rnd.sample(ordered, len(ordered) // 5)
    for copy in copies:
        ordered.insert(rnd.randrange(len(ordered) + 1), copy)
    return ordered


def _keep_each_aggregates_order(shuffled: list[EventEnvelope]) -> list[EventEnvelope]:
    """The shuffle's slots, each aggregate's events put back in their chosen order."""
    queues: dict[str, list[EventEnvelope]] = {}
    for envelope in shuffled:
        queues.setdefault(envelope.aggregate_id, []).append(envelope)
    return [queues[envelope.aggregate_id].pop(0) for envelope in shuffled]


async def publish_all(bus: Bus, envelopes: list[EventEnvelope]) -> None:
    await bus.ensure_stream("membership")
    await bus.js.purge_stream(stream_name(bus.root, "membership"))
    for envelope in envelopes:  # no Nats-Msg-Id: the copies stay in the stream
        await bus.js.publish(envelope.subject(bus.root), envelope.model_dump_json().encode())


async def drain(db: Database, bus: Bus, sub: Subscription) -> None:
    consumer = EventConsumer(db, bus, inbox, sub)
    consumer.start()

    async def drained() -> bool:
        info = await bus.js.consumer_info(stream_name(bus.root, "membership"), sub.durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    try:
        await wait_until(drained, timeout=90, what=f"{sub.durable} drained")
    finally:
        await consumer.stop()


async def rows(db: Database, model: Any) -> dict[str, dict[str, Any]]:
    table = model.__table__
    (key,) = table.primary_key.columns
    async with db.sessions() as session:
        found = (await session.execute(select(table))).mappings()
        return {row[key.key]: dict(row) for row in found}


async def test_a_whole_batch_gives_the_rows_one_message_at_a_time_gives(
    db: Database, bus: Bus
) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for table in Base.metadata.sorted_tables:
            await conn.execute(delete(table))
    envelopes = province()
    assert 300 <= len(envelopes) <= 400
    await publish_all(bus, envelopes)

    batched = membership_subscription("batched", org_handlers(Org), member_handlers(Member))
    assert batched.batch_hooks is not None
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await drain(
            db, bus, dataclasses.replace(batched, early_retry_seconds=0.05, backoff_seconds=[0.1])
        )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    # The same handlers, one message per transaction (no batch: through the ORM, a row each).
    one_by_one = Subscription(
        durable="one_by_one__membership",
        source="membership",
        handlers={**org_handlers(RefOrg), **member_handlers(RefMember)},
        early_retry_seconds=0.05,
        backoff_seconds=[0.1],
    )
    await drain(db, bus, one_by_one)

    members, reference = await rows(db, Member), await rows(db, RefMember)
    assert len(reference) == MEMBERS
    assert members == reference
    assert await rows(db, Org) == await rows(db, RefOrg)
    statuses = {row["status"] for row in reference.values()}
    assert statuses == {"active", "withdrawn", "lapsed", "expelled"}
    assert all(row["name"] for row in reference.values()), "approvals filled in late rows"
    renamed = {row["name"] for row in (await rows(db, RefOrg)).values()}
    assert all(name.endswith("（新）") for name in renamed), "the newer update kept"

    # The batch path: no savepoint, and the member rows read and written a few statements per
    # batch (a message each would cost one statement or more each).
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    touching = [s for s in statements if "member_replicas" in s and "ref_" not in s]
    assert 0 < len(touching) < len(envelopes) / 4, len(touching)
