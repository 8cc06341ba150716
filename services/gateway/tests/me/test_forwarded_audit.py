"""A write through the gateway lands in the real service's audit log with the caller's
address (the services here trust the gateway's loopback address as a proxy) and the
request id; the gateway's own log does not repeat it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.base import audit_log as gateway_audit_log
from gateway.config import GatewaySettings
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.audit import audit_rows
from membership.base import audit_log as membership_audit_log
from membership.testing import applicant

CALLER = "203.0.113.7"
MakeTree = Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]


@pytest.fixture
async def remote(gateway: httpx.AsyncClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the routed gateway (see `gateway`) calling from CALLER."""
    transport = httpx.ASGITransport(app=app, client=(CALLER, 50321))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", timeout=30
    ) as client:
        yield client


async def test_a_routed_write_is_in_the_services_audit_log_with_the_callers_address(
    remote: httpx.AsyncClient,
    app: FastAPI,
    services: dict[str, Any],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    county, _, village = await tree()
    admin = token_for(
        me_settings,
        Role.county_admin,
        org_id=county["id"],
        org_path=county["path"],
        subject="xff-county-admin",
    )
    rid = uuid.uuid4().hex[:16]
    response = await remote.patch(
        f"/v1/membership/orgs/{village['id']}",
        json={"chair_name": "杨定忠"},
        # What the caller claims is not believed: it is no proxy of the gateway's.
        headers=auth_header(admin) | {"X-Request-ID": rid, "X-Forwarded-For": "10.6.6.6"},
    )
    assert response.status_code == 200, response.text
    membership_db = services["membership"].app.state.runtime.db
    [row] = await audit_rows(membership_db, membership_audit_log, request_id=rid)
    assert row["client_addr"] == CALLER
    assert (row["subject"], row["role"]) == ("xff-county-admin", "county_admin")
    assert (row["method"], row["route"], row["status"]) == ("PATCH", "/v1/orgs/{org_id}", 200)
    assert row["org_path"] == village["path"]
    assert await audit_rows(app.state.runtime.db, gateway_audit_log, request_id=rid) == []


async def test_an_application_from_the_app_is_in_membership_s_log_with_the_phone_s_address(
    remote: httpx.AsyncClient,
    app: FastAPI,
    services: dict[str, Any],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    _, _, village = await tree()
    subject = f"phone:xff-{uuid.uuid4().hex[:8]}"
    me = auth_header(token_for(me_settings, Role.member, subject=subject))
    body = applicant() | {"org_id": village["id"]}
    del body["form_ref"]
    rid = uuid.uuid4().hex[:16]
    response = await remote.post("/v1/me/apply", json=body, headers=me | {"X-Request-ID": rid})
    assert response.status_code == 201, response.text
    membership_db = services["membership"].app.state.runtime.db
    [row] = await audit_rows(membership_db, membership_audit_log, request_id=rid)
    assert (row["route"], row["subject"], row["client_addr"]) == (
        "/v1/applications/self",
        subject,
        CALLER,
    )
    assert await audit_rows(app.state.runtime.db, gateway_audit_log, request_id=rid) == []
