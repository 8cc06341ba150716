"""`gonghui-gateway rebuild-dashboards` replays the streams into empty read models, and the
figures come out the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update

from gateway import cli
from gateway.config import GatewaySettings
from gateway.dashboards.models import DashCounter, DashMember, DashSource, DashSubtreeCounter
from gateway.dashboards.testing import EventFeed, Scenario
from gateway.main import create_app


@pytest.fixture
async def own_root(
    settings: GatewaySettings, client: httpx.AsyncClient
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A gateway on a subject root of its own: its streams hold only this test's events."""
    mine = settings.model_copy(
        update={"subject_root": f"{settings.subject_root}rb{uuid.uuid4().hex[:6]}"}
    )
    app = create_app(mine)
    async with app.router.lifespan_context(app):
        assert await app.state.runtime.bus.connected(10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as own:
            yield app, own


async def snapshot(client: httpx.AsyncClient, headers: dict[str, str], scenario: Scenario) -> Any:
    """Every dashboard answer for the scenario, without the times that say when it was asked."""
    answers: dict[str, Any] = {}
    o = scenario.orgs
    for key in ("C", "T1", "V3", "X"):
        for endpoint, extra in (
            ("overview", {}),
            ("overview", {"from": "2026-04", "to": "2026-05"}),
            ("children", {}),
            ("map", {}),
            ("timeseries", {"metric": "members_active", "from": "2026-01", "to": "2026-06"}),
            ("timeseries", {"metric": "unique_persons", "from": "2026-01", "to": "2026-06"}),
        ):
            response = await client.get(
                f"/v1/dashboard/{endpoint}", params={"org_id": o[key].id, **extra}, headers=headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            body.pop("generated_at")
            for source in body.pop("freshness"):
                source.pop("applied_at")
                answers.setdefault("freshness", {})[source["source"]] = source
            answers[f"{endpoint} {key} {sorted(extra.items())}"] = body
    return answers


async def test_rebuild_arrives_at_the_same_figures(
    own_root: tuple[FastAPI, httpx.AsyncClient],
    scenario: Scenario,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, client = own_root
    settings: GatewaySettings = app.state.runtime.settings
    feed = EventFeed(app.state.runtime)
    await scenario.publish(feed, twice=True)
    before = await snapshot(client, admin, scenario)
    assert before["freshness"]["training"]["events_applied"] > 0

    # Damage the read models: the rebuild must not depend on what is there.
    async with app.state.runtime.db.transaction() as session:
        await session.execute(delete(DashMember))
        await session.execute(delete(DashCounter).where(DashCounter.metric == "person_times"))
        await session.execute(
            delete(DashSubtreeCounter).where(DashSubtreeCounter.metric == "person_times")
        )
        # Answers are cached per read-model version, which every handler's transaction
        # moves on (`dash_sources`); damage done behind the handlers' back moves it too.
        await session.execute(update(DashSource).values(applied_at=datetime.now(UTC)))
    assert await snapshot(client, admin, scenario) != before

    for name, value in (
        ("GATEWAY_DATABASE_URL", settings.database_url),
        ("GONGHUI_NATS_URL", settings.nats_url),
        ("GONGHUI_SUBJECT_ROOT", settings.subject_root),
        ("GONGHUI_DATA_DIR", str(settings.data_dir)),
        ("GONGHUI_ENVIRONMENT", "test"),
    ):
        monkeypatch.setenv(name, value)
    # While the gateway (and its live consumers) keep running.
    code = await asyncio.to_thread(cli.main, ["rebuild-dashboards", "--batch", "7"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    published = {source: len(ids) for source, ids in feed.published.items()}
    for source, n in published.items():
        # Every event is in the stream twice (redelivered): applied once, skipped once.
        assert f"{source:<10} read {2 * n:,} of {2 * n:,}: applied {n:,}" in out, out
        assert "failed 0" in out
    assert "membership" in err and "%" in err  # progress lines

    assert await snapshot(client, admin, scenario) == before
    async with app.state.runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DashMember)) == len(
            scenario.members
        )


async def test_rebuild_command_reports_an_unreachable_nats(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: GatewaySettings
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GONGHUI_NATS_URL", "nats://127.0.0.1:9")
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(settings.data_dir))
    code = await asyncio.to_thread(
        cli.main, ["rebuild-dashboards", "--connect-timeout", "0.5", "--quiet"]
    )
    assert code == cli.EXIT_USAGE
    assert "did not answer" in capsys.readouterr().err
