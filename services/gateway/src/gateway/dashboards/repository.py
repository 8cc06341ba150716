"""Dashboard queries: the handlers' writes, and the aggregates the endpoints read.

A subtree is a range of `dash_orgs.path` (compared byte by byte, `BYTEWISE_PATH`): every path
below "/a/b/" sorts at or after it and before "/a/b0" ("0" follows "/"). Figures for several
subtrees at once (an org's children) join a `node` alias of `dash_orgs` to the orgs in its
range and group by the node: one statement however many children, each an index range.
"""

from __future__ import annotations

import hashlib
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
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gateway.dashboards import coverage
from gateway.dashboards.locks import advisory_locks
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
    DashSubtreeCounter,
    DashUnit,
    DashVillageCover,
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


Counts = dict[tuple[str, str, str, str], int]
# Station counts by type and status (`handlers.station_counts`): a stock with no history,
# kept in the all-time period only.
STATIONS = "stations"


def periods_of(month: str) -> tuple[str, ...]:
    """The counter periods a month's change is added to: the month, its year, all time
    (a change "of all time" only to that)."""
    if month == ALL_TIME:
        return (ALL_TIME,)
    return (month, month[:4], ALL_TIME)


def rolled_up(deltas: Counts) -> Counts:
    """(org, metric, month, dimension) deltas as (org, period, metric, dimension) ones."""
    rows: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for (org_id, metric, month, dimension), value in deltas.items():
        for period in periods_of(month):
            rows[(org_id, period, metric, dimension)] += value
    return {key: value for key, value in rows.items() if value}


def nodes_of(path: str) -> list[str]:
    """The orgs whose subtree holds the org at `path`: its ids, root first, itself last."""
    return [part for part in path.split("/") if part]


def by_node(rows: Counts, paths: dict[str, str], sign: int = 1) -> Counts:
    """(org, period, metric, dimension) sums as the (node, …) sums of each org's path;
    orgs without a known path count for no node yet."""
    nodes: Counts = defaultdict(int)
    for (org_id, period, metric, dimension), value in rows.items():
        path = paths.get(org_id)
        if path is not None:
            for node_id in nodes_of(path):
                nodes[(node_id, period, metric, dimension)] += sign * value
    return {key: value for key, value in nodes.items() if value}


_ORG_LOCKS = 0x6F7267  # "org": the first key of an org's advisory lock


def _org_lock(org_id: str) -> tuple[int, int]:
    """A stable 32-bit key per org id (Python's hash() differs per process)."""
    return (
        _ORG_LOCKS,
        int.from_bytes(
            hashlib.blake2b(org_id.encode(), digest_size=4).digest(), "big", signed=True
        ),
    )


async def lock_orgs(session: AsyncSession, org_ids: Iterable[str]) -> None:
    """Serialise, per org, counting for it while it is unknown and announcing it
    (`org_arrived`): otherwise a count made while the org is unknown, committed after the
    announcement read the org's counters, would never reach its subtree."""
    await advisory_locks(session, (_org_lock(org_id) for org_id in org_ids))


async def _paths(session: AsyncSession, org_ids: Iterable[str]) -> dict[str, str]:
    """The known orgs' paths, each row locked against a change of path (FOR KEY SHARE
    waits for the replica handler's FOR UPDATE) until this transaction ends."""
    query = (
        select(DashOrg.id, DashOrg.path)
        .where(DashOrg.id.in_(sorted(set(org_ids))))
        .with_for_update(key_share=True)
    )
    return {org_id: path for org_id, path in await session.execute(query)}


async def _add_rows(session: AsyncSession, model: Any, key: str, rows: Counts) -> None:
    """Add (key, period, metric, dimension) values, creating rows at 0: one upsert."""
    if not rows:
        return
    statement = _insert(session, model)
    statement = statement.on_conflict_do_update(
        index_elements=[key, "period", "metric", "dimension"],
        set_={"value": model.value + statement.excluded.value},
    )
    await session.execute(
        statement,
        [
            {key: k, "period": p, "metric": m, "dimension": d, "value": v}
            for (k, p, m, d), v in sorted(rows.items())  # one order: no deadlocks
        ],
    )


