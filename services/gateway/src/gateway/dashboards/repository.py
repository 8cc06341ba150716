"""Dashboard queries: the handlers' writes, and the aggregates the endpoints read.

A subtree is a range of `dash_orgs.path` (compared byte by byte, `BYTEWISE_PATH`): every path
below "/a/b/" sorts at or after it and before "/a/b0" ("0" follows "/"). Figures for several
subtrees at once (an org's children) join a `node` alias of `dash_orgs` to the orgs in its
range and group by the node: one statement however many children, each an index range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    distinct,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gateway.dashboards.models import (
    READ_MODELS,
    DashCadre,
    DashCadreTrained,
    DashCertificate,
    DashCounter,
    DashMember,
    DashMemberMove,
    DashOrg,
    DashPersonSeen,
    DashSession,
    DashSource,
    DashStation,
    DashUnit,
)
from gonghui_shared.contracts.membership import RegisteredUnit
from gonghui_shared.db import insert_ignoring_conflicts

# Which union covers a unit of each level (建会), as membership decides it.
UNION_TYPE_OF_LEVEL: dict[str, str] = {
    "county": "county_federation",
    "township": "township_union",
    "village": "village_union",
}
VILLAGE_UNION = "village_union"
ACTIVE = "active"

# Well under SQLite's bound-parameter limit.
_CHUNK = 500


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def upper_bound(path: str) -> str:
    """The first path after every path of the subtree at `path` ("/a/b/" -> "/a/b0")."""
    return path[:-1] + chr(ord(path[-1]) + 1)


def in_subtree(column: Any, path: str) -> ColumnElement[bool]:
    return and_(column >= path, column < upper_bound(path))


def covering(column: Any, first: str | None, last: str | None) -> ColumnElement[bool]:
    """The counter periods that add up to the months `first`..`last` (None: unbounded), each
    month counted once: "*" when unbounded both ways, whole years as their year rows, and
    the months of a partial first or last year as month rows."""
    if first is None and last is None:
        return column == ALL_TIME
    year_rows, month_rows = func.length(column) == 4, func.length(column) == 7
    first_full = None if first is None else int(first[:4]) + (first[5:] != "01")
    last_full = None if last is None else int(last[:4]) - (last[5:] != "12")
    parts: list[ColumnElement[bool]] = []
    if first_full is None or last_full is None or first_full <= last_full:
        years = [year_rows]
        if first_full is not None:
            years.append(column >= f"{first_full:04d}")
        if last_full is not None:
            years.append(column <= f"{last_full:04d}")
        parts.append(and_(*years))
    if first is not None and first[5:] != "01":  # the months of a partial first year
        end = f"{first[:4]}-12"
        parts.append(and_(month_rows, column >= first, column <= min(end, last or end)))
    if last is not None and last[5:] != "12":  # … of a partial last year, unless done above
        start = f"{last[:4]}-01"
        if first is None or first[:4] != last[:4] or first[5:] == "01":
            parts.append(and_(month_rows, column >= max(start, first or start), column <= last))
    return or_(*parts)


def months_only(column: Any, first: str | None, last: str | None) -> ColumnElement[bool]:
    """Month rows of the months `first`..`last`."""
    conditions = [func.length(column) == 7]
    if first is not None:
        conditions.append(column >= first)
    if last is not None:
        conditions.append(column <= last)
    return and_(*conditions)


# -- writes (the handlers) ----------------------------------------------------------------


ALL_TIME = "*"


def periods_of(month: str) -> tuple[str, str, str]:
    """The counter periods a month's change is added to: the month, its year, all time."""
    return (month, month[:4], ALL_TIME)


def rolled_up(deltas: dict[tuple[str, str, str, str], int]) -> dict[tuple[str, str, str, str], int]:
    """(org, metric, month, dimension) deltas as (org, period, metric, dimension) ones."""
    rows: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for (org_id, metric, month, dimension), value in deltas.items():
        for period in periods_of(month):
            rows[(org_id, period, metric, dimension)] += value
    return {key: value for key, value in rows.items() if value}


