"""Dashboard fixtures: a feed of events on the gateway's subject root, a known county."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.dashboards.testing import EventFeed, Scenario
from gonghui_shared.testing import auth_header, token_for


@pytest.fixture
async def feed(app: FastAPI, client: Any) -> AsyncIterator[EventFeed]:
    """A feed on the gateway's subject root; `client` has emptied the tables first."""
    yield EventFeed(app.state.runtime)


@pytest.fixture
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def admin(settings: Any) -> dict[str, str]:
    """A platform admin's bearer header."""
    return auth_header(token_for(settings, "platform_admin"))
