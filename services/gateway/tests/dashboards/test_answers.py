"""Cached overview and children answers: served without FastAPI's machinery, as FastAPI
would serve them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.dashboards import service
from gateway.dashboards.endpoints import plain_query
from gateway.dashboards.testing import EventFeed, Scenario
from gonghui_shared.testing import auth_header, token_for

ORG = "0196a0b2-4c1e-7f00-8000-000000000001"


@pytest.mark.parametrize(
    ("query", "asked"),
    [
        (f"org_id={ORG}".encode(), (ORG, None, None)),
        (f"org_id={ORG}&from=2026-01&to=2026-12".encode(), (ORG, "2026-01", "2026-12")),
        # Starlette's reading: the last of a repeated name, percent-escapes decoded.
        (b"org_id=first&org_id=second", ("second", None, None)),
        (b"org_id=a%2Fb&other=x", ("a/b", None, None)),
        (b"to=2026-03&org_id=x", ("x", None, "2026-03")),
    ],
)
def test_plain_queries_are_read_as_fastapi_reads_them(
    query: bytes, asked: tuple[str, str | None, str | None]
) -> None:
    assert plain_query(query) == asked


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"org_id=",
        b"from=2026-01",
        b"org_id=" + b"x" * 37,
        b"org_id=x&from=2026-13",
        b"org_id=x&to=2026-1",
        b"org_id=x&to=2026-01%0A",  # `$` in FastAPI's pattern does not allow it either
        b"org_id=x&from=",
    ],
)
def test_anything_else_is_left_to_fastapi(query: bytes) -> None:
    assert plain_query(query) is None


async def test_invalid_queries_answer_fastapi_s_422_in_the_house_shape(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for endpoint in ("overview", "children"):
        for params, field in (
            ({"org_id": "x", "from": "2026-13"}, "from"),
            ({"org_id": "x", "to": "2026-01\n"}, "to"),
            ({"org_id": "x" * 37}, "org_id"),
            ({}, "org_id"),
        ):
            response = await client.get(f"/v1/dashboard/{endpoint}", params=params, headers=admin)
            assert response.status_code == 422, (endpoint, params, response.text)
            error = response.json()["error"]
            assert error["code"] == "validation_error" and error["request_id"]
            assert [d["field"] for d in error["details"]] == [field]
        # An empty org_id is a valid string to FastAPI: no such org.
        empty = await client.get(f"/v1/dashboard/{endpoint}?org_id=", headers=admin)
        assert empty.status_code == 404 and empty.json()["error"]["code"] == "org_not_found"


Opener = Callable[[], AbstractAsyncContextManager[Any]]


def _counting(calls: list[str], name: str, opened: Opener) -> Opener:
    """`opened`, noting `name` when a request's code calls it (the dependencies or the
    dashboards; not the outbox relay or consumers polling meanwhile)."""

    def counted() -> AbstractAsyncContextManager[Any]:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith(("gateway.dashboards", "gonghui_shared.deps")):
            calls.append(name)
        return opened()

    return counted


async def test_a_cached_answer_opens_no_transaction_and_reads_the_version_in_autocommit(
    app: FastAPI,
    client: httpx.AsyncClient,
    feed: EventFeed,
    scenario: Scenario,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await scenario.publish(feed)
    county = scenario.orgs["C"].id
    for endpoint in ("overview", "children"):
        url = f"/v1/dashboard/{endpoint}"
        first = await client.get(url, params={"org_id": county}, headers=admin)
        assert first.status_code == 200, first.text
        runtime = app.state.runtime
        calls: list[str] = []
        for name in ("transaction", "sessions", "reading"):
            monkeypatch.setattr(runtime.db, name, _counting(calls, name, getattr(runtime.db, name)))
        monkeypatch.setattr(runtime.reads, "run", _counting_reads(calls, runtime.reads.run))
        for _ in range(3):
            again = await client.get(url, params={"org_id": county}, headers=admin)
            assert again.status_code == 200
            assert again.json() | {"generated_at": None} == first.json() | {"generated_at": None}
        # One version read per request (one at a time here), through the read pool (in
        # autocommit: `gonghui_shared.reads`), and nothing else.
        assert calls == ["read pool: source_rows"] * 3, endpoint
        monkeypatch.undo()


async def test_the_body_is_the_response_model_s(
    app: FastAPI,
    client: httpx.AsyncClient,
    feed: EventFeed,
    scenario: Scenario,
    admin: dict[str, str],
    settings: Any,
) -> None:
    await scenario.publish(feed)
    principal = app.state.runtime.verifier.verify(admin["Authorization"].split()[1])
    circle = service.Circle(minutes=15.0, speed_kmh=settings.walking_speed_kmh)
    for key in ("C", "T1", "V1"):
        org_id = scenario.orgs[key].id
        for params in ({}, {"from": "2026-04", "to": "2026-05"}):
            first, last = params.get("from"), params.get("to")
            async with app.state.runtime.db.transaction() as session:
                overview = await service.overview(session, principal, org_id, first, last, circle)
                children = await service.children(session, principal, org_id, first, last, circle)
            for endpoint, model in (("overview", overview), ("children", children)):
                for _ in range(2):  # computed, then cached
                    response = await client.get(
                        f"/v1/dashboard/{endpoint}",
                        params={"org_id": org_id, **params},
                        headers=admin,
                    )
                    assert response.status_code == 200, response.text
                    assert response.headers["content-type"] == "application/json"
                    body = response.json()
                    expected = model.model_dump(mode="json", by_alias=True)
                    assert list(body) == list(expected)
                    body.pop("generated_at"), expected.pop("generated_at")
                    assert body == expected, (key, endpoint, params)


async def test_scope_is_checked_on_every_cached_answer(
    client: httpx.AsyncClient,
    feed: EventFeed,
    scenario: Scenario,
    admin: dict[str, str],
    settings: Any,
) -> None:
    await scenario.publish(feed)
    o = scenario.orgs
    other = auth_header(token_for(settings, "county_admin", org_id=o["X"].id, org_path=o["X"].path))
    chair = auth_header(token_for(settings, "org_chair", org_id=o["T1"].id, org_path=o["T1"].path))
    for endpoint in ("overview", "children"):
        url = f"/v1/dashboard/{endpoint}"
        for key in ("C", "V1"):  # cached by the platform admin first
            assert (await client.get(url, params={"org_id": o[key].id}, headers=admin)).is_success
        for headers, key in ((other, "C"), (other, "V1"), (chair, "C")):
            denied = await client.get(url, params={"org_id": o[key].id}, headers=headers)
            assert denied.status_code == 403, (endpoint, key)
            assert denied.json()["error"]["code"] == "out_of_scope"
        mine = await client.get(url, params={"org_id": o["V1"].id}, headers=chair)
        assert mine.status_code == 200
        anonymous = await client.get(url, params={"org_id": o["V1"].id})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"


def _counting_reads(calls: list[str], run: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The read pool's `run`, noting which read it ran."""

    def counted(read: Any) -> Any:
        calls.append(f"read pool: {read.__name__}")
        return run(read)

    return counted
