"""What the handlers keep besides the entities: each village's nearest station (the
15-minute circle) and the counters per subtree. Kept from events, they must equal what a
computation from scratch over the same read model gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from gateway.dashboards import coverage, repository
from gateway.dashboards.models import DashSubtreeCounter, DashVillageCover
from gateway.dashboards.testing import EventFeed, Scenario
from gonghui_shared.contracts import membership as m
from gonghui_shared.contracts import stations as s
from gonghui_shared.ids import new_id

# A village in 凤庆县, and places at known distances north of it (1° of latitude is
# 111,195 m on the sphere stations measures on).
VILLAGE = (99.9286, 24.5803)
METRES_PER_DEGREE = coverage.METRES_PER_DEGREE_LAT


def north(metres: float) -> tuple[float, float]:
    return VILLAGE[0], VILLAGE[1] + metres / METRES_PER_DEGREE


class Place:
    """One county → township → village, announced through the feed."""

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed
        self.at = datetime(2026, 3, 1, tzinfo=UTC)
        self.county, self.township, self.village = new_id(), new_id(), new_id()
        self.paths = {
            self.county: f"/{self.county}/",
            self.township: f"/{self.county}/{self.township}/",
            self.village: f"/{self.county}/{self.township}/{self.village}/",
        }

    def tick(self) -> datetime:
        self.at += timedelta(hours=1)
        return self.at

    async def org(self, org_id: str, org_type: str, lon: float | None = None) -> None:
        parent = self.paths[org_id].rstrip("/").split("/")[-2] or None
        await self.feed.publish(
            m.OrgCreated(
                org_id=org_id,
                parent_id=parent,
                path=self.paths[org_id],
                org_type=org_type,
                name=org_type,
                region_code="",
                lon=lon,
                lat=VILLAGE[1] if lon is not None else None,
            ),
            aggregate_id=org_id,
            org_path=self.paths[org_id],
            occurred_at=self.tick(),
        )

    async def tree(self) -> None:
        await self.org(self.county, "county_federation")
        await self.org(self.township, "township_union")
        await self.org(self.village, "village_union", VILLAGE[0])

    async def station(self, event: Any) -> None:
        await self.feed.publish(
            event,
            aggregate_id=event.station_id,
            org_path=self.paths[self.township],
            occurred_at=self.tick(),
        )
        await self.feed.synced()


async def circle(client: httpx.AsyncClient, headers: dict[str, str], org_id: str) -> Any:
    response = await client.get(
        "/v1/dashboard/overview", params={"org_id": org_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["figures"]["stations"]


async def nearest(client: httpx.AsyncClient, headers: dict[str, str], place: Place) -> Any:
    response = await client.get(
        "/v1/dashboard/map", params={"org_id": place.county}, headers=headers
    )
    assert response.status_code == 200, response.text
    (village,) = response.json()["villages"]
    return village["covered"], village["nearest_station_m"]


async def test_a_station_opened_moved_and_closed_near_a_village(
    client: httpx.AsyncClient, feed: EventFeed, admin: dict[str, str]
) -> None:
    place = Place(feed)
    await place.tree()
    await feed.synced()
    assert (await circle(client, admin, place.county))["circle"]["covered"] == 0
    assert await nearest(client, admin, place) == (False, None)

    station = new_id()
    lon, lat = north(800)
    await place.station(
        s.StationOpened(
            station_id=station,
            station_type="village_service_point",
            name="驿站",
            host_org_id=place.township,
            lon=lon,
            lat=lat,
            amenities=[],
        )
    )
    figures = await circle(client, admin, place.county)
    assert figures["circle"]["covered"] == 1 and figures["circle"]["rate"] == 1.0
    assert figures["active"] == 1
    covered, metres = await nearest(client, admin, place)
    assert covered is True and abs(metres - 800) < 0.5

    # Moved 3 km away: outside the circle, still the nearest station on the map.
    lon, lat = north(3000)
    await place.station(
        s.StationUpdated(
            station_id=station,
            host_org_id=place.township,
            changed=["lon", "lat"],
            lon=lon,
            lat=lat,
            amenities=[],
        )
    )
    assert (await circle(client, admin, place.county))["circle"]["covered"] == 0
    covered, metres = await nearest(client, admin, place)
    assert covered is False and abs(metres - 3000) < 0.5

    # Back within the circle, then closed: a closed station covers nobody.
    lon, lat = north(1000)
    await place.station(
        s.StationUpdated(
            station_id=station,
            host_org_id=place.township,
            changed=["lon", "lat"],
            lon=lon,
            lat=lat,
            amenities=[],
        )
    )
    assert (await circle(client, admin, place.county))["circle"]["covered"] == 1
    await place.station(
        s.StationClosed(
            station_id=station, host_org_id=place.township, station_type="village_service_point"
        )
    )
    figures = await circle(client, admin, place.county)
    assert figures["circle"]["covered"] == 0 and figures["active"] == 0
    assert figures["total"] == 1
    assert await nearest(client, admin, place) == (False, None)


async def test_a_village_announced_after_its_station(
    client: httpx.AsyncClient, feed: EventFeed, admin: dict[str, str]
) -> None:
    place = Place(feed)
    lon, lat = north(500)
    await place.station(
        s.StationOpened(
            station_id=new_id(),
            station_type="worker_home",
            name="职工之家",
            host_org_id=place.village,
            lon=lon,
            lat=lat,
            amenities=[],
        )
    )
    await place.tree()  # the station and its counts were there before any org
    await feed.synced()
    figures = await circle(client, admin, place.county)
    counts = [figures["circle"][k] for k in ("units_total", "units_located", "covered")]
    assert counts == [1, 1, 1]
    assert figures["total"] == 1  # the village's station counts for the county


async def derived(app: FastAPI) -> tuple[dict[Any, int], dict[str, Any]]:
    """The subtree counters (zeros left out) and the villages' nearest distances."""
    async with app.state.runtime.db.sessions() as session:
        subtree = {
            (r.node_id, r.period, r.metric, r.dimension): r.value
            for r in await session.scalars(select(DashSubtreeCounter))
            if r.value
        }
        cover = {
            r.org_id: (r.cell, r.nearest_m) for r in await session.scalars(select(DashVillageCover))
        }
    return subtree, cover


async def test_rollups_kept_from_events_equal_a_rebuild(
    app: FastAPI, feed: EventFeed, scenario: Scenario
) -> None:
    # Newest first and twice: orgs announced after what they count, stations moved before
    # they open; whatever the order, the incremental rollups are what a rebuild derives.
    await scenario.publish(feed, reverse=True, twice=True)
    incremental = await derived(app)
    assert incremental[0] and incremental[1]
    assert any(covered is not None for _, covered in incremental[1].values())

    async with app.state.runtime.db.transaction() as session:
        await repository.rebuild_derived(session)
    assert await derived(app) == incremental
