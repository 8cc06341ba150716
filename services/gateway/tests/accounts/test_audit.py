"""The gateway's own audit log: accounts, API keys, sign-ins and sign-outs, `GET /v1/audit`.

The audit log is append-only, so it is never emptied between tests: each test finds its
rows by request id (or a subject of its own).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.accounts.testing import COUNTY_A, COUNTY_B, VILLAGE_A, FakeMembership, Gateway
from gateway.base import audit_log
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.audit import assert_append_only, audit_rows

CLIENT = "203.0.113.7"  # the address the gateway sees the calls come from


def _rid() -> str:
    return uuid.uuid4().hex[:16]


async def _row(app: FastAPI, request_id: str) -> dict[str, Any]:
    [row] = await audit_rows(app.state.runtime.db, audit_log, request_id=request_id)
    return row


def _secrets_absent(row: dict[str, Any], *secrets: str) -> None:
    text = repr(row)
    for secret in secrets:
        assert secret not in text, f"{secret!r} in the audit row"


@pytest.fixture
async def remote(app: FastAPI, gw: Gateway) -> AsyncIterator[Gateway]:
    """The accounts driver, its calls coming from a client at CLIENT (not a trusted proxy)."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield Gateway(client, app)


async def test_account_and_api_key_writes_record_who_what_when_where_and_request(
    remote: Gateway, app: FastAPI
) -> None:
    admin = await remote.admin()
    admin_id = app.state.runtime.verifier.verify(admin).subject
    rid = _rid()
    headers = {"X-Request-ID": rid, "X-Forwarded-For": "198.51.100.1"}  # not believed
    body = {
        "username": "audit_chair",
        "password": "audit_chair-password",
        "role": "org_chair",
        "org_id": VILLAGE_A["id"],
    }
    account = await remote.ok(
        "POST", "/v1/accounts", token=admin, json=body, expect=201, headers=headers
    )
    row = await _row(app, rid)
    assert (row["subject"], row["role"], row["actor_org_path"]) == (
        admin_id,
        "platform_admin",
        None,
    )
    assert (row["method"], row["route"], row["status"]) == ("POST", "/v1/accounts", 201)
    assert row["org_path"] == VILLAGE_A["path"]  # where the account was made
    assert row["client_addr"] == CLIENT and row["personal_data"] is False
    assert abs(datetime.now(UTC) - row["at"]) < timedelta(minutes=1)
    _secrets_absent(row, "audit_chair-password")

    rid = _rid()
    await remote.ok(
        "PATCH",
        f"/v1/accounts/{account['id']}",
        token=admin,
        json={"password": "a-brand-new-password"},
        headers={"X-Request-ID": rid},
    )
    row = await _row(app, rid)
    assert (row["route"], row["path_params"]) == (
        "/v1/accounts/{account_id}",
        {"account_id": account["id"]},
    )
    _secrets_absent(row, "a-brand-new-password")

    created, revoked = _rid(), _rid()
    body = {"name": "县人社局数据共享平台", "scopes": ["dashboards:read"], "org_id": COUNTY_A["id"]}
    key = await remote.ok(
        "POST",
        "/v1/api-keys",
        token=admin,
        json=body,
        expect=201,
        headers={"X-Request-ID": created},
    )
    await remote.ok(
        "POST", f"/v1/api-keys/{key['id']}/revoke", token=admin, headers={"X-Request-ID": revoked}
    )
    row = await _row(app, created)
    assert (row["route"], row["status"], row["org_path"]) == ("/v1/api-keys", 201, COUNTY_A["path"])
    _secrets_absent(row, key["secret"])
    row = await _row(app, revoked)
    assert row["route"] == "/v1/api-keys/{key_id}/revoke" and row["path_params"] == {
        "key_id": key["id"]
    }
    assert (row["subject"], row["status"]) == (admin_id, 200)


async def test_sign_ins_name_the_account_or_the_username_tried_never_the_secret(
    remote: Gateway, app: FastAPI
) -> None:
    admin = await remote.admin()
    county_id = (await remote.account(admin, "audit_county", "county_admin", COUNTY_A))["id"]
    token_url = "/v1/auth/token"

    failed = _rid()
    data = {"grant_type": "password", "username": "Audit_County", "password": "guessed-wrong-1"}
    response = await remote.client.post(token_url, data=data, headers={"X-Request-ID": failed})
    assert response.status_code == 401
    row = await _row(app, failed)
    assert (row["subject"], row["role"], row["status"]) == ("username:audit_county", None, 401)
    assert (row["route"], row["client_addr"]) == (token_url, CLIENT)
    _secrets_absent(row, "guessed-wrong-1")

    unknown = _rid()
    data = {"grant_type": "password", "username": "nobody_here", "password": "guessed-wrong-2"}
    await remote.client.post(token_url, data=data, headers={"X-Request-ID": unknown})
    assert (await _row(app, unknown))["subject"] == "username:nobody_here"

    signed_in = _rid()
    data = {
        "grant_type": "password",
        "username": "audit_county",
        "password": "audit_county-password",
    }
    response = await remote.client.post(token_url, data=data, headers={"X-Request-ID": signed_in})
    assert response.status_code == 200, response.text
    tokens = response.json()
    row = await _row(app, signed_in)
    assert (row["subject"], row["role"], row["actor_org_path"], row["status"]) == (
        county_id,
        "county_admin",
        COUNTY_A["path"],
        200,
    )
    _secrets_absent(row, "audit_county-password", tokens["access_token"], tokens["refresh_token"])

    renewed, reused = _rid(), _rid()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    for rid, status in ((renewed, 200), (reused, 401)):
        await remote.ok(
            "POST", token_url, data=refresh, expect=status, headers={"X-Request-ID": rid}
        )
    assert (await _row(app, renewed))["subject"] == county_id
    row = await _row(app, reused)
    assert (row["subject"], row["status"]) == (county_id, 401)  # whose stolen token it was
    _secrets_absent(row, tokens["refresh_token"])

    signed_out = _rid()
    fresh = await remote.login("audit_county", "audit_county-password")
    await remote.ok(
        "POST",
        "/v1/auth/revoke",
        token=fresh["access_token"],
        expect=204,
        headers={"X-Request-ID": signed_out},
    )
    row = await _row(app, signed_out)
    assert (row["subject"], row["route"], row["status"]) == (county_id, "/v1/auth/revoke", 204)


