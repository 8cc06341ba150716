"""QR check-in: staff show a short-lived token, a trainee scans it and checks in as themself."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import jwt
import pytest

from gonghui_shared.clock import today_in_china
from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.config import TrainingSettings
from training.testing import Api, open_session


def url(ts: dict[str, Any], tail: str = "attendance") -> str:
    return f"/v1/sessions/{ts['id']}/{tail}"


async def error_of(api: Api, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
    response = await api.client.request(method, path, **({"headers": api.platform} | kw))
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_a_trainee_checks_in_by_scanning_the_code(
    api: Api, feed: MembershipFeed, settings: TrainingSettings
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, days=2, start=True)
    member_no = await feed.member(village)
    enrolment = await api.ok(
        "POST", url(ts, "enrolments"), expect=201, json={"member_no": member_no}
    )
    trainer = api.headers(Role.station_operator, county)  # attendance.write

    qr = await api.ok("GET", url(ts, "attendance/qr"), as_=trainer)
    today = today_in_china()
    assert qr["session_id"] == ts["id"] and qr["day"] == today.isoformat()
    assert qr["svg"].startswith("<svg") and "<path" in qr["svg"]
    claims = jwt.decode(qr["token"], options={"verify_signature": False})
    assert claims["typ"] == "checkin" and claims["sid"] == ts["id"]
    assert claims["exp"] - claims["iat"] == settings.qr_token_seconds

    as_member = api.headers(Role.member, village, member_no=member_no)
    record = await api.ok(
        "POST", url(ts), as_=as_member, expect=201, json={"qr_token": qr["token"]}
    )
    assert record["method"] == "qr" and record["day"] == today.isoformat()
    assert record["enrolment_id"] == enrolment["id"] and record["member_no"] == member_no
    error = await error_of(
        api, "POST", url(ts), 409, json={"qr_token": qr["token"]}, headers=as_member
    )
    assert error["code"] == "already_checked_in"

    # A code for tomorrow checks in for tomorrow.
    tomorrow = today + timedelta(days=1)
    qr2 = await api.ok("GET", url(ts, "attendance/qr"), params={"day": str(tomorrow)})
    record2 = await api.ok(
        "POST", url(ts), as_=as_member, expect=201, json={"qr_token": qr2["token"]}
    )
    assert record2["day"] == tomorrow.isoformat()
    listed = await api.ok("GET", url(ts))
    assert (listed["person_times"], listed["unique_persons"]) == (2, 1)
    assert [r["method"] for r in listed["items"]] == ["qr", "qr"]


async def test_expired_forged_and_foreign_codes_are_refused(
    api: Api, feed: MembershipFeed, settings: TrainingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    county, _, village = await feed.tree()
    ts = await open_session(api, county, start=True)
    other = await open_session(api, county, start=True)
    member_no = await feed.member(village)
    await api.ok("POST", url(ts, "enrolments"), expect=201, json={"member_no": member_no})
    as_member = api.headers(Role.member, village, member_no=member_no)

    async def scan(token: str, status: int) -> str:
        error = await error_of(
            api, "POST", url(ts), status, json={"qr_token": token}, headers=as_member
        )
        return str(error["code"])

    with monkeypatch.context() as patch:
        patch.setattr(settings, "qr_token_seconds", -1)
        expired = (await api.ok("GET", url(ts, "attendance/qr")))["token"]
    assert await scan(expired, 422) == "qr_token_expired"

    foreign = (await api.ok("GET", url(other, "attendance/qr")))["token"]
    assert await scan(foreign, 422) == "invalid_qr_token"

    good = (await api.ok("GET", url(ts, "attendance/qr")))["token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
    assert await scan(forged, 422) == "invalid_qr_token"
    assert await scan(good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB"), 422) == (
        "invalid_qr_token"
    )
    assert await scan("not a token", 422) == "invalid_qr_token"
    # Nothing was recorded by any of them; the genuine code still works.
    assert (await api.ok("GET", url(ts)))["person_times"] == 0
    await api.ok("POST", url(ts), as_=as_member, expect=201, json={"qr_token": good})


async def test_who_may_show_and_scan_codes(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    ts = await open_session(api, township, days=1, start=True)
    enrolled = await feed.member(village)
    outsider = await feed.member(village)
    await api.ok("POST", url(ts, "enrolments"), expect=201, json={"member_no": enrolled})
    token = (await api.ok("GET", url(ts, "attendance/qr")))["token"]

    # Showing a code: attendance.write in the host's scope, on a session day, while running.
    for headers, code in (
        (api.headers(Role.member, village, member_no=enrolled), "forbidden"),
        (api.headers(Role.org_chair, village), "out_of_scope"),
    ):
        error = await error_of(api, "GET", url(ts, "attendance/qr"), 403, headers=headers)
        assert error["code"] == code
    error = await error_of(
        api, "GET", url(ts, "attendance/qr"), 422, params={"day": str(date(2020, 1, 1))}
    )
    assert error["code"] == "day_outside_session" and error["details"]["field"] == "day"
    waiting = await open_session(api, township)
    error = await error_of(api, "GET", url(waiting, "attendance/qr"), 409)
    assert error["code"] == "session_not_in_progress"

    # Scanning: a member, for themself, with nothing else in the body.
    error = await error_of(api, "POST", url(ts), 403, json={"qr_token": token})
    assert error["code"] == "forbidden"  # staff have no member number to check in
    error = await error_of(
        api,
        "POST",
        url(ts),
        409,
        json={"qr_token": token},
        headers=api.headers(Role.member, village, member_no=outsider),
    )
    assert error["code"] == "not_enrolled"
    as_enrolled = api.headers(Role.member, village, member_no=enrolled)
    error = await error_of(
        api,
        "POST",
        url(ts),
        422,
        json={"qr_token": token, "member_no": outsider},
        headers=as_enrolled,
    )
    assert error["code"] == "invalid_checkin"
    record = await api.ok("POST", url(ts), as_=as_enrolled, expect=201, json={"qr_token": token})
    assert record["member_no"] == enrolled and record["method"] == "qr"
    assert record["recorded_by"] == "test-user"
