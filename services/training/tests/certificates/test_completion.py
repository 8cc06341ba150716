"""Completing a session: the attendance rule, certificates and their numbers, the events."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.clock import CHINA
from gonghui_shared.errors import AppError
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.certificates.models import CertificateNumberSequence
from training.certificates.service import (
    format_certificate_number,
    mask_name,
    meets_rule,
    parse_certificate_number,
)
from training.enrolments.models import Enrolment
from training.testing import Api, Classroom, non_member

NUMBER = re.compile(r"^GHPX-530921-(\d{4})-(\d{6})-[0-9X]$")


def sequence_of(number: str) -> int:
    found = NUMBER.match(number)
    assert found is not None, number
    assert int(found.group(1)) == datetime.now(CHINA).year
    return int(found.group(2))


async def statuses(app: FastAPI, session_id: str) -> dict[str, str]:
    async with app.state.runtime.db.sessions() as session:
        rows = await session.execute(
            select(Enrolment.id, Enrolment.status).where(Enrolment.session_id == session_id)
        )
        return dict(rows.all())


async def test_eighty_percent_of_days_completes_and_earns_a_certificate(
    app: FastAPI, api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    county, township, village = await feed.tree()
    members = [await feed.member(village) for _ in range(3)]
    ts = await classroom.session(township, days=5, capacity=3)
    four, three, five = [await classroom.enrol(ts, {"member_no": m}) for m in members]
    waiting = await classroom.enrol(ts, non_member())
    assert waiting["status"] == "waitlisted"
    await classroom.start(ts)
    await classroom.attend(ts, four, 4)
    await classroom.attend(ts, three, 3)
    await classroom.attend(ts, five, 5)
    await classroom.spend(ts, "3600.00")
    await classroom.spend(ts, "1200.50")
    await classroom.spend(ts, "9000.00", kind="planned")

    done = await classroom.complete(ts, as_=api.headers(Role.org_chair, township))

    assert done["status"] == "completed" and done["days"] == 5
    assert (done["enrolled"], done["completed"], done["not_completed"]) == (3, 2, 1)
    assert done["waitlist_cancelled"] == 1
    assert (done["person_times"], done["unique_persons"]) == (12, 3)
    assert done["spent"] == "4800.50" and done["min_attendance_rate"] == 0.8
    assert len(done["certificates"]) == 2
    assert sorted(sequence_of(n) for n in done["certificates"]) == [1, 2]
    assert await statuses(app, ts["id"]) == {
        four["id"]: "completed",
        three["id"]: "not_completed",
        five["id"]: "completed",
        waiting["id"]: "cancelled",
    }
    session = await api.ok("GET", f"/v1/sessions/{ts['id']}")
    assert session["status"] == "completed" and session["completed_at"] is not None

    [completed] = await classroom.events("training.session.completed")
    assert completed["aggregate_id"] == ts["id"] and completed["org_path"] == township["path"]
    assert completed["data"] == {
        "session_id": ts["id"],
        "course_id": ts["course_id"],
        "course_category": "welding_trades",
        "host_org_id": township["id"],
        "enrolled": 3,
        "completed": 2,
        "person_times": 12,
        "unique_persons": 3,
        "spent_fen": 480050,
    }
    issued = await classroom.events("training.certificate.issued")
    assert sorted(e["data"]["number"] for e in issued) == sorted(done["certificates"])
    assert {e["data"]["member_no"] for e in issued} == {members[0], members[2]}
    assert all(e["data"]["person_key"] == f"m:{e['data']['member_no']}" for e in issued)
    assert {e["data"]["worker_category"] for e in issued} == {"migrant_worker"}
    listed = await api.ok("GET", f"/v1/certificates?session_id={ts['id']}")
    assert sorted(c["number"] for c in listed["items"]) == sorted(done["certificates"])


async def test_a_course_without_certificate_issues_none(
    api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    _, township, village = await feed.tree()
    ts = await classroom.session(township, days=5, certificate=False)
    enrolment = await classroom.enrol(ts, {"member_no": await feed.member(village)})
    await classroom.start(ts)
    await classroom.attend(ts, enrolment, 5)
    done = await classroom.complete(ts)
    assert done["completed"] == 1 and done["certificates"] == []
    assert await classroom.events("training.certificate.issued") == []
    assert len(await classroom.events("training.session.completed")) == 1


async def test_the_course_sets_the_rule(
    app: FastAPI, feed: MembershipFeed, classroom: Classroom
) -> None:
    """A cadre course that needs every day (1.0); a nobody-attended session completes nobody."""
    _, township, village = await feed.tree()
    ts = await classroom.session(township, days=4, min_attendance_rate=1.0)
    all_days, three = [
        await classroom.enrol(ts, {"member_no": await feed.member(village)}) for _ in range(2)
    ]
    absent = await classroom.enrol(ts, non_member())
    await classroom.start(ts)
    await classroom.attend(ts, all_days, 4)
    await classroom.attend(ts, three, 3)
    done = await classroom.complete(ts)
    assert (done["completed"], done["not_completed"], len(done["certificates"])) == (1, 2, 1)
    assert (await statuses(app, ts["id"]))[absent["id"]] == "not_completed"


async def test_only_a_session_in_progress_completes(
    api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    _, township, village = await feed.tree()
    ts = await classroom.session(township)
    response = await api.client.post(f"/v1/sessions/{ts['id']}/complete", headers=api.platform)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_session_transition"
    await classroom.start(ts)
    await classroom.complete(ts)
    again = await api.client.post(f"/v1/sessions/{ts['id']}/complete", headers=api.platform)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_session_transition"
    missing = await api.client.post(
        "/v1/sessions/0193a1c2-7d1e-7a3b-9c5d-000000000000/complete", headers=api.platform
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "session_not_found"


async def test_who_may_complete(api: Api, feed: MembershipFeed, classroom: Classroom) -> None:
    county, township, village = await feed.tree()
    member_no = await feed.member(village)
    ts = await classroom.session(township)
    await classroom.start(ts)
    url = f"/v1/sessions/{ts['id']}/complete"
    for headers, status, code in (
        (api.headers(Role.member, village, member_no=member_no), 403, "forbidden"),
        (api.headers(Role.station_operator, township), 403, "forbidden"),
        (api.headers(Role.org_chair, village), 403, "out_of_scope"),
    ):
        response = await api.client.post(url, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    await classroom.complete(ts, as_=api.headers(Role.county_admin, county))


async def test_concurrent_completions_in_one_county_share_no_number(
    app: FastAPI, api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    """Two sessions (a township's and a village's) of one county complete at the same time."""
    _, township, village = await feed.tree()
    sessions = []
    for host in (township, village):
        ts = await classroom.session(host, days=2)
        enrolments = [
            await classroom.enrol(ts, {"member_no": await feed.member(village)}) for _ in range(5)
        ]
        await classroom.start(ts)
        for enrolment in enrolments:
            await classroom.attend(ts, enrolment, 2)
        sessions.append(ts)

    responses = await asyncio.gather(
        *(
            api.client.post(f"/v1/sessions/{ts['id']}/complete", headers=api.platform)
            for ts in sessions
        )
    )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    numbers = [r.json()["certificates"] for r in responses]
    everything = [n for batch in numbers for n in batch]
    assert len(set(everything)) == 10
    assert sorted(sequence_of(n) for n in everything) == list(range(1, 11))
    for batch in numbers:
        # One reservation per session: its numbers are consecutive.
        sequences = sorted(sequence_of(n) for n in batch)
        assert sequences == list(range(sequences[0], sequences[0] + 5))
    async with app.state.runtime.db.sessions() as session:
        row = await session.get(CertificateNumberSequence, ("530921", datetime.now(CHINA).year))
        assert row is not None and row.last_value == 10


# ---------------------------------------------------------------- numbers and names


def test_number_format_and_check_character() -> None:
    number = format_certificate_number("530921", 2026, 1)
    assert re.fullmatch(r"GHPX-530921-2026-000001-[0-9X]", number)
    parsed = parse_certificate_number(number)
    assert (parsed.county_code, parsed.year, parsed.sequence) == ("530921", 2026, 1)
    assert str(parsed) == number
    # Copied from a phone: lower case, full-width digits, spaces around it.
    assert str(parse_certificate_number(f"  {number.lower()} ")) == number
    full_width = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert str(parse_certificate_number(full_width)) == number
    # Some sequence's check character is X (MOD 11-2 gives 10).
    checks = {format_certificate_number("530921", 2026, n)[-1] for n in range(1, 40)}
    assert "X" in checks and len(checks) == 11


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GHPX-530921-2026-000001",
        "GHPX-530921-26-000001-1",
        "GHPX-5309210-2026-000001-1",
        "GHPZ-530921-2026-000001-1",
        "GHPX 530921 2026 000001 1",
        "GHPX-530921-2026-000000-0",
        "GHPX-530921-2026-000001-Y",
        "GHPX-530921-2026-000001-1\x00",
    ],
)
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(AppError) as caught:
        parse_certificate_number(text)
    assert caught.value.code == "invalid_certificate_number"
    assert caught.value.status_code == 422


def test_a_mistyped_digit_fails_the_check() -> None:
    number = format_certificate_number("530921", 2026, 123)
    for position in (5, 12, 19, 22):  # a digit of the county, year and sequence
        digit = number[position]
        typo = number[:position] + str((int(digit) + 1) % 10) + number[position + 1 :]
        with pytest.raises(AppError) as caught:
            parse_certificate_number(typo)
        assert caught.value.code == "invalid_certificate_number"
    swapped = number[:-4] + number[-3] + number[-4] + number[-2:]  # two digits swapped
    if swapped != number:
        with pytest.raises(AppError):
            parse_certificate_number(swapped)


def test_rule_and_mask_helpers() -> None:
    assert meets_rule(4, 5, 0.8) and not meets_rule(3, 5, 0.8)
    assert meets_rule(7, 10, 0.7) and not meets_rule(6, 10, 0.7)
    assert meets_rule(2, 3, 2 / 3) and not meets_rule(0, 0, 0.8)
    assert [mask_name(n) for n in ("李明", "王小红", "欧阳娜娜", "欧阳", "李", "  张三 ")] == [
        "李*",
        "王**",
        "欧阳**",
        "欧*",
        "李",
        "张*",
    ]