async def add_counts(session: AsyncSession, deltas: Counts) -> None:
    """Add each (org, metric, month, dimension) delta to its month's, year's and all-time
    counter of the org and of every org above it: two upserts (and the orgs' paths)."""
    rows = rolled_up(deltas)
    if not rows:
        return
    orgs = {org_id for org_id, _, _, _ in rows}
    paths = await _paths(session, orgs)
    if unknown := orgs - paths.keys():  # wait for an announcement under way, if any
        await lock_orgs(session, unknown)
        paths.update(await _paths(session, unknown))
    await _add_rows(session, DashCounter, "org_id", rows)
    await _add_rows(session, DashSubtreeCounter, "node_id", by_node(rows, paths))


async def org_arrived(
    session: AsyncSession, org_id: str, old_path: str | None, new_path: str | None
) -> None:
    """An org was announced (or its path changed): its counters leave the nodes of the
    old path and join those of the new one. The caller holds `lock_orgs([org_id])`."""
    if old_path == new_path:
        return
    query = select(
        DashCounter.period, DashCounter.metric, DashCounter.dimension, DashCounter.value
    ).where(DashCounter.org_id == org_id)
    rows = {(org_id, p, m, d): v for p, m, d, v in await session.execute(query) if v}
    moved: Counts = defaultdict(int)
    for path, sign in ((old_path, -1), (new_path, 1)):
        if path is not None:
            for key, value in by_node(rows, {org_id: path}, sign).items():
                moved[key] += value
    await _add_rows(session, DashSubtreeCounter, "node_id", {k: v for k, v in moved.items() if v})


async def rebuild_derived(session: AsyncSession) -> None:
    """Derive from the entity rows what the handlers keep besides them, as they would have:
    the station counters, every subtree counter, the 15-minute circle. For a read model
    loaded in bulk rather than through the handlers (a benchmark, an import)."""
    await session.execute(delete(DashCounter).where(DashCounter.metric == STATIONS))
    stations: Counts = defaultdict(int)
    query = select(DashStation.host_org_id, DashStation.station_type, DashStation.status)
    for host, station_type, status in await session.execute(query):
        stations[(host, STATIONS, ALL_TIME, f"{station_type}|{status}")] += 1
    await _add_rows(session, DashCounter, "org_id", rolled_up(stations))
    await session.execute(delete(DashSubtreeCounter))
    paths = {
        org_id: path for org_id, path in await session.execute(select(DashOrg.id, DashOrg.path))
    }
    counters = select(
        DashCounter.org_id,
        DashCounter.period,
        DashCounter.metric,
        DashCounter.dimension,
        DashCounter.value,
    )
    rows = {(o, p, m, d): v for o, p, m, d, v in await session.execute(counters) if v}
    nodes = by_node(rows, paths)
    items = sorted(nodes.items())
    for start in range(0, len(items), 5000):
        await session.execute(
            insert(DashSubtreeCounter),
            [
                {"node_id": n, "period": p, "metric": m, "dimension": d, "value": v}
                for (n, p, m, d), v in items[start : start + 5000]
            ],
        )
    await coverage.rebuild_all(session)


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


def _subtree_nodes(nodes: Nodes) -> ColumnElement[bool]:
    """The subtree counters of the nodes asked for (children: the known ones)."""
    node_id = DashSubtreeCounter.node_id
    if nodes.org_id is not None:
        return node_id == nodes.org_id
    return node_id.in_(select(DashOrg.id).where(DashOrg.parent_id == nodes.parent_id))


async def counter_sums(
    session: AsyncSession, nodes: Nodes, first: str | None, last: str | None, stock: set[str]
) -> Sequence[Any]:
    """(node_id, metric, dimension, sum) per node: the metrics in `stock` summed up to
    `last` (how things stood then), the others over the months `first`..`last`."""
    counter = DashSubtreeCounter
    if first is None:  # flows and stocks alike: everything up to `last`
        wanted = covering(counter.period, None, last)
    else:
        is_stock = counter.metric.in_(sorted(stock))
        wanted = or_(
            and_(is_stock, covering(counter.period, None, last)),
            and_(~is_stock, covering(counter.period, first, last)),
        )
    query = (
        select(counter.node_id, counter.metric, counter.dimension, func.sum(counter.value))
        .where(_subtree_nodes(nodes), wanted, counter.metric != STATIONS)
        .group_by(counter.node_id, counter.metric, counter.dimension)
    )
    return (await session.execute(query)).all()


