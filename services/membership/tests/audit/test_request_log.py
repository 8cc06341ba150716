"""Membership's request audit trail: writes, unmasked reads, the guard, `GET /v1/audit`.

The audit log is append-only, so it is never emptied between tests: each test finds
its own rows by request id or by a subject of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from gonghui_shared.permissions import Role
from gonghui_shared.testing.audit import assert_append_only, audit_rows
from membership.base import audit_log
from membership.testing import Api


def _rid() -> str:
    return uuid.uuid4().hex[:16]


async def _rows(app: FastAPI, **equal: Any) -> list[dict[str, Any]]:
    return await audit_rows(app.state.runtime.db, audit_log, **equal)


async def test_a_write_records_who_what_and_the_request(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    rid = _rid()
    headers = api.headers(Role.county_admin, county, subject="audit-writer") | {
        "X-Request-Id": rid,
        "X-Forwarded-For": "198.51.100.7",  # from an untrusted peer: not believed
    }
    response = await api.client.patch(
        f"/v1/orgs/{village['id']}", json={"chair_name": "杨定忠"}, headers=headers
    )
    assert response.status_code == 200, response.text
    [row] = await _rows(app, request_id=rid)
    assert (row["subject"], row["role"]) == ("audit-writer", "county_admin")
    assert row["actor_org_path"] == county["path"] and row["org_path"] == village["path"]
    assert (row["method"], row["route"]) == ("PATCH", "/v1/orgs/{org_id}")
    assert row["path_params"] == {"org_id": village["id"]}
    assert row["status"] == 200 and row["personal_data"] is False
    assert row["client_addr"] == "127.0.0.1"
    assert abs(datetime.now(UTC) - row["at"]) < timedelta(minutes=1)


async def test_a_refused_write_is_recorded_for_both_counties(api: Api, app: FastAPI) -> None:
    county_a = await api.county("530921000000", "凤庆县总工会")
    county_b = await api.county("530922000000", "云县总工会")
    rid = _rid()
    response = await api.client.patch(
        f"/v1/orgs/{county_b['id']}",
        json={"chair_name": "越权"},
        headers=api.headers(Role.county_admin, county_a, subject="audit-trespasser")
        | {"X-Request-Id": rid},
    )
    assert response.status_code == 403
    [row] = await _rows(app, request_id=rid)
    assert (row["subject"], row["status"]) == ("audit-trespasser", 403)
    # the org it tried to act on, and the actor's own scope: both counties' admins see it
    assert row["org_path"] == county_b["path"] and row["actor_org_path"] == county_a["path"]
    for county in (county_a, county_b):
        seen = await api.ok(
            "GET",
            "/v1/audit?actor=audit-trespasser",
            as_=api.headers(Role.county_admin, county),
        )
        assert rid in {item["request_id"] for item in seen["items"]}


async def test_unmasked_member_reads_are_marked_masked_ones_not(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    approved = await api.member(county, village)
    member_no = approved["member"]["member_no"]
    full_rid, masked_rid, export_rid = _rid(), _rid(), _rid()
    admin = api.headers(Role.county_admin, county, subject="audit-personal")
    full = await api.ok("GET", f"/v1/members/{member_no}", as_=admin | {"X-Request-Id": full_rid})
    chair = api.headers(Role.org_chair, village, subject="audit-masked")
    masked = await api.ok(
        "GET", f"/v1/members/{member_no}", as_=chair | {"X-Request-Id": masked_rid}
    )
    assert (full["personal_data"], masked["personal_data"]) == ("full", "masked")
    [row] = await _rows(app, request_id=full_rid)
    assert row["personal_data"] is True and row["method"] == "GET"
    assert row["route"] == "/v1/members/{member_no}"
    assert row["path_params"] == {"member_no": member_no}
    assert row["org_path"] == village["path"]  # whose data it was
    assert await _rows(app, request_id=masked_rid) == []
    export = await api.client.get(
        f"/v1/rosters/export?org_id={village['id']}&format=csv",
        headers=admin | {"X-Request-Id": export_rid},
    )
    assert export.status_code == 200
    [exported] = await _rows(app, request_id=export_rid)
    assert exported["personal_data"] is True and exported["route"] == "/v1/rosters/export"


async def test_the_database_refuses_to_change_audit_rows(api: Api, app: FastAPI) -> None:
    await api.county()
    await assert_append_only(app.state.runtime.db, audit_log)


async def test_the_query_filters_and_pages(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    subject = f"audit-query-{uuid.uuid4().hex[:6]}"
    admin = api.headers(Role.county_admin, county, subject=subject)
    member_no = (await api.member(county, village))["member"]["member_no"]
    for name in ("甲", "乙"):
        await api.ok("PATCH", f"/v1/orgs/{village['id']}", as_=admin, json={"chair_name": name})
    await api.ok("GET", f"/v1/members/{member_no}", as_=admin)

    async def query(params: str) -> dict[str, Any]:
        return await api.ok("GET", f"/v1/audit?actor={subject}&{params}", as_=admin)

    everything = (await query(""))["items"]
    assert [(e["method"], e["route"]) for e in everything] == [
        ("PATCH", "/v1/orgs/{org_id}"),
        ("PATCH", "/v1/orgs/{org_id}"),
        ("GET", "/v1/members/{member_no}"),
    ]
    personal = (await query("personal_data=true"))["items"]
    assert [e["route"] for e in personal] == ["/v1/members/{member_no}"]
    writes = (await query("personal_data=false&route=/v1/orgs/{org_id}"))["items"]
    assert [e["id"] for e in writes] == [e["id"] for e in everything[:2]]
    first = await query("limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await query(f"limit=2&cursor={first['next_cursor']}")
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in everything]
    assert rest["next_cursor"] is None
    middle = everything[1]["at"]
    since = (
        await api.client.get("/v1/audit", params={"actor": subject, "from": middle}, headers=admin)
    ).json()["items"]
    until = (
        await api.client.get("/v1/audit", params={"actor": subject, "to": middle}, headers=admin)
    ).json()["items"]
    assert [e["id"] for e in until + since] == [e["id"] for e in everything]
    naive = await api.client.get("/v1/audit", params={"from": "2026-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 422
    # found by the fuzzer (it was a 500): no UTC time exists for year 1 at +00:01
    early = {"from": "0001-01-01T00:00:00+00:01"}
    assert (await api.client.get("/v1/audit", params=early, headers=admin)).status_code == 422


async def test_the_query_keeps_to_the_admins_scope(api: Api, app: FastAPI) -> None:
    county_a = await api.county("530921000000", "凤庆县总工会")
    county_b = await api.county("530922000000", "云县总工会")
    admin_a = api.headers(Role.county_admin, county_a, subject="audit-scope-a")
    admin_b = api.headers(Role.county_admin, county_b, subject="audit-scope-b")
    await api.ok("PATCH", f"/v1/orgs/{county_a['id']}", as_=admin_a, json={"chair_name": "甲"})
    await api.ok("PATCH", f"/v1/orgs/{county_b['id']}", as_=admin_b, json={"chair_name": "乙"})

    async def subjects(headers: dict[str, str], scope: str | None) -> set[str | None]:
        seen: set[str | None] = set()
        cursor = ""
        while True:
            page = await api.ok("GET", f"/v1/audit?limit=500{cursor}", as_=headers)
            for item in page["items"]:
                seen.add(item["subject"])
                if scope is not None:
                    assert (item["org_path"] or "").startswith(scope) or (
                        item["actor_org_path"] or ""
                    ).startswith(scope), item
            if not page["next_cursor"]:
                return seen
            cursor = f"&cursor={page['next_cursor']}"

    seen_by_a = await subjects(admin_a, county_a["path"])
    assert "audit-scope-a" in seen_by_a and "audit-scope-b" not in seen_by_a
    assert {"audit-scope-a", "audit-scope-b"} <= await subjects(api.platform, None)
    for role, org in ((Role.org_chair, county_a), (Role.gov_system, county_a), (Role.member, None)):
        denied = await api.client.get("/v1/audit", headers=api.headers(role, org))
        assert denied.status_code == 403, role
    unscoped = await api.client.get("/v1/audit", headers=api.headers(Role.county_admin))
    assert unscoped.json()["error"]["code"] == "out_of_scope"
