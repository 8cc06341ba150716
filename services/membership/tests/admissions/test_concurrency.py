"""Races: concurrent approvals share no member number; a lost check race is still a clean 409."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from gonghui_shared.clock import CHINA
from gonghui_shared.permissions import Role
from membership.admissions import repository
from membership.admissions.models import MemberNumberSequence
from membership.members.models import Member
from membership.testing import Api, applicant

N = 20


async def test_concurrent_approvals_get_distinct_consecutive_numbers(
    api: Api, app: FastAPI
) -> None:
    county, _, village = await api.tree()
    roster = await api.roster(village)
    applications = [await api.apply(village, roster) for _ in range(N)]
    admin = api.headers(Role.county_admin, county)

    responses = await asyncio.gather(
        *(
            api.client.post(
                f"/v1/applications/{a['id']}/approve",
                headers=admin,
                json={"approval_doc_no": f"凤工复〔2026〕{i}号"},
            )
            for i, a in enumerate(applications)
        )
    )
    assert [r.status_code for r in responses] == [200] * N, [
        r.text for r in responses if r.status_code != 200
    ]
    numbers = [r.json()["member"]["member_no"] for r in responses]
    year = datetime.now(CHINA).year
    assert len(set(numbers)) == N
    assert sorted(int(n[-6:]) for n in numbers) == list(range(1, N + 1))
    assert all(n.startswith(f"530921{year}") and len(n) == 16 for n in numbers)
    async with app.state.runtime.db.transaction() as session:
        sequence = await session.get(MemberNumberSequence, ("530921", year))
        assert sequence is not None and sequence.last_value == N


async def test_concurrent_duplicate_applications_make_one_row(api: Api) -> None:
    _, _, village = await api.tree()
    body = applicant() | {"org_id": village["id"]}
    chair = api.headers(Role.org_chair, village)
    responses = await asyncio.gather(
        *(api.client.post("/v1/applications", headers=chair, json=body) for _ in range(5))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409], [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "duplicate_application"
    }


async def _nobody(*_: Any) -> None:
    return None


async def test_duplicate_caught_by_the_unique_index_is_a_409(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if a concurrent request inserted the same person between our check and our insert."""
    _, _, village = await api.tree()
    body = applicant() | {"org_id": village["id"]}
    chair = api.headers(Role.org_chair, village)
    assert (await api.client.post("/v1/applications", headers=chair, json=body)).status_code == 201
    monkeypatch.setattr(repository, "pending_application_of", _nobody)
    again = await api.client.post("/v1/applications", headers=chair, json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_application"
    listed = await api.ok("GET", "/v1/applications", as_=chair)
    assert len(listed["items"]) == 1


async def test_member_created_meanwhile_is_a_409_and_uses_no_number(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    county, _, village = await api.tree()
    admin = api.headers(Role.county_admin, county)
    roster = await api.roster(village)
    first = await api.apply(village, roster)
    id_number = (await api.ok("GET", f"/v1/applications/{first['id']}", as_=admin))["id_number"]
    await api.approve(county, first)
    # Make a second pending application for the same person: end the membership,
    # apply again, then restore it, as if both had raced through approval.
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Member).values(status="withdrawn"))
    second = await api.apply(village, roster, id_number=id_number)
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Member).values(status="active"))

    monkeypatch.setattr(repository, "active_member_of", _nobody)
    response = await api.client.post(
        f"/v1/applications/{second['id']}/approve",
        headers=admin,
        json={"approval_doc_no": "凤工复〔2026〕13号"},
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_member"
    year = datetime.now(CHINA).year
    async with app.state.runtime.db.transaction() as session:
        sequence = await session.get(MemberNumberSequence, ("530921", year))
        assert sequence is not None and sequence.last_value == 1
    detail = await api.ok("GET", f"/v1/applications/{second['id']}", as_=admin)
    assert detail["status"] == "on_roster"