async def test_one_time_codes_are_recorded_with_the_phone_masked_and_no_code(
    remote: Gateway,
    app: FastAPI,
    membership: FakeMembership,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    membership.add_member("13800138123", "5309212026000123")
    sent, wrong, right = _rid(), _rid(), _rid()
    await remote.ok(
        "POST",
        "/v1/auth/otp",
        json={"phone": "13800138123"},
        expect=202,
        headers={"X-Request-ID": sent},
    )
    [code] = [
        m.group(1)
        for r in caplog.records
        if r.name == "gateway.accounts.otp" and (m := re.search(r": (\d{6}) ", r.getMessage()))
    ]
    guess = f"{(int(code) + 1) % 10**6:06d}"
    for rid, attempt, status in ((wrong, guess, 401), (right, code, 200)):
        response = await remote.client.post(
            "/v1/auth/otp/verify",
            json={"phone": "13800138123", "code": attempt},
            headers={"X-Request-ID": rid},
        )
        assert response.status_code == status, response.text
    rows = {rid: await _row(app, rid) for rid in (sent, wrong, right)}
    for rid in (sent, wrong):
        assert rows[rid]["subject"] == "phone:138****8123" and rows[rid]["role"] is None
    assert (rows[wrong]["route"], rows[wrong]["status"]) == ("/v1/auth/otp/verify", 401)
    assert rows[right]["role"] == "member" and rows[right]["status"] == 200
    assert not rows[right]["subject"].startswith("phone:")  # the member's login account
    for row in rows.values():
        _secrets_absent(row, code, "13800138123", "8613800138123")


async def test_the_log_is_for_audit_readers_in_their_scope(
    gw: Gateway, app: FastAPI, membership: FakeMembership
) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "audit_reader_a", "county_admin", COUNTY_A)
    county_b = await gw.staff(admin, "audit_reader_b", "county_admin", COUNTY_B)
    in_a, in_b = _rid(), _rid()
    await gw.ok(
        "POST",
        "/v1/accounts",
        token=county_a,
        json={
            "username": "audit_a_chair",
            "password": "audit_a_chair-password",
            "role": "org_chair",
            "org_id": VILLAGE_A["id"],
        },
        expect=201,
        headers={"X-Request-ID": in_a},
    )
    await gw.ok(
        "POST",
        "/v1/api-keys",
        token=county_b,
        json={"name": "云县人社局", "scopes": ["dashboards:read"]},
        expect=201,
        headers={"X-Request-ID": in_b},
    )

    async def request_ids(token: str) -> set[str]:
        seen: set[str] = set()
        cursor = ""
        while True:
            page = await gw.ok("GET", f"/v1/audit?limit=500{cursor}", token=token)
            seen |= {item["request_id"] for item in page["items"]}
            if not page["next_cursor"]:
                return seen
            cursor = f"&cursor={page['next_cursor']}"

    seen_by_a = await request_ids(county_a)
    assert in_a in seen_by_a and in_b not in seen_by_a
    assert {in_a, in_b} <= await request_ids(admin)
    actor = app.state.runtime.verifier.verify(county_a).subject
    mine = await gw.ok("GET", f"/v1/audit?route=/v1/accounts&actor={actor}", token=county_a)
    assert [item["request_id"] for item in mine["items"]] == [in_a]

    settings = app.state.runtime.settings
    for role, org in (
        (Role.org_chair, VILLAGE_A),
        (Role.station_operator, VILLAGE_A),
        (Role.member, None),
        (Role.gov_system, COUNTY_A),
    ):
        token = token_for(
            settings,
            role,
            org_id=org["id"] if org else None,
            org_path=org["path"] if org else None,
        )
        denied = await gw.client.get("/v1/audit", headers=auth_header(token))
        assert denied.status_code == 403, (role, denied.text)
    key = await gw.ok(
        "POST",
        "/v1/api-keys",
        token=admin,
        json={
            "name": "全部范围",
            "scopes": ["dashboards:read", "members:read_masked"],
            "org_id": COUNTY_A["id"],
        },
        expect=201,
    )
    by_key = await gw.client.get("/v1/audit", headers={"X-API-Key": key["secret"]})
    assert by_key.status_code == 403
    # The gateway resolves the reader as it does every caller: a signed-out token is refused.
    await gw.ok("POST", "/v1/auth/revoke", token=county_a, expect=204)
    revoked = await gw.client.get("/v1/audit", headers=auth_header(county_a))
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "token_revoked"


async def test_the_database_refuses_to_change_gateway_audit_rows(gw: Gateway, app: FastAPI) -> None:
    await gw.admin()
    await gw.client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": "x", "password": "y"}
    )
    await assert_append_only(app.state.runtime.db, audit_log)