async def monthly_counter_by_node(
    session: AsyncSession, nodes: Nodes, metric: str, first: str | None, last: str | None
) -> dict[str, dict[str, int]]:
    """One metric's sum per node and month of the period."""
    counter = DashSubtreeCounter
    query = select(counter.node_id, counter.period, counter.value).where(
        _subtree_nodes(nodes), counter.metric == metric, months_only(counter.period, first, last)
    )
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for node_id, month, value in await session.execute(query):
        found[node_id][month] += int(value)
    return {node_id: dict(months) for node_id, months in found.items()}


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
    counter = DashSubtreeCounter
    query = select(counter.node_id, counter.dimension, counter.value).where(
        _subtree_nodes(nodes), counter.metric == STATIONS, counter.period == ALL_TIME
    )
    return [
        (node_id, *dimension.rpartition("|")[::2], value)
        for node_id, dimension, value in await session.execute(query)
    ]


async def villages(session: AsyncSession, nodes: Nodes) -> Sequence[Any]:
    """(node_id, id, name, region_code, lon, lat, nearest_m) of the active village/community
    unions in each subtree; nearest_m as `dashboards.coverage` keeps it."""
    node, org, which, inside = _node_join(nodes)
    query = (
        select(
            node.id.label("node_id"),
            org.id.label("id"),
            org.name,
            org.region_code,
            org.lon,
            org.lat,
            DashVillageCover.nearest_m,
        )
        .select_from(node)
        .join(org, inside)
        .outerjoin(DashVillageCover, DashVillageCover.org_id == org.id)
        .where(which, org.org_type == VILLAGE_UNION, org.status == ACTIVE)
        .order_by(org.region_code, org.name, org.id)
    )
    return (await session.execute(query)).all()


async def circle_counts(
    session: AsyncSession, nodes: Nodes, radius_m: float
) -> dict[str, tuple[int, int, int]]:
    """(active village unions, located, covered within radius_m) per node: one aggregate
    over the subtree's villages and their kept nearest distances, no station read."""
    node, org, which, inside = _node_join(nodes)
    cover = DashVillageCover
    query = (
        select(
            node.id,
            func.count(org.id),
            func.count(cover.org_id),
            func.count(case((cover.nearest_m <= radius_m, 1))),
        )
        .select_from(node)
        .join(org, inside)
        .outerjoin(cover, cover.org_id == org.id)
        .where(which, org.org_type == VILLAGE_UNION, org.status == ACTIVE)
        .group_by(node.id)
    )
    return {
        node_id: (int(total), int(located), int(covered))
        for node_id, total, located, covered in await session.execute(query)
    }


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


# (source, last_event_at, applied_at, events_applied) of each source, by source.
ReadModelVersion = tuple[Any, ...]


async def source_rows(session: AsyncSession) -> ReadModelVersion:
    """Every `dash_sources` row: each source's freshness, and together the read model's
    version (every handler's transaction rewrites its source's row)."""
    query = select(
        DashSource.source,
        DashSource.last_event_at,
        DashSource.applied_at,
        DashSource.events_applied,
    ).order_by(DashSource.source)
    return tuple(await session.execute(query))


async def monthly_counter(
    session: AsyncSession,
    org_id: str,
    metric: str,
    dimension_prefix: str | None,
    last: str | None,
) -> dict[str, int]:
    """Sum of one metric per month over the org's subtree (all months up to `last`)."""
    counter = DashSubtreeCounter
    query = (
        select(counter.period, func.sum(counter.value))
        .where(
            counter.node_id == org_id,
            counter.metric == metric,
            months_only(counter.period, None, last),
        )
        .group_by(counter.period)
    )
    if dimension_prefix is not None:
        query = query.where(counter.dimension.startswith(dimension_prefix, autoescape=True))
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
