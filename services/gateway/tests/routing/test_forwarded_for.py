"""Where a forwarded call came from, and whose audit log records it.

The service is told the caller's address by `X-Forwarded-For`: the gateway appends the
address it got the call from, and keeps what came before only from its own trusted
proxies. A call the service answered is the service's to audit; one the gateway
answered itself (here, a service that is down) is in the gateway's log.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from gateway.base import audit_log
from gateway.config import GatewaySettings
from gateway.routing.testing import Fake, refused_port, services_at
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.audit import audit_rows

ClientFrom = Callable[[str], httpx.AsyncClient]


def _headers(settings: GatewaySettings, request_id: str, **extra: str) -> dict[str, str]:
    token = token_for(settings, Role.county_admin, org_id="o1", org_path="/o1/")
    return auth_header(token) | {"X-Request-ID": request_id} | extra


def _forwarded(fake: Fake) -> list[str]:
    [call] = fake.echo.calls
    return [v for k, v in call["headers"] if k == "x-forwarded-for"]


@pytest.fixture
async def from_address(routed_app: FastAPI) -> AsyncIterator[ClientFrom]:
    """Clients of the routed gateway whose calls come from a given address."""
    clients: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=routed_app, client=(address, 40404))
        made = httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=10)
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


async def test_the_service_is_told_the_callers_address_not_what_the_caller_claims(
    gateway: httpx.AsyncClient,
    from_address: ClientFrom,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
) -> None:
    client = from_address("203.0.113.7")
    rid = uuid.uuid4().hex[:16]
    claimed = {"X-Forwarded-For": "10.9.9.9, 198.51.100.1"}
    response = await client.post(
        "/v1/training/courses", headers=_headers(routed_settings, rid, **claimed), json={}
    )
    assert response.status_code == 200, response.text
    assert _forwarded(fakes["training"]) == ["203.0.113.7"]
    [call] = fakes["training"].echo.calls
    assert [v for k, v in call["headers"] if k == "x-request-id"] == [rid]


async def test_behind_a_trusted_proxy_its_chain_is_kept_and_the_proxy_appended(
    gateway: httpx.AsyncClient,
    from_address: ClientFrom,
    fakes: dict[str, Fake],
    routed_app: FastAPI,
    routed_settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(routed_app.state.runtime.settings, "trusted_proxies", "10.0.0.0/8")
    proxy = from_address("10.0.0.5")
    headers = _headers(routed_settings, "xff-chain", **{"X-Forwarded-For": "198.51.100.9"})
    assert (await proxy.get("/v1/stations/coverage", headers=headers)).status_code == 200
    assert _forwarded(fakes["stations"]) == ["198.51.100.9, 10.0.0.5"]

    # Not from the proxy: whatever the caller wrote is replaced by its own address.
    fakes["stations"].echo.calls.clear()
    direct = from_address("203.0.113.8")
    assert (await direct.get("/v1/stations/coverage", headers=headers)).status_code == 200
    assert _forwarded(fakes["stations"]) == ["203.0.113.8"]


async def test_the_gateway_audits_what_it_answered_and_leaves_the_rest_to_the_service(
    gateway: httpx.AsyncClient,
    fakes: dict[str, Fake],
    routed_app: FastAPI,
    routed_settings: GatewaySettings,
) -> None:
    db = routed_app.state.runtime.db
    answered = uuid.uuid4().hex[:16]
    response = await gateway.patch(
        "/v1/membership/orgs/o1", headers=_headers(routed_settings, answered), json={}
    )
    assert response.status_code == 200
    assert await audit_rows(db, audit_log, request_id=answered) == []

    refused = uuid.uuid4().hex[:16]
    async with services_at(
        routed_app, routed_settings, membership_url=f"http://127.0.0.1:{refused_port()}"
    ):
        down = await gateway.patch(
            "/v1/membership/orgs/o1", headers=_headers(routed_settings, refused), json={}
        )
    assert down.status_code == 503
    [row] = await audit_rows(db, audit_log, request_id=refused)
    assert (row["route"], row["status"], row["subject"]) == (
        "/v1/membership/{path:path}",
        503,
        "test-user",
    )
    assert row["path_params"] == {"path": "orgs/o1"}

    anonymous = uuid.uuid4().hex[:16]
    await gateway.post("/v1/training/courses", headers={"X-Request-ID": anonymous}, json={})
    [row] = await audit_rows(db, audit_log, request_id=anonymous)
    assert (row["status"], row["subject"]) == (401, None)
