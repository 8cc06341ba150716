"""Bulk-written outbox payloads are the envelope's own JSON, for every contract.

`record_events` writes each payload as text rather than through an `EventEnvelope`
per event (bulk imports write 100,000 of them); consumers and the relay must not be
able to tell the difference.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gonghui_shared.bus.outbox import OutboxItem, _EnvelopeWriter, record_events
from gonghui_shared.contracts import ALL_EVENTS, Event, EventEnvelope
from gonghui_shared.contracts.membership import MemberApproved
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.logging import request_id_var
from gonghui_shared.testing.busdb import outbox
from gonghui_shared.testing.probe import ThingHappened

# Text with what JSON must escape, and what it must not (Chinese, slashes).
awkward_text = st.text(alphabet=st.sampled_from('ab/工会"\\\n\t\x01\u2028é'), max_size=12)
events = st.one_of(*(st.builds(contract) for contract in ALL_EVENTS))


def model_json(
    event: Event,
    event_id: str,
    aggregate_id: str,
    seq: int,
    org_path: str | None,
    request_id: str | None,
    now: datetime,
) -> str:
    return EventEnvelope(
        event_id=uuid.UUID(event_id),
        type=event.type,
        version=event.version,
        occurred_at=now,
        source=event.source(),
        aggregate_id=aggregate_id,
        aggregate_seq=seq,
        org_path=org_path,
        request_id=request_id,
        data=event.model_dump(mode="json"),
    ).model_dump_json()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.tuples(events, awkward_text, st.integers(1, 10**6), st.none() | awkward_text),
        min_size=1,
        max_size=4,
    ),
    request_id=st.none() | awkward_text,
    now=st.datetimes(timezones=st.just(UTC)),
)
def test_payload_text_is_the_envelope_models_json(
    batch: list[tuple[Event, str, int, str | None]], request_id: str | None, now: datetime
) -> None:
    writer = _EnvelopeWriter(occurred_at=now, request_id=request_id)
    for event, aggregate_id, seq, org_path in batch:
        event_id = new_id()
        written = writer.envelope(event, event_id, aggregate_id, seq, org_path)
        assert written == model_json(event, event_id, aggregate_id, seq, org_path, request_id, now)


async def test_record_events_writes_parsable_numbered_envelopes(db: Database) -> None:
    approved = MemberApproved(
        member_id="m1",
        member_no="5309212026000001",
        application_id="a1",
        org_id="o1",
        name="王明华",
        category="migrant_worker",
        subtype=None,
        household_type="rural",
        gender="male",
        birth_year=1990,
        approval_doc_no="云工复〔2026〕1号",
        approved_at=datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
    )
    items = [
        OutboxItem(approved, "m1", "/p/c/v/"),
        OutboxItem(ThingHappened(thing_id="t"), "t", None),
        OutboxItem(ThingHappened(thing_id="t"), "t", None),
    ]
    token = request_id_var.set("req-1")
    try:
        async with db.transaction() as session:
            event_ids = await record_events(session, outbox, items)
    finally:
        request_id_var.reset(token)
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.event_id, outbox.c.aggregate_seq, outbox.c.payload).order_by(
                    outbox.c.position
                )
            )
        ).all()
    assert [row.event_id for row in rows] == event_ids
    envelopes = [EventEnvelope.model_validate_json(row.payload) for row in rows]
    assert [(e.aggregate_id, e.aggregate_seq) for e in envelopes] == [("m1", 1), ("t", 1), ("t", 2)]
    assert [row.aggregate_seq for row in rows] == [1, 1, 2]
    assert [str(e.event_id) for e in envelopes] == event_ids
    assert {e.request_id for e in envelopes} == {"req-1"}
    assert envelopes[0].org_path == "/p/c/v/" and envelopes[1].org_path is None
    assert MemberApproved.model_validate(envelopes[0].data) == approved
    assert json.loads(rows[0].payload)["data"]["name"] == "王明华"
