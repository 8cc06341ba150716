"""Station queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from stations.stations.models import Station


async def get(
    session: AsyncSession, station_id: str, *, for_update: bool = False
) -> Station | None:
    return await session.get(Station, station_id, with_for_update=for_update)


async def list_stations(
    session: AsyncSession,
    *,
    within_path: str | None,
    station_type: str | None,
    status: str | None,
    amenities: Sequence[str],
    region_prefix: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Station]:
    query = select(Station)
    if within_path:
        query = query.where(Station.host_org_path.startswith(within_path, autoescape=True))
    if station_type:
        query = query.where(Station.station_type == station_type)
    if status:
        query = query.where(Station.status == status)
    for code in amenities:
        # The JSON array as text, on both backends: '["drinking_water", "toilets"]'. Codes come
        # from the vocabulary (validated before this), so the quoted code matches one element
        # exactly and never a part of another.
        query = query.where(cast(Station.amenities, String).contains(f'"{code}"', autoescape=True))
    if region_prefix:
        query = query.where(Station.region_code.startswith(region_prefix, autoescape=True))
    return (await session.scalars(paginate(query, Station.id, cursor, limit))).all()
