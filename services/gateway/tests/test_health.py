"""The gateway starts, migrates and reports itself ready."""

from __future__ import annotations

import httpx


async def test_ready_when_database_and_nats_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "nats": "ok"}
