"""Union coverage of units (建会覆盖) on the dashboard equals membership's own coverage endpoint.

Membership runs in-process on the gateway's subject root: its real outbox relay publishes
`membership.units.registered` and the org events, the gateway consumes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from gateway.config import GatewaySettings
from gateway.dashboards.testing import EventFeed
from gonghui_shared.testing import migrated_database, truncate_all
from membership.base import outbox
from membership.config import MembershipSettings
from membership.main import create_app as create_membership_app
from membership.models import Base as MembershipBase
from membership.testing import Api
from membership.units.statistical_codes import TOWNSHIP, generate_county, write_units_csv

MEMBERSHIP_INI = Path(__file__).resolve().parents[3] / "membership" / "alembic.ini"
COUNTY = generate_county("530921000000", "凤庆县", 4, 24)


@pytest.fixture(scope="session")
async def membership_app(
    database_url: str, settings: GatewaySettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """Membership on the gateway's backend and subject root."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    folder = tmp_path_factory.mktemp("membership_for_gateway")
    async for url in migrated_database(backend, MEMBERSHIP_INI, folder, "membership_gw"):
        mine = MembershipSettings(
            database_url=url,
            nats_url=settings.nats_url,
            subject_root=settings.subject_root,
            data_dir=settings.data_dir,
            environment="test",
            outbox_poll_seconds=0.2,
        )
        app = create_membership_app(mine)
        async with app.router.lifespan_context(app):
            assert await app.state.runtime.bus.connected(10)
            yield app


@pytest.fixture
async def membership(membership_app: FastAPI) -> AsyncIterator[Api]:
    await truncate_all(membership_app.state.runtime.db, MembershipBase.metadata)
    transport = httpx.ASGITransport(app=membership_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://membership") as client:
        yield Api(client, membership_app.state.runtime.settings)


async def test_unit_coverage_equals_membership_endpoint(
    membership: Api,
    membership_app: FastAPI,
    feed: EventFeed,
    client: httpx.AsyncClient,
    admin: dict[str, str],
) -> None:
    api = membership
    # Imported twice: the second import (renamed unit, no positions) announces them again.
    csv = write_units_csv(COUNTY)
    for data in (csv, write_units_csv([dataclasses.replace(u, lon=None) for u in COUNTY])):
        response = await api.client.post(
            "/v1/units/import",
            headers=api.platform,
            files={"file": ("units.csv", data, "text/csv")},
        )
        assert response.status_code == 200, response.text
    townships = [u for u in COUNTY if u.level == TOWNSHIP]
    villages = [u for u in COUNTY if u.level == "village"]
    county = await api.county()
    orgs: dict[str, dict[str, Any]] = {COUNTY[0].code: county}
    for unit in townships[:3]:  # the fourth township has no union
        orgs[unit.code] = await api.child(county, "township_union", f"{unit.name}工会", unit.code)
    for i, unit in enumerate(villages):
        parent = orgs.get(unit.parent_code or "")
        if i % 7 == 3 or parent is None:
            continue  # a village without a union (all those of the fourth township)
        orgs[unit.code] = await api.child(parent, "village_union", f"{unit.name}工会", unit.code)
    # A dissolved union no longer covers its village; an enterprise union covers nothing.
    await api.ok("PATCH", f"/v1/orgs/{orgs[villages[0].code]['id']}", json={"status": "dissolved"})
    enterprise = await api.child(
        orgs[townships[0].code], "enterprise_union", "凤庆茶厂工会", townships[0].code
    )

    async with membership_app.state.runtime.db.sessions() as session:
        feed.published["membership"] = set(await session.scalars(select(outbox.c.event_id)))
    await feed.synced(timeout=30)

    for org in (county, orgs[townships[0].code], orgs[townships[1].code], enterprise):
        expected = await api.ok("GET", f"/v1/orgs/{org['id']}/coverage")
        response = await client.get(
            "/v1/dashboard/overview", params={"org_id": org["id"]}, headers=admin
        )
        assert response.status_code == 200, response.text
        units = response.json()["figures"]["units"]
        assert units["region_code"] == expected["region_code"]
        assert (units["direct"], units["levels"]) == (expected["direct"], expected["levels"])
    whole = await api.ok("GET", f"/v1/orgs/{county['id']}/coverage")
    # Not a vacuous comparison: some units are covered, some are not.
    village_level = whole["levels"][1]
    assert 0 < village_level["covered"] < village_level["total"] == len(villages)
    assert whole["levels"][0] == {"level": "township", "total": 4, "covered": 3, "rate": 0.75}
