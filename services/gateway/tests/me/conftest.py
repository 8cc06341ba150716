"""Me fixtures: a gateway routed to the real membership, training and stations (whose
fixtures are in the parent conftest: the scope matrix routes to them too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.routing.testing import services_at


@pytest.fixture
async def gateway(app: FastAPI, me_settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's gateway, routed to the real services.

    The services' tables are not emptied between tests (their consumers may still be
    applying the last test's events): each test works in a county of its own (`tree`).
    """
    async with services_at(app, me_settings):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", timeout=30
        ) as client:
            yield client
