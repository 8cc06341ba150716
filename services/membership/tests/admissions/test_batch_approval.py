"""Approving a large roster batch by batch: `POST /v1/rosters/{id}/approve-in-batches` and
`service.approve_roster_in_batches`, each batch its own transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gonghui_shared.auth import Principal
from gonghui_shared.clock import CHINA
from gonghui_shared.contracts.membership import MemberApproved
from gonghui_shared.permissions import Role
from membership.admissions import repository, service
from membership.admissions.models import Application, MemberNumberSequence
from membership.audit.models import Transition
from membership.base import outbox
from membership.members.models import Member
from membership.testing import Api

DOC_NO = "凤工复〔2026〕12号"


def _year() -> int:
    return datetime.now(CHINA).year


async def _already_a_member(
    app: FastAPI, application: dict[str, Any], village: dict[str, Any]
) -> None:
    """The applicant became a member by another route (a legacy register)."""
    async with app.state.runtime.db.transaction() as session:
        source = await session.get(Application, application["id"])
        assert source is not None
        legacy = Application(
            org_id=village["id"],
            org_path=village["path"],
            status="approved",
            name=source.name,
            household_type=source.household_type,
            category=source.category,
            form_ref="legacy",
            submitted_by="legacy",
            id_number_encrypted=source.id_number_encrypted,
            id_number_hash=source.id_number_hash,
            id_number_masked=source.id_number_masked,
            phone_encrypted=source.phone_encrypted,
            phone_hash=source.phone_hash,
            phone_masked=source.phone_masked,
            gender=source.gender,
            birth_date=source.birth_date,
        )
        session.add(legacy)
        await session.flush()
        session.add(
            Member(
                member_no=f"530921{_year()}999999",
                application_id=legacy.id,
                org_id=village["id"],
                org_path=village["path"],
                status="active",
                name=source.name,
                id_number_encrypted=source.id_number_encrypted,
                id_number_hash=source.id_number_hash,
                id_number_masked=source.id_number_masked,
                phone_encrypted=source.phone_encrypted,
                phone_masked=source.phone_masked,
                gender=source.gender,
                birth_date=source.birth_date,
                household_type=source.household_type,
                category=source.category,
                joined_on=date(2020, 1, 1),
            )
        )


async def test_a_roster_is_approved_batch_by_batch(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    roster = await api.roster(village)
    applications = [await api.apply(village, roster) for _ in range(5)]
    await _already_a_member(app, applications[2], village)
    admin = api.headers(Role.county_admin, county)

    result = await api.ok(
        "POST",
        f"/v1/rosters/{roster['id']}/approve-in-batches",
        as_=admin,
        params={"batch_size": 2},
        json={"approval_doc_no": DOC_NO},
    )

    year = _year()
    assert result["approved"] == 4 and result["batches"] == 3
    # Numbers follow the applications' order, with no gap where one was skipped.
    assert result["member_nos"] == [f"530921{year}{n:06d}" for n in range(1, 5)]
    assert result["skipped"] == [
        {"application_id": applications[2]["id"], "code": "already_member"}
    ]
    counts = (await api.ok("GET", f"/v1/rosters/{roster['id']}", as_=admin))["counts"]
    assert counts["approved"] == 4 and counts["on_roster"] == 1
    async with app.state.runtime.db.transaction() as session:
        members = (
            await session.scalars(select(Member).where(Member.member_no.in_(result["member_nos"])))
        ).all()
        by_application = {m.application_id: m for m in members}
        for number, application in zip(
            result["member_nos"], [a for i, a in enumerate(applications) if i != 2], strict=True
        ):
            assert by_application[application["id"]].member_no == number
            stored = await session.get(Application, application["id"])
            assert stored is not None and stored.status == "approved"
            assert stored.approval_doc_no == DOC_NO and stored.decided_by == "test-user"
            assert stored.member_id == by_application[application["id"]].id
        steps = (
            await session.execute(
                select(Transition.entity, Transition.from_state, Transition.to_state).where(
                    Transition.entity_id.in_(
                        [a["id"] for a in applications] + [m.id for m in members]
                    ),
                    Transition.to_state.in_(["approved", "active"]),
                )
            )
        ).all()
        assert sorted(steps, key=str) == sorted(
            [("application", "on_roster", "approved")] * 4 + [("member", None, "active")] * 4,
            key=str,
        )
        events = (
            await session.execute(
                select(outbox.c.aggregate_id, outbox.c.aggregate_seq).where(
                    outbox.c.event_type == MemberApproved.type
                )
            )
        ).all()
        assert sorted(events) == sorted((m.id, 1) for m in members)
        sequence = await session.get(MemberNumberSequence, ("530921", year))
        assert sequence is not None and sequence.last_value == 4

    again = await api.ok(
        "POST",
        f"/v1/rosters/{roster['id']}/approve-in-batches",
        as_=admin,
        json={"approval_doc_no": DOC_NO},
    )
    assert again["approved"] == 0 and again["member_nos"] == []
    assert [s["application_id"] for s in again["skipped"]] == [applications[2]["id"]]


async def test_batch_approval_needs_the_decision_right_in_scope(api: Api) -> None:
    county, _, village = await api.tree()
    other_county = await api.county("530922000000", "云县总工会")
    roster = await api.roster(village)
    await api.apply(village, roster)
    path = f"/v1/rosters/{roster['id']}/approve-in-batches"
    body = {"approval_doc_no": DOC_NO}

    chair = await api.client.post(path, headers=api.headers(Role.org_chair, village), json=body)
    assert chair.status_code == 403 and chair.json()["error"]["code"] == "forbidden"
    other = await api.client.post(
        path, headers=api.headers(Role.county_admin, other_county), json=body
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "out_of_scope"
    admin = api.headers(Role.county_admin, county)
    missing = await api.client.post("/v1/rosters/nope/approve-in-batches", headers=admin, json=body)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "roster_not_found"
    zero = await api.client.post(path, headers=admin, params={"batch_size": 0}, json=body)
    assert zero.status_code == 422
    counts = (await api.ok("GET", f"/v1/rosters/{roster['id']}", as_=admin))["counts"]
    assert counts["approved"] == 0 and counts["on_roster"] == 1


async def test_a_member_made_meanwhile_sends_the_batch_one_by_one(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up missed a member (another approval committed after it): the active-person
    index refuses the batch's insert, and the batch is admitted one application at a time."""
    county, _, village = await api.tree()
    roster = await api.roster(village)
    applications = [await api.apply(village, roster) for _ in range(3)]
    await _already_a_member(app, applications[1], village)

    async def sees_no_members(*_: Any) -> set[str]:
        return set()

    monkeypatch.setattr(repository, "active_members_among", sees_no_members)
    principal = Principal(
        subject="county", role=Role.county_admin, org_id=county["id"], org_path=county["path"]
    )
    result = await service.approve_roster_in_batches(
        app.state.runtime.db, principal, roster["id"], DOC_NO
    )

    year = _year()
    assert result.member_nos == [f"530921{year}000001", f"530921{year}000002"]
    assert result.skipped == [(applications[1]["id"], "already_member")]
    async with app.state.runtime.db.transaction() as session:
        approved = await session.scalar(
            select(func.count())
            .select_from(Application)
            .where(Application.roster_id == roster["id"], Application.status == "approved")
        )
        assert approved == 2
        sequence = await session.get(MemberNumberSequence, ("530921", year))
        assert sequence is not None and sequence.last_value == 2
