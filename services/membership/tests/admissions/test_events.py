"""Approval events: the outbox row is written with the approval and the relay delivers it."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import nats
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts.membership import ApplicationRejected, MemberApproved
from gonghui_shared.permissions import Role
from membership.base import outbox
from membership.config import MembershipSettings
from membership.testing import Api

APPROVALS = 20


class Subscription:
    """A core NATS subscription that notes when each member number's event arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, dict[str, Any], bytes]] = {}
        self.changed = asyncio.Event()

    async def on_message(self, msg: Any) -> None:
        envelope = json.loads(msg.data)
        self.arrived[envelope["data"]["member_no"]] = (time.perf_counter(), envelope, msg.data)
        self.changed.set()

    async def wait_for(
        self, member_no: str, timeout: float = 10.0
    ) -> tuple[float, dict[str, Any], bytes]:
        async with asyncio.timeout(timeout):
            while member_no not in self.arrived:
                self.changed.clear()
                await self.changed.wait()
        return self.arrived[member_no]


async def test_approval_is_published_without_personal_data(
    api: Api, app: FastAPI, settings: MembershipSettings
) -> None:
    county, _, village = await api.tree()
    admin = api.headers(Role.county_admin, county)
    roster = await api.roster(village)
    applications = [await api.apply(village, roster) for _ in range(APPROVALS)]
    personal = {}
    for a in applications:
        full = await api.ok("GET", f"/v1/applications/{a['id']}", as_=admin)
        personal[a["id"]] = (full["id_number"], full["phone"], a["id_number"])

    nc = await nats.connect(settings.nats_url)
    received = Subscription()
    await nc.subscribe(f"{settings.subject_root}.{MemberApproved.type}.v1", cb=received.on_message)
    await nc.flush()
    latencies: list[float] = []
    try:
        for application in applications:
            result = await api.approve(county, application)
            committed = time.perf_counter()  # the response comes after the commit
            member_no = result["member"]["member_no"]
            arrived, envelope, raw = await received.wait_for(member_no)
            latencies.append((arrived - committed) * 1000)

            assert envelope["type"] == "membership.member.approved" and envelope["version"] == 1
            assert envelope["aggregate_id"] == envelope["data"]["member_id"]
            assert envelope["org_path"] == village["path"]
            data = envelope["data"]
            assert data["application_id"] == application["id"] and data["org_id"] == village["id"]
            assert data["approval_doc_no"] == "凤工复〔2026〕12号" and data["birth_year"] == 1990
            text = raw.decode()
            id_number, phone, masked = personal[application["id"]]
            for secret in (id_number, id_number[6:14], phone, phone.removeprefix("+86"), masked):
                assert secret not in text
    finally:
        await nc.close()

    p50 = statistics.median(latencies)
    print(
        f"\napproval commit -> NATS delivery over {len(latencies)} approvals: "
        f"p50 {p50:.1f} ms, max {max(latencies):.1f} ms ({app.state.runtime.db.dialect})"
    )
    # The relay stamps sent_at after JetStream acknowledges, a moment after delivery.
    async with asyncio.timeout(5):
        while True:
            async with app.state.runtime.db.transaction() as session:
                rows = (
                    await session.execute(
                        select(outbox.c.sent_at).where(outbox.c.event_type == MemberApproved.type)
                    )
                ).all()
            assert len(rows) == APPROVALS
            if all(row.sent_at is not None for row in rows):
                break
            await asyncio.sleep(0.05)


async def test_submission_and_rejection_go_through_the_outbox(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    application = await api.apply(village)
    await api.ok(
        "POST",
        f"/v1/applications/{application['id']}/reject",
        as_=api.headers(Role.county_admin, county),
        json={"reason": "材料不全"},
    )
    async with app.state.runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(outbox.c.event_type, outbox.c.payload)
                .where(outbox.c.aggregate_id == application["id"])
                .order_by(outbox.c.position)
            )
        ).all()
    assert [r.event_type for r in rows] == [
        "membership.application.submitted",
        ApplicationRejected.type,
    ]
    assert json.loads(rows[1].payload)["data"]["reason"] == "材料不全"
