"""`membership.units.registered`: an import announces its units through the outbox."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts import EventEnvelope, parse_event
from gonghui_shared.contracts.membership import UnitsRegistered
from gonghui_shared.permissions import Role
from membership.base import outbox
from membership.testing import Api
from membership.units.service import UNITS_PER_EVENT
from membership.units.statistical_codes import generate_county, write_units_csv

FENGQING = generate_county()  # 203 units: the county, 13 townships, 189 villages


async def upload(api: Api, units: Any, as_: dict[str, str] | None = None) -> Any:
    return await api.client.post(
        "/v1/units/import",
        headers=as_ or api.platform,
        files={"file": ("units.csv", write_units_csv(units), "text/csv")},
    )


async def announced(app: FastAPI) -> list[tuple[EventEnvelope, UnitsRegistered]]:
    """The units events in membership's outbox, in the order they were written."""
    async with app.state.runtime.db.sessions() as session:
        rows = await session.scalars(
            select(outbox.c.payload)
            .where(outbox.c.event_type == UnitsRegistered.type)
            .order_by(outbox.c.position)
        )
        envelopes = [EventEnvelope.model_validate(json.loads(p)) for p in rows]
    events = [parse_event(e) for e in envelopes]
    assert all(isinstance(e, UnitsRegistered) for e in events)
    return list(zip(envelopes, events, strict=True))  # type: ignore[arg-type]


async def test_import_announces_every_unit_in_chunks(api: Api, app: FastAPI) -> None:
    # Three counties: 609 units, more than one event's worth.
    units = (
        FENGQING
        + generate_county("530922000000", "云县", 12, 180)
        + generate_county("530923000000", "永德县", 12, 190, coordinates=False)
    )
    assert len(units) > UNITS_PER_EVENT
    response = await upload(api, units)
    assert response.status_code == 200, response.text

    found = await announced(app)
    expected_chunks = -(-len(units) // UNITS_PER_EVENT)
    assert len(found) == expected_chunks
    assert {e.import_id for _, e in found} == {found[0][1].import_id}
    assert [(e.chunk, e.chunks) for _, e in found] == [
        (n, expected_chunks) for n in range(1, expected_chunks + 1)
    ]
    assert all(env.aggregate_id == e.import_id for env, e in found)
    sent = [u for _, e in found for u in e.units]
    assert [u.code for u in sent] == [u.code for u in units]
    by_code = {u.code: u for u in sent}
    for unit in units:
        got = by_code[unit.code]
        assert (got.name, got.level, got.parent_code) == (unit.name, unit.level, unit.parent_code)
        assert (got.urban_rural_code, got.lon, got.lat) == (
            unit.urban_rural_code,
            unit.lon,
            unit.lat,
        )


async def test_reimport_announces_what_is_stored_and_refusals_announce_nothing(
    api: Api, app: FastAPI
) -> None:
    assert (await upload(api, FENGQING)).status_code == 200
    # Again, renamed and without coordinates: the stored positions are kept and announced.
    renamed = dataclasses.replace(FENGQING[5], name="改名村", lon=None, lat=None)
    again = [renamed if u.code == renamed.code else u for u in FENGQING]
    assert (await upload(api, again)).json()["updated"] == 1

    first, second = [e for _, e in await announced(app)]
    assert first.import_id != second.import_id
    assert len(second.units) == len(FENGQING)
    unit = next(u for u in second.units if u.code == renamed.code)
    assert (unit.name, unit.lon, unit.lat) == ("改名村", FENGQING[5].lon, FENGQING[5].lat)

    # A county admin importing another county's codes is refused: nothing is announced.
    county = await api.county()
    other = generate_county("530922000000", "云县", 2, 4)
    refused = await upload(api, other, as_=api.headers(Role.county_admin, county))
    assert refused.status_code == 403
    assert len(await announced(app)) == 2