async def add_counts(session: AsyncSession, deltas: dict[tuple[str, str, str, str], int]) -> None:
    """Add each (org, metric, month, dimension) delta to its month's, year's and all-time
    counter, creating them at 0 first: one upsert statement."""
    if not deltas:
        return
    rows = [
        {"org_id": o, "period": p, "metric": m, "dimension": d, "value": v}
        for (o, p, m, d), v in sorted(rolled_up(deltas).items())  # one order: no deadlocks
    ]
    if not rows:
        return
    statement = _insert(session, DashCounter)
    statement = statement.on_conflict_do_update(
        index_elements=["org_id", "period", "metric", "dimension"],
        set_={"value": DashCounter.value + statement.excluded.value},
    )
    await session.execute(statement, rows)


async def see_person(session: AsyncSession, org_id: str, month: str, person_key: str) -> None:
    await session.execute(
        insert_ignoring_conflicts(session, DashPersonSeen),
        [{"org_id": org_id, "period": p, "person_key": person_key} for p in periods_of(month)],
    )


async def add_trained(session: AsyncSession, member_no: str, day: date) -> None:
    await session.execute(
        insert_ignoring_conflicts(session, DashCadreTrained).values(
            member_no=member_no, first_day=day
        )
    )


async def add_cadre(
    session: AsyncSession, cadre_id: str, member_no: str, org_id: str, role: str
) -> None:
    await session.execute(
        insert_ignoring_conflicts(session, DashCadre).values(
            cadre_id=cadre_id, member_no=member_no, org_id=org_id, role=role
        )
    )


async def upsert_units(
    session: AsyncSession, units: Sequence[RegisteredUnit], occurred_at: datetime
) -> None:
    """Insert or update each unit, unless a newer import has already set it."""
    rows = [
        {
            "code": u.code,
            "name": u.name,
            "level": u.level,
            "parent_code": u.parent_code,
            "lon": u.lon,
            "lat": u.lat,
            "last_event_at": occurred_at,
        }
        for u in units
    ]
    for start in range(0, len(rows), _CHUNK):
        statement = _insert(session, DashUnit)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["code"],
            set_={
                c: excluded[c]
                for c in ("name", "level", "parent_code", "lon", "lat", "last_event_at")
            },
            where=DashUnit.last_event_at <= excluded.last_event_at,
        )
        await session.execute(statement, rows[start : start + _CHUNK])


async def touch_source(session: AsyncSession, source: str, occurred_at: datetime) -> None:
    statement = _insert(session, DashSource).values(
        source=source, last_event_at=occurred_at, applied_at=datetime.now(UTC), events_applied=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["source"],
        set_={
            "last_event_at": statement.excluded.last_event_at,
            "applied_at": statement.excluded.applied_at,
            "events_applied": DashSource.events_applied + 1,
        },
    )
    await session.execute(statement)


async def member_for_update(session: AsyncSession, member_no: str) -> DashMember | None:
    return await session.get(DashMember, member_no, with_for_update=True)


async def member_moves(session: AsyncSession, member_no: str) -> list[DashMemberMove]:
    rows = await session.scalars(
        select(DashMemberMove).where(DashMemberMove.member_no == member_no)
    )
    return list(rows)


async def session_for_update(session: AsyncSession, session_id: str) -> DashSession | None:
    return await session.get(DashSession, session_id, with_for_update=True)


async def certificate_for_update(
    session: AsyncSession, certificate_id: str
) -> DashCertificate | None:
    return await session.get(DashCertificate, certificate_id, with_for_update=True)


async def station_for_update(session: AsyncSession, station_id: str) -> DashStation | None:
    return await session.get(DashStation, station_id, with_for_update=True)


async def empty_read_models(session: AsyncSession) -> None:
    """Delete every read-model row (the rebuild's first step)."""
    for model in READ_MODELS:
        await session.execute(delete(model))


# -- reads --------------------------------------------------------------------------------


async def get_org(session: AsyncSession, org_id: str) -> DashOrg | None:
    return await session.get(DashOrg, org_id)


async def children_of(session: AsyncSession, org_id: str) -> list[DashOrg]:
    rows = await session.scalars(select(DashOrg).where(DashOrg.parent_id == org_id))
    # Sorted here, not by the database: the same order (code points) whatever its collation.
    return sorted(rows, key=lambda org: (org.name, org.id))


@dataclass(frozen=True)
class Nodes:
    """The subtrees asked for: one org (`org_id`), or the children of one (`parent_id`)."""

    org_id: str | None = None
    parent_id: str | None = None


