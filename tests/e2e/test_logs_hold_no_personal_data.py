"""End to end: no log line and no event holds an ID number, a phone, a token or a password.

All four services run as processes at log level DEBUG, the gateway in front. A platform
admin signs in, sets up unions, a staff account with a phone, and an API key; a worker
applies with an ID number and phone (once with a mistyped ID number), is approved and
read back unmasked, and searched for by phone and ID number; a non-member enrols in a
training by ID number; the member visits a station with their card, signs in on the
phone by one-time code, and refreshes the login. Then every captured line of every
service (uvicorn's included) and every event on NATS is searched for each of those
secrets in every spelling. The one-time code itself is logged on purpose by the
development sender, but never beside the phone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import nats
import pytest

from gonghui_shared.clock import CHINA
from gonghui_shared.testing import auth_header
from gonghui_shared.testing.processes import Platform
from membership.testing import valid_id_number, valid_phone

ADMIN_PASSWORD_VARIABLE = "GONGHUI_ADMIN_PASSWORD"


@pytest.fixture(scope="module", autouse=True)
def debug_logs() -> Iterator[None]:
    """The services log at DEBUG: module-scoped and autouse, so it is set before the
    module's `full_platform` starts the processes with a copy of the environment."""
    before = os.environ.get("GONGHUI_LOG_LEVEL")
    os.environ["GONGHUI_LOG_LEVEL"] = "DEBUG"
    yield
    if before is None:
        del os.environ["GONGHUI_LOG_LEVEL"]
    else:
        os.environ["GONGHUI_LOG_LEVEL"] = before


@dataclass
class Secrets:
    """What must never be written to a log or put on the bus, by what it is."""

    found: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, *values: str) -> None:
        self.found.setdefault(kind, set()).update(v for v in values if v)

    def id_number(self, number: str) -> None:
        self.add("ID number", number)

    def phone(self, bare: str) -> None:
        """A mainland mobile in each spelling: bare 11 digits and E.164."""
        assert re.fullmatch(r"1\d{10}", bare), bare
        self.add("phone", bare, f"+86{bare}")

    def tokens(self, body: dict[str, Any]) -> None:
        self.add("token", body["access_token"], body.get("refresh_token", ""))

    def occurrences(self, text: str) -> list[str]:
        return sorted(
            f"{kind} {value[:6]}…"
            for kind, values in self.found.items()
            for value in values
            if value in text
        )


class Gateway:
    """Everything through the gateway, as a real client would call it."""

    def __init__(self, client: httpx.AsyncClient, platform: Platform) -> None:
        self.client = client
        self.base = platform.services["gateway"].base

    async def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        response = await self.client.request(method, f"{self.base}{path}", **kw)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    async def eventually(self, method: str, path: str, expect: int = 201, **kw: Any) -> Any:
        """Retry while a service's replica catches up with membership's events."""
        deadline = time.monotonic() + 20
        while True:
            response = await self.client.request(method, f"{self.base}{path}", **kw)
            if response.status_code == expect:
                return response.json()
            assert response.status_code < 500, f"{method} {path}: {response.text}"
            assert time.monotonic() < deadline, f"{method} {path}: {response.text}"
            await asyncio.sleep(0.2)

    async def sign_in(self, username: str, password: str) -> dict[str, Any]:
        data = {"grant_type": "password", "username": username, "password": password}
        body: dict[str, Any] = await self.call("POST", "/v1/auth/token", data=data)
        return body


