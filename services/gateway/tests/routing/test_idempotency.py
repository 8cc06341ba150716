"""Idempotency keys on routed POSTs: a retry is answered from the first answer, once upstream."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from gateway.config import GatewaySettings
from gateway.idempotency import service as idempotency
from gateway.routing.testing import Fake
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for


def caller(settings: GatewaySettings, key: str) -> dict[str, str]:
    token = token_for(settings, Role.member, member_no="5309212026000001")
    return auth_header(token) | {"Idempotency-Key": key}


async def test_a_retried_post_reaches_the_service_once_and_gets_the_same_answer(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = caller(routed_settings, f"apply-{uuid.uuid4()}")
    body = {"name": "李四", "phone": "13800138000"}
    first = await gateway.post("/v1/membership/applications", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    retry = await gateway.post("/v1/membership/applications", json=body, headers=headers)
    assert retry.status_code == first.status_code
    # The echo's answer carries the request id, different for each request: only a
    # stored answer can be byte for byte the first one.
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert len(fakes["membership"].echo.calls) == 1
    assert first.headers["x-request-id"] != retry.headers["x-request-id"]

    # The same key for another body is a client mistake, not a replay.
    other = dict(body, name="王五")
    reused = await gateway.post("/v1/membership/applications", json=other, headers=headers)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(fakes["membership"].echo.calls) == 1

    # Without a key, or with a new one, a POST is sent again.
    fresh = caller(routed_settings, f"apply-{uuid.uuid4()}")
    again = await gateway.post("/v1/membership/applications", json=body, headers=fresh)
    assert again.status_code == 200 and again.content != first.content
    assert len(fakes["membership"].echo.calls) == 2


async def test_a_duplicate_while_the_first_is_in_flight_gets_409(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = caller(routed_settings, f"slow-{uuid.uuid4()}")
    url = "/v1/membership/slow?seconds=0.5"
    first = asyncio.create_task(gateway.post(url, json={"n": 1}, headers=headers))
    while not fakes["membership"].echo.calls:
        await asyncio.sleep(0.01)
    duplicate = await gateway.post(url, json={"n": 1}, headers=headers)
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
    answered = await first
    assert answered.status_code == 200, answered.text
    retry = await gateway.post(url, json={"n": 1}, headers=headers)
    assert retry.content == answered.content
    assert len(fakes["membership"].echo.calls) == 1


async def test_a_failed_answer_frees_the_key(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = caller(routed_settings, f"fail-{uuid.uuid4()}")
    for _ in range(2):
        failed = await gateway.post("/v1/membership/status/503", json={}, headers=headers)
        assert failed.status_code == 503
    assert len(fakes["membership"].echo.calls) == 2


async def test_a_database_blip_neither_loses_the_answer_nor_holds_the_key(
    gateway: httpx.AsyncClient,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storing the answer and freeing the key are retried while the database is briefly
    unreachable: the first call gets its answer and a retry its replay; a failed call's
    key is freed, so its retry reaches the service instead of a 409 for minutes."""
    failures = {"_store": 2, "_release": 2}

    def flaky(name: str) -> Any:
        real = getattr(idempotency, name)

        async def step(*args: Any) -> None:
            if failures[name]:
                failures[name] -= 1
                raise ConnectionRefusedError(111, "connection refused")  # as asyncpg raises it
            await real(*args)

        return step

    for name in failures:
        monkeypatch.setattr(idempotency, name, flaky(name))

    headers = caller(routed_settings, f"blip-{uuid.uuid4()}")
    body = {"name": "李四"}
    first = await gateway.post("/v1/membership/applications", json=body, headers=headers)
    assert first.status_code == 200, first.text
    retry = await gateway.post("/v1/membership/applications", json=body, headers=headers)
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == first.content

    headers = caller(routed_settings, f"blip-{uuid.uuid4()}")
    calls = len(fakes["membership"].echo.calls)
    for _ in range(2):
        failed = await gateway.post("/v1/membership/status/503", json={}, headers=headers)
        assert failed.status_code == 503, failed.text
    assert len(fakes["membership"].echo.calls) == calls + 2
    assert failures == {"_store": 0, "_release": 0}