# Built once: ORM aliases are costly to make, and reusing them keeps SQLAlchemy's cache warm.
_NODE = aliased(DashOrg, name="node")
_ORG = aliased(DashOrg, name="o")
_INSIDE = and_(
    _ORG.path >= _NODE.path,
    _ORG.path < func.substr(_NODE.path, 1, func.length(_NODE.path) - 1).concat("0"),
)


def _node_join(nodes: Nodes) -> tuple[Any, Any, ColumnElement[bool], ColumnElement[bool]]:
    """(node, org) aliases, which nodes, and "org in node's subtree"."""
    which = (
        _NODE.id == nodes.org_id if nodes.org_id is not None else _NODE.parent_id == nodes.parent_id
    )
    return _NODE, _ORG, which, _INSIDE


async def counter_sums(
    session: AsyncSession, nodes: Nodes, first: str | None, last: str | None, stock: set[str]
) -> Sequence[Any]:
    """(node_id, metric, dimension, sum) per node: the metrics in `stock` summed up to
    `last` (how things stood then), the others over the months `first`..`last`."""
    node, org, which, inside = _node_join(nodes)
    counter = DashCounter
    if first is None:  # flows and stocks alike: everything up to `last`
        wanted = covering(counter.period, None, last)
    else:
        is_stock = counter.metric.in_(sorted(stock))
        wanted = or_(
            and_(is_stock, covering(counter.period, None, last)),
            and_(~is_stock, covering(counter.period, first, last)),
        )
    query = (
        select(node.id, counter.metric, counter.dimension, func.sum(counter.value))
        .select_from(node)
        .join(org, inside)
        .join(counter, counter.org_id == org.id)
        .where(which, wanted)
        .group_by(node.id, counter.metric, counter.dimension)
    )
    return (await session.execute(query)).all()


async def monthly_counter_by_node(
    session: AsyncSession, nodes: Nodes, metric: str, first: str | None, last: str | None
) -> dict[str, dict[str, int]]:
    """One metric's sum per node and month of the period."""
    node, org, which, inside = _node_join(nodes)
    query = (
        select(node.id, DashCounter.period, func.sum(DashCounter.value))
        .select_from(node)
        .join(org, inside)
        .join(DashCounter, DashCounter.org_id == org.id)
        .where(which, DashCounter.metric == metric, months_only(DashCounter.period, first, last))
        .group_by(node.id, DashCounter.period)
    )
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for node_id, month, value in await session.execute(query):
        found[node_id][month] = int(value)
    return found


async def unique_persons(
    session: AsyncSession, nodes: Nodes, first: str | None, last: str | None
) -> dict[str, int]:
    """Distinct person_key per node over its subtree and the months of the period."""
    node, org, which, inside = _node_join(nodes)
    seen = DashPersonSeen
    query = (
        select(node.id, func.count(distinct(seen.person_key)))
        .select_from(node)
        .join(org, inside)
        .join(seen, seen.org_id == org.id)
        .where(which, covering(seen.period, first, last))
        .group_by(node.id)
    )
    return {node_id: int(n) for node_id, n in await session.execute(query)}


async def cadres(session: AsyncSession, nodes: Nodes) -> dict[str, tuple[int, int]]:
    """(cadres, trained) per node: distinct members holding a post, and those trained."""
    node, org, which, inside = _node_join(nodes)
    trained = DashCadreTrained
    query = (
        select(
            node.id,
            func.count(distinct(DashCadre.member_no)),
            func.count(distinct(trained.member_no)),
        )
        .select_from(node)
        .join(org, inside)
        .join(DashCadre, DashCadre.org_id == org.id)
        .outerjoin(trained, trained.member_no == DashCadre.member_no)
        .where(which)
        .group_by(node.id)
    )
    return {node_id: (int(c), int(t)) for node_id, c, t in await session.execute(query)}


async def station_counts(session: AsyncSession, nodes: Nodes) -> Sequence[Any]:
    """(node_id, station_type, status, count) of the stations hosted in each subtree."""
    node, org, which, inside = _node_join(nodes)
    query = (
        select(node.id, DashStation.station_type, DashStation.status, func.count())
        .select_from(node)
        .join(org, inside)
        .join(DashStation, DashStation.host_org_id == org.id)
        .where(which)
        .group_by(node.id, DashStation.station_type, DashStation.status)
    )
    return (await session.execute(query)).all()


