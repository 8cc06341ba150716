"""The admission procedure over HTTP: application → roster → approval (批复) → number and card."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import jwt
from fastapi import FastAPI
from sqlalchemy import select, update

from gonghui_shared.clock import CHINA
from gonghui_shared.permissions import Role
from membership.admissions.models import Application, MemberNumberSequence
from membership.admissions.service import approval_date
from membership.audit.models import Transition
from membership.members.models import Member
from membership.testing import Api, applicant, valid_id_number

DOC_NO = "凤工复〔2026〕12号"


def _year() -> int:
    return datetime.now(CHINA).year


async def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


async def test_admission_end_to_end(api: Api) -> None:
    county, _, village = await api.tree()
    chair = api.headers(Role.org_chair, village)
    admin = api.headers(Role.county_admin, county)
    roster = await api.roster(village)
    assert roster["source"] == "manual" and roster["counts"]["total"] == 0

    application = await api.apply(village, roster, name="李春华", category="农民工")
    assert application["status"] == "on_roster" and application["category"] == "migrant_worker"
    assert application["id_number"].count("*") == 8 and application["birth_date"] is None
    assert application["submitted_by"] == "test-user"

    result = await api.approve(county, application, DOC_NO)
    member, card = result["member"], result["card"]
    assert re.fullmatch(rf"530921{_year()}000001", member["member_no"])
    assert member["status"] == "active" and member["name"] == "李春华"
    assert member["joined_on"] == approval_date(datetime.now(UTC)).isoformat()
    assert result["application"]["status"] == "approved"
    assert result["application"]["approval_doc_no"] == DOC_NO
    assert result["application"]["member_id"]
    claims = jwt.decode(card["token"], options={"verify_signature": False})
    assert claims["sub"] == member["member_no"] and claims["org"] == village["name"]

    counted = await api.ok("GET", f"/v1/rosters/{roster['id']}", as_=chair)
    assert counted["counts"] == {
        "submitted": 0,
        "on_roster": 0,
        "approved": 1,
        "rejected": 0,
        "total": 1,
    }
    detail = await api.ok("GET", f"/v1/applications/{application['id']}", as_=admin)
    steps = [(s["from"], s["to"], s["role"]) for s in detail["history"]]
    assert steps == [(None, "on_roster", "org_chair"), ("on_roster", "approved", "county_admin")]
    assert detail["history"][1]["details"]["member_no"] == member["member_no"]
    assert detail["decided_by"] == "test-user" and detail["decided_at"]

    second = await api.member(county, village)
    assert second["member"]["member_no"] == f"530921{_year()}000002"


async def test_personal_data_is_masked_unless_the_role_may_read_it(api: Api) -> None:
    county, _, village = await api.tree()
    id_number = valid_id_number(7, birth="19850312")
    application = await api.apply(village, id_number=id_number, phone="138 0013 8000")
    path = f"/v1/applications/{application['id']}"
    masked = await api.ok("GET", path, as_=api.headers(Role.org_chair, village))
    assert masked["id_number"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert masked["phone"] == "138****8000" and masked["birth_date"] is None
    full = await api.ok("GET", path, as_=api.headers(Role.county_admin, county))
    assert full["id_number"] == id_number and full["phone"] == "+8613800138000"
    assert full["birth_date"] == "1985-03-12" and full["gender"] == "male"


async def test_application_not_on_a_roster_is_put_on_one_before_approval(api: Api) -> None:
    county, _, village = await api.tree()
    application = await api.apply(village)
    assert application["status"] == "submitted" and application["roster_id"] is None
    early = await api.client.post(
        f"/v1/applications/{application['id']}/approve",
        headers=api.headers(Role.county_admin, county),
        json={"approval_doc_no": DOC_NO},
    )
    await _error(early, 409, "application_not_on_roster")

    roster = await api.roster(village)
    chair = api.headers(Role.org_chair, village)
    added = await api.ok(
        "POST",
        f"/v1/rosters/{roster['id']}/applications",
        as_=chair,
        json={"application_ids": [application["id"]]},
    )
    assert added["counts"]["on_roster"] == 1
    again = await api.client.post(
        f"/v1/rosters/{roster['id']}/applications",
        headers=chair,
        json={"application_ids": [application["id"]]},
    )
    await _error(again, 409, "application_not_submitted")
    result = await api.approve(county, application)
    assert result["application"]["roster_id"] == roster["id"]


async def test_roster_takes_only_its_own_orgs_applications(api: Api) -> None:
    county, township, village = await api.tree()
    other_roster = await api.roster(township)
    body = applicant() | {"org_id": village["id"], "roster_id": other_roster["id"]}
    response = await api.client.post(
        "/v1/applications", headers=api.headers(Role.county_admin, county), json=body
    )
    error = await _error(response, 422, "roster_not_of_org")
    assert error["details"] == {"field": "roster_id"}

    application = await api.apply(village)
    moved = await api.client.post(
        f"/v1/rosters/{other_roster['id']}/applications",
        headers=api.headers(Role.county_admin, county),
        json={"application_ids": [application["id"]]},
    )
    await _error(moved, 422, "application_not_of_org")
    unknown = await api.client.post(
        f"/v1/rosters/{other_roster['id']}/applications",
        headers=api.headers(Role.county_admin, county),
        json={"application_ids": ["nope"]},
    )
    await _error(unknown, 404, "application_not_found")


async def test_invalid_person_data_is_rejected_with_its_reason(api: Api) -> None:
    _, _, village = await api.tree()
    chair = api.headers(Role.org_chair, village)
    good = valid_id_number(11, birth="19850312")
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")

    async def submit(**overrides: Any) -> Any:
        body = applicant(**overrides) | {"org_id": village["id"]}
        return await api.client.post("/v1/applications", headers=chair, json=body)

    error = await _error(await submit(id_number=bad_check), 422, "invalid_id_number")
    assert error["details"] == {"field": "id_number", "reason": "checksum"}
    error = await _error(await submit(id_number="53092119900101"), 422, "invalid_id_number")
    assert error["details"]["reason"] == "format"
    error = await _error(await submit(phone="12345"), 422, "invalid_phone")
    assert error["details"] == {"field": "phone"}
    error = await _error(await submit(category="new_employment"), 422, "invalid_subtype")
    assert error["details"] == {"field": "subtype"}
    await _error(await submit(subtype="rider"), 422, "invalid_subtype")
    error = await _error(await submit(household_type="游牧"), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["household_type"]
    error = await _error(await submit(form_ref=""), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["form_ref"]

    rider = await submit(category="新就业形态劳动者", subtype="外卖骑手", household_type="农业户口")
    assert rider.status_code == 201, rider.text
    body = rider.json()
    assert (body["category"], body["subtype"], body["household_type"]) == (
        "new_employment",
        "rider",
        "rural",
    )


async def test_duplicate_person_pending_then_member_then_after_rejection(api: Api) -> None:
    county, township, village = await api.tree()
    id_number = valid_id_number(21, birth="19850312")
    roster = await api.roster(village)
    first = await api.apply(village, roster, id_number=id_number)

    # The same person at another org of the county is still the same person.
    pending = await api.client.post(
        "/v1/applications",
        headers=api.headers(Role.org_chair, township),
        json=applicant(id_number=id_number) | {"org_id": township["id"]},
    )
    await _error(pending, 409, "duplicate_application")

    await api.approve(county, first)
    member = await api.client.post(
        "/v1/applications",
        headers=api.headers(Role.org_chair, village),
        json=applicant(id_number=id_number) | {"org_id": village["id"]},
    )
    await _error(member, 409, "already_member")

    other = valid_id_number(22, birth="19850312")
    rejected = await api.apply(village, id_number=other)
    await api.ok(
        "POST",
        f"/v1/applications/{rejected['id']}/reject",
        as_=api.headers(Role.county_admin, county),
        json={"reason": "申请书未由本人签字"},
    )
    again = await api.apply(village, id_number=other)
    assert again["status"] == "submitted"


async def test_only_the_county_federation_decides(api: Api) -> None:
    county, _, village = await api.tree()
    other_county = await api.county("530922000000", "云县总工会")
    application = await api.apply(village, await api.roster(village))
    path = f"/v1/applications/{application['id']}"
    body = {"approval_doc_no": DOC_NO}

    chair = await api.client.post(
        f"{path}/approve", headers=api.headers(Role.org_chair, village), json=body
    )
    await _error(chair, 403, "forbidden")
    foreign = await api.client.post(
        f"{path}/approve", headers=api.headers(Role.county_admin, other_county), json=body
    )
    await _error(foreign, 403, "out_of_scope")
    foreign_reject = await api.client.post(
        f"{path}/reject", headers=api.headers(Role.county_admin, other_county), json={"reason": "x"}
    )
    await _error(foreign_reject, 403, "out_of_scope")
    station = await api.client.post(
        f"{path}/approve", headers=api.headers(Role.station_operator, village), json=body
    )
    await _error(station, 403, "forbidden")
    missing = await api.client.post(
        "/v1/applications/nope/approve", headers=api.headers(Role.county_admin, county), json=body
    )
    await _error(missing, 404, "application_not_found")
    no_doc = await api.client.post(
        f"{path}/approve",
        headers=api.headers(Role.county_admin, county),
        json={"approval_doc_no": " "},
    )
    await _error(no_doc, 422, "validation_error")

    # Submitting and reading are scoped too: a chair of another org cannot apply here.
    other_village_chair = api.headers(Role.org_chair, other_county)
    outside = await api.client.post(
        "/v1/applications",
        headers=other_village_chair,
        json=applicant() | {"org_id": village["id"]},
    )
    await _error(outside, 403, "out_of_scope")
    await _error(await api.client.get(path, headers=other_village_chair), 403, "out_of_scope")


async def test_a_decision_is_final(api: Api) -> None:
    county, _, village = await api.tree()
    admin = api.headers(Role.county_admin, county)
    application = await api.apply(village, await api.roster(village))
    await api.approve(county, application)
    path = f"/v1/applications/{application['id']}"
    twice = await api.client.post(
        f"{path}/approve", headers=admin, json={"approval_doc_no": DOC_NO}
    )
    error = await _error(twice, 409, "application_already_decided")
    assert error["details"] == {"status": "approved"}
    late_reject = await api.client.post(f"{path}/reject", headers=admin, json={"reason": "重复"})
    await _error(late_reject, 409, "application_already_decided")


async def test_rejection_records_the_reason_in_history(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    admin = api.headers(Role.county_admin, county)
    application = await api.apply(village, await api.roster(village))
    path = f"/v1/applications/{application['id']}"
    empty = await api.client.post(f"{path}/reject", headers=admin, json={"reason": "   "})
    error = await _error(empty, 422, "validation_error")
    assert error["details"][0]["field"] == "reason"
    too_long = await api.client.post(f"{path}/reject", headers=admin, json={"reason": "长" * 501})
    await _error(too_long, 422, "validation_error")

    reason = "申请书非本人填写，请本人重新填写入会申请书"
    rejected = await api.ok("POST", f"{path}/reject", as_=admin, json={"reason": reason})
    assert rejected["status"] == "rejected" and rejected["rejection_reason"] == reason
    detail = await api.ok("GET", path, as_=api.headers(Role.org_chair, village))
    last = detail["history"][-1]
    assert (last["from"], last["to"], last["reason"], last["role"]) == (
        "on_roster",
        "rejected",
        reason,
        "county_admin",
    )
    assert last["actor"] == "test-user" and last["at"]
    approve = await api.client.post(
        f"{path}/approve", headers=admin, json={"approval_doc_no": DOC_NO}
    )
    await _error(approve, 409, "application_already_decided")
    async with app.state.runtime.db.transaction() as session:
        assert (
            await session.scalar(select(Member).where(Member.application_id == application["id"]))
            is None
        )


async def test_batch_approval_of_a_roster(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    roster = await api.roster(village)
    applications = [await api.apply(village, roster) for _ in range(3)]
    submitted_only = await api.apply(village)
    rejected = await api.apply(village, roster)
    admin = api.headers(Role.county_admin, county)
    await api.ok(
        "POST",
        f"/v1/applications/{rejected['id']}/reject",
        as_=admin,
        json={"reason": "不符合条件"},
    )

    # Someone on the roster became a member by another route meanwhile (a legacy register).
    async with app.state.runtime.db.transaction() as session:
        source = await session.get(Application, applications[1]["id"])
        assert source is not None
        session.add(
            Member(
                member_no=f"530921{_year()}999999",
                application_id=submitted_only["id"],
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

    chair = await api.client.post(
        f"/v1/rosters/{roster['id']}/approve",
        headers=api.headers(Role.org_chair, village),
        json={"approval_doc_no": DOC_NO},
    )
    await _error(chair, 403, "forbidden")
    result = await api.ok(
        "POST", f"/v1/rosters/{roster['id']}/approve", as_=admin, json={"approval_doc_no": DOC_NO}
    )
    year = _year()
    assert result["approved"] == 2
    assert result["member_nos"] == [f"530921{year}000001", f"530921{year}000002"]
    assert result["skipped"] == [
        {"application_id": applications[1]["id"], "code": "already_member"}
    ]
    counts = (await api.ok("GET", f"/v1/rosters/{roster['id']}", as_=admin))["counts"]
    assert counts == {"submitted": 0, "on_roster": 1, "approved": 2, "rejected": 1, "total": 4}
    for application in (applications[0], applications[2]):
        detail = await api.ok("GET", f"/v1/applications/{application['id']}", as_=admin)
        assert detail["status"] == "approved" and detail["approval_doc_no"] == DOC_NO
    again = await api.ok(
        "POST", f"/v1/rosters/{roster['id']}/approve", as_=admin, json={"approval_doc_no": DOC_NO}
    )
    assert again["approved"] == 0 and len(again["skipped"]) == 1
    async with app.state.runtime.db.transaction() as session:
        transitions = await session.scalars(select(Transition).where(Transition.entity == "member"))
        assert len(list(transitions)) == 2
        sequence = await session.get(MemberNumberSequence, ("530921", year))
        assert sequence is not None and sequence.last_value == 2


async def test_lists_are_scoped_filtered_and_paginated(api: Api) -> None:
    county, township, village = await api.tree()
    roster = await api.roster(village)
    await api.roster(village, "第二批")
    township_roster = await api.roster(township)
    on_roster = await api.apply(village, roster)
    loose = await api.apply(village)
    await api.apply(township, township_roster)
    chair = api.headers(Role.org_chair, village)
    admin = api.headers(Role.county_admin, county)

    mine = await api.ok("GET", "/v1/applications", as_=chair)
    assert {a["id"] for a in mine["items"]} == {on_roster["id"], loose["id"]}
    assert len((await api.ok("GET", "/v1/applications", as_=admin))["items"]) == 3
    filtered = await api.ok("GET", "/v1/applications", as_=admin, params={"status": "submitted"})
    assert [a["id"] for a in filtered["items"]] == [loose["id"]]
    by_roster = await api.ok(
        "GET", "/v1/applications", as_=admin, params={"roster_id": roster["id"]}
    )
    assert [a["id"] for a in by_roster["items"]] == [on_roster["id"]]
    in_village = await api.ok(
        "GET", "/v1/applications", as_=admin, params={"org_id": village["id"]}
    )
    assert len(in_village["items"]) == 2
    outside = await api.client.get(
        "/v1/applications", headers=chair, params={"org_id": township["id"]}
    )
    await _error(outside, 403, "out_of_scope")
    bad_status = await api.client.get("/v1/applications", headers=admin, params={"status": "maybe"})
    await _error(bad_status, 422, "validation_error")

    first = await api.ok("GET", "/v1/rosters", as_=admin, params={"limit": 2})
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await api.ok(
        "GET", "/v1/rosters", as_=admin, params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert (await api.ok("GET", "/v1/rosters", as_=chair))["items"][0]["counts"]["on_roster"] == 1
    assert len((await api.ok("GET", "/v1/rosters", as_=chair))["items"]) == 2
    await _error(
        await api.client.get(f"/v1/rosters/{township_roster['id']}", headers=chair),
        403,
        "out_of_scope",
    )
    await _error(await api.client.get("/v1/rosters/nope", headers=admin), 404, "roster_not_found")
    member_role = await api.client.get(
        "/v1/applications", headers=api.headers(Role.member, village)
    )
    await _error(member_role, 403, "forbidden")


async def test_dissolved_org_admits_no_one(api: Api) -> None:
    county, _, village = await api.tree()
    await api.ok("PATCH", f"/v1/orgs/{village['id']}", json={"status": "dissolved"})
    response = await api.client.post(
        "/v1/rosters",
        headers=api.headers(Role.county_admin, county),
        json={"org_id": village["id"], "title": "名册"},
    )
    await _error(response, 409, "org_dissolved")
    missing = await api.client.post(
        "/v1/rosters",
        headers=api.headers(Role.county_admin, county),
        json={"org_id": "nope", "title": "名册"},
    )
    await _error(missing, 404, "org_not_found")


async def test_already_member_at_approval_time(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    roster = await api.roster(village)
    first = await api.apply(village, roster)
    await api.approve(county, first)
    # A second pending application for the same person cannot be made over the API,
    # so make the first membership end and a new application, then restore the first.
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Member).values(status="withdrawn"))
    application = await api.client.post(
        "/v1/applications",
        headers=api.headers(Role.org_chair, village),
        json=applicant(id_number=(await _id_of(api, county, first)))
        | {"org_id": village["id"], "roster_id": roster["id"]},
    )
    assert application.status_code == 201, application.text
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(Member).values(status="active"))
    response = await api.client.post(
        f"/v1/applications/{application.json()['id']}/approve",
        headers=api.headers(Role.county_admin, county),
        json={"approval_doc_no": DOC_NO},
    )
    await _error(response, 409, "already_member")
    async with app.state.runtime.db.transaction() as session:
        sequence = await session.get(MemberNumberSequence, ("530921", _year()))
        assert sequence is not None and sequence.last_value == 1  # no number was used up


async def _id_of(api: Api, county: dict[str, Any], application: dict[str, Any]) -> str:
    detail = await api.ok(
        "GET", f"/v1/applications/{application['id']}", as_=api.headers(Role.county_admin, county)
    )
    return str(detail["id_number"])


def test_member_number_year_is_the_date_in_china() -> None:
    # 17:30 UTC on New Year's Eve is already 1 January in Yunnan.
    assert approval_date(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)) == date(2027, 1, 1)
    assert approval_date(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == date(2026, 12, 31)
