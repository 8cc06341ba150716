"""`POST /v1/members/lookup`: the gateway finds the members behind a phone number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, select
from sqlalchemy import table as sa_table
from sqlalchemy.ext.asyncio import AsyncConnection

from gonghui_shared.db import Database
from gonghui_shared.permissions import Action, Role
from gonghui_shared.runtime import load_pii_cipher
from gonghui_shared.testing import downgrade, migrate, migrated_database
from membership.admissions.models import Application, Roster
from membership.members.models import Member
from membership.orgs.models import Org
from membership.testing import Api

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def gateway(api: Api) -> dict[str, str]:
    """The token the gateway mints for itself: platform scope, this one action only."""
    return api.headers(Role.platform_admin, subject="gateway", scopes=[Action.members_lookup])


async def lookup(api: Api, phone: str, as_: dict[str, str] | None = None) -> list[Any]:
    body = await api.ok(
        "POST", "/v1/members/lookup", as_=as_ or gateway(api), json={"phone": phone}
    )
    return list(body["members"])


async def test_active_members_are_found_by_phone_in_any_spelling(api: Api) -> None:
    county, _, village = await api.tree()
    alone = (await api.member(county, village, phone="13800138011"))["member"]
    # Two members of one family share a phone: both are returned, oldest first.
    first = (await api.member(county, village, phone="13800138022"))["member"]
    second = (await api.member(county, village, phone="+86 138-0013-8022"))["member"]

    found = await lookup(api, "+8613800138011")
    assert found == [
        {"member_no": alone["member_no"], "org_id": village["id"], "joined_on": alone["joined_on"]}
    ]
    shared = await lookup(api, "138 0013 8022")
    assert [m["member_no"] for m in shared] == [first["member_no"], second["member_no"]]
    assert await lookup(api, "13800138099") == []


async def test_an_ended_membership_is_not_found(api: Api) -> None:
    county, _, village = await api.tree()
    member = (await api.member(county, village, phone="13800138033"))["member"]
    await api.ok(
        "POST",
        f"/v1/members/{member['member_no']}/withdraw",
        as_=api.headers(Role.county_admin, county),
        json={"reason": "本人申请退会"},
    )
    assert await lookup(api, "13800138033") == []


async def test_only_the_platform_may_look_up_and_the_scoped_token_does_nothing_else(
    api: Api,
) -> None:
    county, _, village = await api.tree()
    await api.member(county, village, phone="13800138044")
    for role, org in ((Role.county_admin, county), (Role.org_chair, village)):
        denied = await api.client.post(
            "/v1/members/lookup", headers=api.headers(role, org), json={"phone": "13800138044"}
        )
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "forbidden"
    listing = await api.client.get("/v1/members", headers=gateway(api))
    assert listing.status_code == 403 and "scopes" in listing.json()["error"]["message"]
    bad = await api.client.post(
        "/v1/members/lookup", headers=gateway(api), json={"phone": "not a phone"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"] == {"field": "phone"}


async def test_the_migration_fills_the_hash_of_existing_rows(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    county, _, village = await api.tree()
    await api.member(county, village, phone="13800138055")
    # A scratch database at the schema before the column, holding copies of these rows.
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(api.settings.data_dir))  # the same dev keys
    async for url in migrated_database("sqlite", ALEMBIC_INI, tmp_path, "backfill"):
        await downgrade(ALEMBIC_INI, url, "1a81355dc879")
        scratch = Database(url)
        try:
            async with scratch.engine.begin() as conn:
                await _copy_rows(api, conn)
            await migrate(ALEMBIC_INI, url)
            async with scratch.sessions() as session:
                members = (await session.scalars(select(Member.phone_hash))).all()
                applications = (await session.scalars(select(Application.phone_hash))).all()
        finally:
            await scratch.dispose()
    expected = load_pii_cipher(api.settings).lookup_hash("+8613800138055")
    assert members == applications == [expected]


async def _copy_rows(api: Api, conn: AsyncConnection) -> None:
    """Copy the service's rows, all but the new column, into a database without it."""
    source: Database = api.client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with source.sessions() as session:
        for model in (Org, Roster, Application, Member):
            table = model.__table__
            columns = [c for c in table.columns if c.name != "phone_hash"]
            rows = (await session.execute(select(*columns).order_by(table.c.id))).mappings()
            values = [dict(row) for row in rows]
            assert values, f"no {table.name} to copy"
            await conn.execute(
                sa_table(table.name, *(column(c.name) for c in columns)).insert(), values
            )