async def villages(session: AsyncSession, nodes: Nodes) -> Sequence[Any]:
    """(node_id, id, name, region_code, lon, lat) of the active village/community unions in
    each subtree."""
    node, org, which, inside = _node_join(nodes)
    query = (
        select(
            node.id.label("node_id"),
            org.id.label("id"),
            org.name,
            org.region_code,
            org.lon,
            org.lat,
        )
        .select_from(node)
        .join(org, inside)
        .where(which, org.org_type == VILLAGE_UNION, org.status == ACTIVE)
        .order_by(org.region_code, org.name, org.id)
    )
    return (await session.execute(query)).all()


async def active_stations_near(
    session: AsyncSession, points: Iterable[tuple[float, float]], margin_deg: float
) -> list[tuple[float, float]]:
    """(lon, lat) of the active stations in the box around `points`, widened by `margin_deg`."""
    points = list(points)
    if not points:
        return []
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    query = select(DashStation.lon, DashStation.lat).where(
        DashStation.status == ACTIVE,
        DashStation.lat.between(min(lats) - margin_deg, max(lats) + margin_deg),
        DashStation.lon.between(min(lons) - margin_deg * 2, max(lons) + margin_deg * 2),
    )
    return [(lon, lat) for lon, lat in await session.execute(query)]


async def stations_in(session: AsyncSession, path: str) -> list[DashStation]:
    """Every station hosted in the subtree, any status."""
    query = (
        select(DashStation)
        .join(DashOrg, DashOrg.id == DashStation.host_org_id)
        .where(in_subtree(DashOrg.path, path))
    )
    return sorted(await session.scalars(query), key=lambda st: (st.name, st.station_id))


def _prefix_range(prefix: str) -> ColumnElement[bool]:
    return DashUnit.code.between(prefix.ljust(12, "0"), prefix.ljust(12, "9"))


async def units_with_cover(
    session: AsyncSession, prefixes: Iterable[str], levels: Iterable[str]
) -> Sequence[Any]:
    """(code, level, parent_code, covered) of the units of `levels` inside any of `prefixes`.

    Covered: an active union of the matching territorial type has the unit's code as its
    region code; membership's own rule (`membership.units.repository._covered`).
    """
    prefixes = sorted(set(prefixes))
    if not prefixes:
        return []
    covered = (
        exists()
        .where(
            DashOrg.region_code == DashUnit.code,
            DashOrg.org_type == case(UNION_TYPE_OF_LEVEL, value=DashUnit.level),
            DashOrg.status == ACTIVE,
        )
        .correlate(DashUnit)
    )
    query = select(
        DashUnit.code, DashUnit.level, DashUnit.parent_code, covered.label("covered")
    ).where(or_(*(_prefix_range(p) for p in prefixes)), DashUnit.level.in_(list(levels)))
    return (await session.execute(query)).all()


async def sources(session: AsyncSession) -> dict[str, DashSource]:
    return {row.source: row for row in await session.scalars(select(DashSource))}


async def monthly_counter(
    session: AsyncSession,
    path: str,
    metric: str,
    dimension_prefix: str | None,
    last: str | None,
) -> dict[str, int]:
    """Sum of one metric per month over the subtree (all months up to `last`)."""
    query = (
        select(DashCounter.period, func.sum(DashCounter.value))
        .join(DashOrg, DashOrg.id == DashCounter.org_id)
        .where(
            in_subtree(DashOrg.path, path),
            DashCounter.metric == metric,
            months_only(DashCounter.period, None, last),
        )
        .group_by(DashCounter.period)
    )
    if dimension_prefix is not None:
        query = query.where(DashCounter.dimension.startswith(dimension_prefix, autoescape=True))
    return {month: int(n) for month, n in await session.execute(query)}


async def monthly_unique_persons(
    session: AsyncSession, path: str, first: str | None, last: str | None
) -> dict[str, int]:
    seen = DashPersonSeen
    query = (
        select(seen.period, func.count(distinct(seen.person_key)))
        .join(DashOrg, DashOrg.id == seen.org_id)
        .where(in_subtree(DashOrg.path, path), months_only(seen.period, first, last))
        .group_by(seen.period)
    )
    return {month: int(n) for month, n in await session.execute(query)}
