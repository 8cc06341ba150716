"""The member replica, fed by membership's events over NATS: right when events repeat or reorder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import func, select

from gonghui_shared.contracts.membership import (
    MemberApproved,
    MemberTransferred,
    MemberWithdrawn,
    OrgCreated,
    OrgUpdated,
)
from gonghui_shared.ids import new_id
from training.base import inbox
from training.replicas.models import CadreReplica, MemberReplica, OrgReplica
from training.testing import MembershipFeed


async def replica(app: FastAPI, model, key):  # type: ignore[no-untyped-def]
    async with app.state.runtime.db.sessions() as session:
        return await session.get(model, key)


def approved(member_no: str, member_id: str, org: dict) -> MemberApproved:  # type: ignore[type-arg]
    return MemberApproved(
        member_id=member_id,
        member_no=member_no,
        application_id=new_id(),
        org_id=org["id"],
        name="李明",
        category="new_employment",
        subtype="rider",
        household_type="rural",
        gender="male",
        birth_year=1990,
        approval_doc_no="凤工复〔2026〕3号",
        approved_at=datetime.now(UTC),
    )


async def test_orgs_members_and_cadres_arrive_in_the_replica(
    app: FastAPI, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    member_no = await feed.member(
        village, category="new_employment", subtype="courier", name="王芳"
    )
    await feed.cadre(village, member_no)
    org = await replica(app, OrgReplica, village["id"])
    assert org.path == village["path"] and org.org_type == "village_union"
    member = await replica(app, MemberReplica, member_no)
    assert (member.name, member.category, member.subtype) == ("王芳", "new_employment", "courier")
    assert member.org_path == village["path"] and member.status == "active"
    async with app.state.runtime.db.sessions() as session:
        cadres = (await session.scalars(select(CadreReplica))).all()
    assert [(c.member_no, c.role) for c in cadres] == [(member_no, "chair")]


async def test_an_event_delivered_twice_is_applied_once(app: FastAPI, feed: MembershipFeed) -> None:
    _, _, village = await feed.tree()
    member_id, member_no = new_id(), "5309212026990001"
    first = await feed.publish(
        approved(member_no, member_id, village), aggregate_id=member_id, org_path=village["path"]
    )
    await feed.publish(
        MemberWithdrawn(
            member_id=member_id,
            member_no=member_no,
            org_id=village["id"],
            category="new_employment",
            reason="退会",
        ),
        aggregate_id=member_id,
        org_path=village["path"],
    )
    await feed.synced()
    await feed.resend(first)  # the approval again, after the withdrawal
    await feed.synced()
    assert (await replica(app, MemberReplica, member_no)).status == "withdrawn"
    async with app.state.runtime.db.sessions() as session:
        applied = await session.scalar(
            select(func.count()).select_from(inbox).where(inbox.c.event_id == str(first.event_id))
        )
    assert applied == 1


async def test_events_out_of_order_end_in_the_right_state(
    app: FastAPI, feed: MembershipFeed
) -> None:
    _, township, village = await feed.tree()
    other = await feed.org(township, "village_union", "东城社区工会联合会", "530921101202")
    await feed.synced()
    member_id, member_no = new_id(), "5309212026990002"
    approved_at = datetime.now(UTC) - timedelta(minutes=5)
    # The transfer (later) arrives before the approval (earlier).
    await feed.publish(
        MemberTransferred(
            member_id=member_id,
            member_no=member_no,
            transfer_id=new_id(),
            from_org_id=village["id"],
            to_org_id=other["id"],
            from_org_path=village["path"],
            category="new_employment",
        ),
        aggregate_id=member_id,
        org_path=other["path"],
    )
    await feed.synced()
    await feed.publish(
        approved(member_no, member_id, village),
        aggregate_id=member_id,
        org_path=village["path"],
        occurred_at=approved_at,
    )
    await feed.synced()
    member = await replica(app, MemberReplica, member_no)
    assert member.org_id == other["id"] and member.org_path == other["path"], (
        "the newer transfer wins"
    )
    assert member.name == "李明" and member.category == "new_employment", (
        "the older approval fills in"
    )


async def test_org_update_before_creation_keeps_the_newer_name(
    app: FastAPI, feed: MembershipFeed
) -> None:
    org_id = new_id()
    path = f"/{org_id}/"
    created_at = datetime.now(UTC) - timedelta(minutes=1)
    await feed.publish(
        OrgUpdated(
            org_id=org_id,
            path=path,
            name="凤庆县总工会（新）",
            region_code="530921000000",
            status="active",
            changed=["name"],
        ),
        aggregate_id=org_id,
        org_path=path,
    )
    await feed.synced()
    await feed.publish(
        OrgCreated(
            org_id=org_id,
            parent_id=None,
            path=path,
            org_type="county_federation",
            name="凤庆县总工会",
            region_code="530921000000",
        ),
        aggregate_id=org_id,
        org_path=path,
        occurred_at=created_at,
    )
    await feed.synced()
    org = await replica(app, OrgReplica, org_id)
    assert org.name == "凤庆县总工会（新）" and org.org_type == "county_federation"
