"""Request size limits: 413 before the service sees a byte; rosters have their own limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from gateway.config import GatewaySettings
from gateway.routing.testing import Fake
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for

MB = 1024 * 1024


def member(settings: GatewaySettings) -> dict[str, str]:
    return auth_header(token_for(settings, Role.member, member_no="5309212026000001"))


def calls(fakes: dict[str, Fake]) -> int:
    return sum(len(fake.echo.calls) for fake in fakes.values())


async def test_a_json_body_over_the_limit_is_refused_with_413(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    assert routed_settings.max_body_bytes == MB
    text = json.dumps({"notes": "x" * MB})
    headers = member(routed_settings) | {"content-type": "application/json"}
    response = await gateway.post("/v1/training/sessions", content=text, headers=headers)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and error["message_zh"]
    assert error["details"] == {"max_bytes": MB}
    assert calls(fakes) == 0

    # Sent in chunks with no Content-Length, it is refused all the same.
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(text), 64 * 1024):
            yield text[start : start + 64 * 1024].encode()

    response = await gateway.post("/v1/training/sessions", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert calls(fakes) == 0

    # Just under the limit, it goes through.
    small = json.dumps({"notes": "x" * (MB - 100)})
    response = await gateway.post("/v1/training/sessions", content=small, headers=headers)
    assert response.status_code == 200, response.text
    assert calls(fakes) == 1


async def test_a_roster_upload_has_its_own_larger_limit(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    assert routed_settings.max_upload_bytes == 20 * MB
    headers = member(routed_settings) | {"content-type": "application/octet-stream"}
    url = "/v1/membership/rosters/import?org_id=o1"
    response = await gateway.post(url, content=b"r" * (3 * MB), headers=headers)
    assert response.status_code == 200, response.text
    assert fakes["membership"].echo.calls[0]["body_bytes"] == 3 * MB
    response = await gateway.post(url, content=b"r" * (20 * MB + 1), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"] == {"max_bytes": 20 * MB}
    assert calls(fakes) == 1
