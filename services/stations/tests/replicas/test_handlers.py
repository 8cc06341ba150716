"""Stations' replica of membership's orgs keeps their locations (for the 15-minute circle)."""

from __future__ import annotations

from fastapi import FastAPI

from gonghui_shared.contracts.membership import OrgCreated
from gonghui_shared.ids import new_id
from gonghui_shared.testing.feed import MembershipFeed
from stations.replicas.models import MemberReplica, OrgReplica


async def test_orgs_with_locations_and_members_arrive(app: FastAPI, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    village_id = new_id()
    path = f"{county['path']}{village_id}/"
    await feed.publish(
        OrgCreated(
            org_id=village_id,
            parent_id=county["id"],
            path=path,
            org_type="village_union",
            name="京竹林村工会委员会",
            region_code="530921101201",
            lon=99.93,
            lat=24.58,
        ),
        aggregate_id=village_id,
        org_path=path,
    )
    member_no = await feed.member({"id": village_id, "path": path, "region_code": "530921101201"})
    async with app.state.runtime.db.sessions() as session:
        village = await session.get(OrgReplica, village_id)
        member = await session.get(MemberReplica, member_no)
    assert (village.lon, village.lat) == (99.93, 24.58)
    assert member.org_path == path and member.status == "active"