async def play(gw: Gateway, platform: Platform, known: Secrets) -> None:
    """The scenario of the module docstring; every secret it handles goes into `known`."""
    serial = 7000 + secrets.randbelow(2000)
    admin_password = platform.services["gateway"].env[ADMIN_PASSWORD_VARIABLE]
    known.add("password", admin_password)
    tokens = await gw.sign_in("admin", admin_password)
    known.tokens(tokens)
    admin = auth_header(tokens["access_token"])

    orgs: dict[str, Any] = {}
    for key, parent, org_type, name, code in (
        ("county", None, "county_federation", "凤庆县总工会", "530921000000"),
        ("township", "county", "township_union", "凤山镇工会", "530921101000"),
        ("village", "township", "village_union", "京竹林村工会委员会", "530921101201"),
    ):
        body = {"org_type": org_type, "name": name, "region_code": code}
        if parent:
            body["parent_id"] = orgs[parent]["id"]
        orgs[key] = await gw.call("POST", "/v1/membership/orgs", 201, headers=admin, json=body)
    county, village = orgs["county"], orgs["village"]

    staff_phone, staff_password = valid_phone(serial), f"staff-{secrets.token_hex(8)}"
    known.phone(staff_phone)
    known.add("password", staff_password)
    username = f"logs_{secrets.token_hex(3)}"
    await gw.call(
        "POST",
        "/v1/accounts",
        201,
        headers=admin,
        json={
            "username": username,
            "password": staff_password,
            "role": "county_admin",
            "org_id": county["id"],
            "phone": staff_phone,
        },
    )
    county_tokens = await gw.sign_in(username, staff_password)
    known.tokens(county_tokens)
    county_admin = auth_header(county_tokens["access_token"])
    api_key = await gw.call(
        "POST",
        "/v1/api-keys",
        201,
        headers=county_admin,
        json={"name": "县政府驾驶舱", "scopes": ["dashboards:read"], "org_id": county["id"]},
    )
    known.add("API key", api_key["secret"])

    # A worker applies; first with a mistyped ID number (the last digit wrong).
    id_number, phone = valid_id_number(serial + 1), valid_phone(serial + 1)
    mistyped = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    known.id_number(id_number)
    known.id_number(mistyped)
    known.phone(phone)
    roster = await gw.call(
        "POST",
        "/v1/membership/rosters",
        201,
        headers=admin,
        json={"org_id": village["id"], "title": "2026年入会名册"},
    )
    application = {
        "org_id": village["id"],
        "roster_id": roster["id"],
        "name": "杨春花",
        "id_number": mistyped,
        "phone": phone,
        "household_type": "rural",
        "category": "migrant_worker",
        "employer": "凤庆茶厂",
        "form_ref": f"RH-LOGS-{serial}",
    }
    refused = await gw.call(
        "POST", "/v1/membership/applications", 422, headers=county_admin, json=application
    )
    assert refused["error"]["details"]["field"] == "id_number"
    submitted = await gw.call(
        "POST",
        "/v1/membership/applications",
        201,
        headers=county_admin,
        json=application | {"id_number": id_number},
    )
    approved = await gw.call(
        "POST",
        f"/v1/membership/applications/{submitted['id']}/approve",
        headers=county_admin,
        json={"approval_doc_no": "凤工复〔2026〕9号"},
    )
    member_no, card = approved["member"]["member_no"], approved["card"]["token"]
    known.add("member card", card)
    member = await gw.call("GET", f"/v1/membership/members/{member_no}", headers=county_admin)
    assert (member["id_number"], member["phone"]) == (id_number, f"+86{phone}")
    for q in (phone, id_number):  # an operator searching by what they have at hand
        await gw.call("GET", "/v1/membership/members", headers=county_admin, params={"q": q})

    # A non-member of the rural labour force enrols in a training by ID number.
    enrolee_id, enrolee_phone = valid_id_number(serial + 2, male=False), valid_phone(serial + 2)
    known.id_number(enrolee_id)
    known.phone(enrolee_phone)
    course = await gw.eventually(
        "POST",
        "/v1/training/courses",
        headers=county_admin,
        json={
            "owner_org_id": county["id"],
            "title": "茶叶加工技能培训",
            "category": "other",
            "hours": 8,
        },
    )
    starts = datetime.now(CHINA).replace(hour=9, minute=0, second=0, microsecond=0)
    session = await gw.call(
        "POST",
        "/v1/training/sessions",
        201,
        headers=county_admin,
        json={
            "course_id": course["id"],
            "host_org_id": county["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=8)).isoformat(),
            "place": "凤山镇职工之家",
            "delivery_mode": "on_site",
            "capacity": 20,
        },
    )
    await gw.call("POST", f"/v1/training/sessions/{session['id']}/open", headers=county_admin)
    enrolment = await gw.call(
        "POST",
        f"/v1/training/sessions/{session['id']}/enrolments",
        201,
        headers=county_admin,
        json={"name": "李桂兰", "id_number": enrolee_id, "phone": enrolee_phone},
    )
    read = await gw.call("GET", f"/v1/training/enrolments/{enrolment['id']}", headers=admin)
    assert read["id_number"] == enrolee_id

    # The member shows their card at a station.
    station = await gw.eventually(
        "POST",
        "/v1/stations/stations",
        headers=county_admin,
        json={
            "station_type": "village_service_point",
            "name": "京竹林村服务点",
            "host_org_id": village["id"],
            "lon": 99.92,
            "lat": 24.58,
            "crs": "wgs84",
        },
    )
    visit = await gw.eventually(
        "POST",
        f"/v1/stations/stations/{station['id']}/visits",
        headers=county_admin,
        json={"services": ["rest"], "member_card": card},
    )
    assert visit["member_no"] == member_no

    # The member signs in on the phone with a one-time code, and refreshes the login.
    await gw.call("POST", "/v1/auth/otp", 202, json={"phone": phone})
    code = await one_time_code(platform)
    member_tokens = await gw.call(
        "POST", "/v1/auth/otp/verify", json={"phone": phone, "code": code}
    )
    known.tokens(member_tokens)
    refreshed = await gw.call(
        "POST",
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": member_tokens["refresh_token"]},
    )
    known.tokens(refreshed)
    await gw.call("GET", "/v1/me", headers=auth_header(refreshed["access_token"]))
    overview = await gw.client.get(
        f"{gw.base}/v1/dashboard/overview",
        params={"org_id": county["id"]},
        headers={"X-API-Key": api_key["secret"]},
    )
    assert overview.status_code == 200, overview.text


def _level(line: str) -> str | None:
    """A JSON line's level; None for a line that is not ours (uvicorn's before start-up)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("level") if isinstance(entry, dict) else None


async def one_time_code(platform: Platform, timeout: float = 10.0) -> str:
    """The newest code the development sender wrote to the gateway's log."""
    deadline = time.monotonic() + timeout
    while True:
        codes = re.findall(
            r"one-time login code for \S+: (\d{6})", platform.services["gateway"].log_text()
        )
        if codes:
            return codes[-1]
        assert time.monotonic() < deadline, "no one-time code in the gateway's log"
        await asyncio.sleep(0.1)


async def test_no_log_line_or_event_holds_personal_data_or_secrets(
    full_platform: Platform, nats_url: str
) -> None:
    known = Secrets()
    events: list[bytes] = []
    nc = await nats.connect(nats_url)

    async def on_event(msg: Any) -> None:
        events.append(msg.data)

    await nc.subscribe(f"{full_platform.root}.>", cb=on_event)
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            await play(Gateway(client, full_platform), full_platform, known)
        await asyncio.sleep(2.0)  # the outbox relays publish within a poll or two
    finally:
        await nc.close()

    assert {"ID number", "phone", "token", "API key", "password", "member card"} <= set(known.found)
    logs = {name: service.log_text() for name, service in full_platform.services.items()}
    levels = {_level(line) for text in logs.values() for line in text.splitlines()}
    assert "debug" in levels, "no DEBUG lines logged"
    leaks = {name: known.occurrences(text) for name, text in logs.items()}
    assert leaks == {name: [] for name in logs}, f"personal data or secrets in the logs: {leaks}"
    otp_lines = [line for line in logs["gateway"].splitlines() if "one-time login code" in line]
    assert otp_lines and all(not known.occurrences(line) for line in otp_lines)
    assert events, "no event seen on NATS"
    on_the_bus = known.occurrences("\n".join(e.decode(errors="replace") for e in events))
    assert on_the_bus == [], f"personal data or secrets in events: {on_the_bus}"
    assert json.loads(events[0])["type"]
