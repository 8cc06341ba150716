"""Accounts fixtures: cheap password hashes, a fake membership, the API driver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.accounts.testing import COUNTY_A, COUNTY_B, VILLAGE_A, FakeMembership, Gateway
from gateway.config import GatewaySettings


@pytest.fixture(autouse=True)
def cheap_hashes(settings: GatewaySettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2**10 (about 5 ms) instead of 2**14: the tests hash dozens of passwords."""
    monkeypatch.setattr(settings, "password_scrypt_n", 2**10)


@pytest.fixture
def membership(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMembership]:
    """The fake membership, wired into the gateway for this test."""
    fake = FakeMembership(app=app)
    for org in (COUNTY_A, VILLAGE_A, COUNTY_B):
        fake.orgs[org["id"]] = dict(org)
    monkeypatch.setattr(app.state.accounts.directory, "transport", httpx.MockTransport(fake.handle))
    yield fake


@pytest.fixture
def gw(client: httpx.AsyncClient, app: FastAPI, membership: FakeMembership) -> Gateway:
    return Gateway(client, app)
