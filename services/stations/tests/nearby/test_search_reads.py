"""How searches read on PostgreSQL (asyncpg on a pool of their own) and how the route reads and
documents its query (one model instead of FastAPI's per-parameter handling)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from gonghui_shared.errors import is_database_outage
from gonghui_shared.ids import new_id
from gonghui_shared.reads import Reader, ReadPool
from gonghui_shared.testing import count_dependency_solving
from stations.nearby import service as nearby
from stations.testing import Api, insert_stations, point_at, station_values

CENTRE = (115.8582, 28.6829)  # Nanchang
HOST = {"id": new_id(), "path": f"/{new_id()}/"}


def _postgres_only(app: FastAPI) -> ReadPool:
    if app.state.runtime.db.dialect != "postgresql":
        pytest.skip("on SQLite searches read through the service's own engine")
    reads: ReadPool = app.state.runtime.reads
    return reads


async def test_a_search_whose_connection_the_server_ends_runs_again(app: FastAPI, api: Api) -> None:
    """The server ends the search's session (as at a restart, 57P01): the search runs again on
    a fresh connection and answers; the caller never sees the disconnect. (`api`: the
    stations table starts empty.)"""
    reads = _postgres_only(app)
    row = station_values(
        *point_at(*CENTRE, 0, 100), host_org_id=HOST["id"], host_org_path=HOST["path"]
    )
    await insert_stations(app.state.runtime, [row])
    sessions: list[int] = []

    async def search(conn: Reader) -> dict[str, Any]:
        sessions.append(await conn.fetchval("SELECT pg_backend_pid()"))
        if len(sessions) == 1:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return await nearby.search(conn, lon=CENTRE[0], lat=CENTRE[1])

    page = await reads.run(search)

    assert [item["id"] for item in page["items"]] == [row["id"]]
    assert len(sessions) == 2 and sessions[0] != sessions[1]


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        # The database is full: the client may retry.
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        # A mistake in the statement is a bug, not an outage.
        (asyncpg.PostgresSyntaxError("syntax error at or near"), False),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), True),
    ],
)
async def test_driver_errors_reach_the_handlers_as_sqlalchemy_reports_them(
    app: FastAPI, error: Exception, outage: bool
) -> None:
    """The shared handlers answer 503 `database_unavailable` to an outage: they know
    SQLAlchemy's errors, so the driver's come out as those, sqlstate kept."""
    reads = _postgres_only(app)

    async def search(conn: Reader) -> None:
        raise error

    with pytest.raises(sa_exc.DBAPIError) as raised:
        await reads.run(search)
    assert raised.value.orig is error
    assert is_database_outage(raised.value) is outage


async def test_the_route_documents_the_query_it_reads(app: FastAPI) -> None:
    """The query is read as one model, not declared to FastAPI parameter by parameter: the
    OpenAPI document still lists every parameter, with its name, limits and description."""
    operation = app.openapi()["paths"]["/v1/stations/nearby"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}

    assert list(parameters) == [
        "lon",
        "lat",
        "crs",
        "minutes",
        "radius_m",
        "amenity",
        "open_now",
        "at",
        "type",
        "limit",
        "cursor",
    ]
    assert all(p["in"] == "query" for p in parameters.values())
    assert [n for n, p in parameters.items() if p["required"]] == ["lon", "lat"]
    assert (
        parameters["lon"]["schema"] | {"minimum": -180, "maximum": 180}
        == (parameters["lon"]["schema"])
    )
    assert parameters["amenity"]["schema"]["type"] == "array"
    assert parameters["limit"]["description"] == "items per page"
    schemas = app.openapi()["components"]["schemas"]
    assert parameters["crs"]["schema"]["$ref"].rsplit("/", 1)[1] in schemas
    assert parameters["type"]["schema"]["anyOf"][0]["$ref"].rsplit("/", 1)[1] in schemas


async def test_repeated_and_unknown_query_parameters_are_read_as_before(
    app: FastAPI, api: Api
) -> None:
    """As FastAPI read a declared parameter: a repeated one counts by its last value, a
    repeated amenity adds up, and a parameter the route does not know is ignored."""
    rows = [
        station_values(
            *point_at(*CENTRE, 90, distance),
            host_org_id=HOST["id"],
            host_org_path=HOST["path"],
            amenities=amenities,
        )
        for distance, amenities in [
            (100, ["drinking_water"]),
            (200, ["drinking_water", "wifi"]),
            (900, ["wifi"]),
        ]
    ]
    await insert_stations(app.state.runtime, rows)
    query = f"lon={CENTRE[0]}&lat={CENTRE[1]}&minutes=1&minutes=15&amenity=wifi&sort=name"

    page = await api.ok("GET", f"/v1/stations/nearby?{query}")
    both = await api.ok("GET", f"/v1/stations/nearby?{query}&amenity=drinking_water")

    assert page["minutes"] == 15
    assert [i["id"] for i in page["items"]] == [rows[1]["id"], rows[2]["id"]]
    assert [i["id"] for i in both["items"]] == [rows[1]["id"]]


async def test_a_valid_search_is_served_without_fastapi_s_dependency_solving(
    app: FastAPI, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`NearbyRoute` answers a search whose query is valid ahead of FastAPI; a query it
    cannot read goes through FastAPI, which refuses it (422, naming the field) as before,
    and the caller is still required on the fast path."""
    row = station_values(
        *point_at(*CENTRE, 0, 100),
        host_org_id=HOST["id"],
        host_org_path=HOST["path"],
        amenities=["drinking_water"],
    )
    await insert_stations(app.state.runtime, [row])
    solved = count_dependency_solving(monkeypatch)
    query = {"lon": CENTRE[0], "lat": CENTRE[1], "amenity": "drinking_water", "minutes": 15}

    page = await api.ok("GET", "/v1/stations/nearby", params=query)
    assert [item["id"] for item in page["items"]] == [row["id"]]
    assert solved == []
    anonymous = await api.client.get("/v1/stations/nearby", params=query)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["request_id"]
    assert solved == []

    refused = await api.ok("GET", "/v1/stations/nearby", params=query | {"lat": 91}, expect=422)
    assert [d["field"] for d in refused["error"]["details"]] == ["lat"]
    assert solved == ["/v1/stations/nearby"]
