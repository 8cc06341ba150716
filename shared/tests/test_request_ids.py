"""Request ids: the caller's kept, else one made per request, on the response and in the log."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gonghui_shared.app import RequestContextMiddleware
from gonghui_shared.logging import ACCESS_LOGGER, request_id_var


@pytest.fixture
async def client() -> Any:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, service="ids-test")

    @app.get("/seen")
    async def seen() -> dict[str, str | None]:
        return {"request_id": request_id_var.get()}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        yield client


async def test_each_request_gets_an_id_of_its_own(client: httpx.AsyncClient) -> None:
    ids = set()
    for _ in range(20):
        response = await client.get("/seen")
        request_id = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", request_id)
        assert response.json()["request_id"] == request_id
        ids.add(request_id)
    assert len(ids) == 20


async def test_the_callers_id_is_kept_and_a_bad_one_replaced(client: httpx.AsyncClient) -> None:
    kept = await client.get("/seen", headers={"x-request-id": "gw-1234"})
    assert kept.headers["x-request-id"] == "gw-1234" == kept.json()["request_id"]
    replaced = await client.get("/seen", headers={"x-request-id": "bad\tid"})
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


async def test_one_access_line_per_request_with_its_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = await client.get("/seen?phone=13800138000")
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 1
    assert lines[0].getMessage() == "GET /seen 200"  # the path, never the query
    assert lines[0].__dict__["route"] == "/seen" and lines[0].__dict__["status"] == 200
    assert response.headers["x-request-id"]
