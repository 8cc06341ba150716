"""Administrative unit and coverage queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.pagination import paginate
from membership.orgs.models import Org, OrgStatus, OrgType
from membership.units.models import AdminUnit
from membership.units.statistical_codes import COUNTY, TOWNSHIP, VILLAGE

# Which union covers a unit of each level (建会): the territorial org types.
UNION_TYPE_OF_LEVEL: dict[str, str] = {
    COUNTY: OrgType.county_federation.value,
    TOWNSHIP: OrgType.township_union.value,
    VILLAGE: OrgType.village_union.value,
}

# Well under SQLite's bound-parameter limit.
_CHUNK = 500


async def get(session: AsyncSession, code: str) -> AdminUnit | None:
    return await session.get(AdminUnit, code)


async def known(
    session: AsyncSession, codes: Sequence[str]
) -> dict[str, Row[tuple[str, str, str | None, float | None, float | None]]]:
    """The stored updatable columns of those of `codes` that exist, by code."""
    found: dict[str, Row[tuple[str, str, str | None, float | None, float | None]]] = {}
    for start in range(0, len(codes), _CHUNK):
        rows = await session.execute(
            select(
                AdminUnit.code,
                AdminUnit.name,
                AdminUnit.urban_rural_code,
                AdminUnit.lon,
                AdminUnit.lat,
            ).where(AdminUnit.code.in_(codes[start : start + _CHUNK]))
        )
        found.update({row.code: row for row in rows})
    return found


async def insert_units(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        await session.execute(insert(AdminUnit), rows[start : start + _CHUNK])


async def update_units(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Update by primary key (`code` in each row), in batches."""
    for start in range(0, len(rows), _CHUNK):
        await session.execute(update(AdminUnit), rows[start : start + _CHUNK])


async def list_units(
    session: AsyncSession,
    *,
    parent_code: str | None,
    level: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[AdminUnit]:
    query = select(AdminUnit)
    if parent_code:
        query = query.where(AdminUnit.parent_code == parent_code)
    if level:
        query = query.where(AdminUnit.level == level)
    if q:
        query = query.where(AdminUnit.name.contains(q, autoescape=True))
    # Codes are unique, fixed-width and never change: keyset pagination works on them as on ids.
    return (await session.scalars(paginate(query, AdminUnit.code, cursor, limit))).all()


def _inside(prefix: str) -> ColumnElement[bool]:
    # A range on the primary key rather than LIKE: PostgreSQL can use the index for
    # it whatever the collation, and every code has exactly 12 digits.
    return AdminUnit.code.between(prefix.ljust(12, "0"), prefix.ljust(12, "9"))


def _covered() -> ColumnElement[bool]:
    """True for a unit that an active union of the matching type is attached to."""
    return (
        exists()
        .where(
            Org.region_code == AdminUnit.code,
            Org.org_type == case(UNION_TYPE_OF_LEVEL, value=AdminUnit.level),
            Org.status == OrgStatus.active.value,
        )
        .correlate(AdminUnit)
    )


def _counts() -> tuple[Any, Any]:
    return func.count(), func.coalesce(func.sum(case((_covered(), 1), else_=0)), 0)


async def coverage_by_level(
    session: AsyncSession, prefix: str, levels: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """(total, covered) per level, for the units of `levels` inside the region `prefix`."""
    total, covered = _counts()
    rows = await session.execute(
        select(AdminUnit.level, total, covered)
        .where(_inside(prefix), AdminUnit.level.in_(list(levels)))
        .group_by(AdminUnit.level)
    )
    return {level: (int(t), int(c)) for level, t, c in rows}


async def direct_coverage(session: AsyncSession, region_code: str) -> tuple[int, int]:
    """(total, covered) of the units directly under `region_code`."""
    total, covered = _counts()
    row = (
        await session.execute(select(total, covered).where(AdminUnit.parent_code == region_code))
    ).one()
    return int(row[0]), int(row[1])


async def uncovered(
    session: AsyncSession, prefix: str, levels: Iterable[str], limit: int
) -> Sequence[AdminUnit]:
    """Units of `levels` inside the region `prefix` without a union, by code."""
    query = (
        select(AdminUnit)
        .where(and_(_inside(prefix), AdminUnit.level.in_(list(levels))), ~_covered())
        .order_by(AdminUnit.code)
        .limit(limit)
    )
    return (await session.scalars(query)).all()
