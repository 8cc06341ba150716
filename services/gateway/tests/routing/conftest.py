"""Routing fixtures: three fake services on loopback sockets, and a gateway routed to them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.routing.testing import EchoService, Fake, LoopbackServer, services_at
from gateway.routing.upstreams import SERVICES

CONNECT_TIMEOUT = 1.5  # generous: the loop is shared with everything else the session runs
READ_TIMEOUT = 1.0


@pytest.fixture(scope="session")
async def fakes() -> AsyncIterator[dict[str, Fake]]:
    """The three fake services, listening for the whole session."""
    found: dict[str, Fake] = {}
    try:
        for name in SERVICES:
            echo = EchoService(name)
            server = LoopbackServer(echo)
            await server.start()
            found[name] = Fake(echo, server)
        yield found
    finally:
        for fake in found.values():
            await fake.server.stop()


@pytest.fixture(scope="session")
def routed_settings(settings: GatewaySettings, fakes: dict[str, Fake]) -> GatewaySettings:
    return settings.model_copy(
        update={
            "membership_url": fakes["membership"].server.url,
            "training_url": fakes["training"].server.url,
            "stations_url": fakes["stations"].server.url,
            "upstream_connect_timeout_seconds": CONNECT_TIMEOUT,
            "upstream_timeout_seconds": READ_TIMEOUT,
        }
    )


@pytest.fixture
async def routed_app(app: FastAPI, routed_settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    """The session's gateway, its upstreams pointed at the fakes for one test."""
    async with services_at(app, routed_settings):
        yield app


@pytest.fixture
async def gateway(routed_app: FastAPI, fakes: dict[str, Fake]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the routed gateway; the fakes' call logs start empty."""
    for fake in fakes.values():
        fake.echo.calls.clear()
        fake.echo.body_started.clear()
    transport = httpx.ASGITransport(app=routed_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", timeout=10
    ) as client:
        yield client
