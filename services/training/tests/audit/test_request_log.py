"""Training's request audit trail: a write leaves its row, and the database keeps it."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from gonghui_shared.permissions import Role
from gonghui_shared.testing.audit import assert_append_only, audit_rows
from gonghui_shared.testing.feed import MembershipFeed
from training.base import audit_log
from training.testing import Api, open_session


async def test_a_write_is_recorded_and_kept(api: Api, feed: MembershipFeed, app: FastAPI) -> None:
    county = await feed.org(None, "county_federation", "凤庆县总工会", "530921000000")
    village = await feed.org(county, "village_union", "凤庆县一村", "530921101201")
    await feed.synced()
    session = await open_session(api, village)
    rid = uuid.uuid4().hex[:16]
    response = await api.client.post(
        f"/v1/sessions/{session['id']}/cancel",
        json={"reason": "暴雨"},
        headers=api.headers(Role.county_admin, county, subject="audit-trainer")
        | {"X-Request-Id": rid},
    )
    assert response.status_code == 200, response.text
    [row] = await audit_rows(app.state.runtime.db, audit_log, request_id=rid)
    assert (row["subject"], row["role"], row["status"]) == ("audit-trainer", "county_admin", 200)
    assert (row["method"], row["route"]) == ("POST", "/v1/sessions/{session_id}/cancel")
    assert row["path_params"] == {"session_id": session["id"]}
    assert row["actor_org_path"] == county["path"] and row["org_path"].startswith(county["path"])
    seen = await api.ok(
        "GET", "/v1/audit?actor=audit-trainer", as_=api.headers(Role.county_admin, county)
    )
    assert rid in {item["request_id"] for item in seen["items"]}
    await assert_append_only(app.state.runtime.db, audit_log)
