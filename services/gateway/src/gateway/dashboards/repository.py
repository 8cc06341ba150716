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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    bindparam,
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
from sqlalchemy.dialects.postgresql import ARRAY
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
from gonghui_shared import reads
from gonghui_shared.contracts.membership import RegisteredUnit
from gonghui_shared.db import insert_ignoring_conflicts
from gonghui_shared.reads import Reader

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
    """Add (key, period, metric, dimension) values, creating rows at 0: one upsert, its
    rows in key order (so two writers cannot deadlock). On PostgreSQL the rows go as five
    arrays of one statement (`unnest`): a batch's thousands of rows cost one bind, not one
    each."""
    if not rows:
        return
    ordered = sorted(rows.items())
    columns = [key, "period", "metric", "dimension", "value"]
    statement = _insert(session, model)
    if session.get_bind().dialect.name == "postgresql":
        arrays: list[Any] = [
            bindparam(f"{name}s", [k[i] for k, _ in ordered], type_=ARRAY(String))
            for i, name in enumerate(columns[:4])
        ]
        values: Any = ARRAY(BigInteger)
        arrays.append(bindparam("values", [v for _, v in ordered], type_=values))
        source = func.unnest(*arrays).table_valued(*columns).render_derived()
        statement = statement.from_select(columns, select(*(source.c[c] for c in columns)))
        parameters: Any = None
    else:
        parameters = [dict(zip(columns, (*k, v), strict=True)) for k, v in ordered]
    statement = statement.on_conflict_do_update(
        index_elements=columns[:4],
        set_={"value": model.value + statement.excluded.value},
    )
    await session.execute(statement, parameters)


async def add_counts(session: AsyncSession, deltas: Counts) -> None:
    """Add each (org, metric, month, dimension) delta to its month's, year's and all-time
    counter of the org and of every org above it: two upserts (and the orgs' paths)."""
    if (batch := batch_of(session)) is not None:
        for key, value in deltas.items():
            batch.counts[key] += value
        return
    await _write_counts(session, rolled_up(deltas), {}, set())


async def _write_counts(
    session: AsyncSession, rows: Counts, subtree: Counts, held: set[str]
) -> None:
    """Add org rows (org, period, metric, dimension) to the orgs' counters and, by their
    paths, to the subtree counters, with `subtree` (node rows) besides; an org neither
    known nor in `held` (locked by the caller since before it read anything) is locked
    first, then read again."""
    paths: dict[str, str] = {}
    if rows:
        orgs = {org_id for org_id, _, _, _ in rows}
        paths = await _paths(session, orgs)
        if unknown := orgs - paths.keys() - held:  # wait for an announcement under way
            await lock_orgs(session, unknown)
            paths.update(await _paths(session, unknown))
        await _add_rows(session, DashCounter, "org_id", rows)
    nodes: Counts = defaultdict(int, subtree)
    for key, value in by_node(rows, paths).items():
        nodes[key] += value
    await _add_rows(session, DashSubtreeCounter, "node_id", {k: v for k, v in nodes.items() if v})


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
    if (batch := batch_of(session)) is not None:
        for key, value in moved.items():
            batch.subtree[key] += value
        return
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
    seen = {(org_id, period, person_key) for period in periods_of(month)}
    if (batch := batch_of(session)) is not None:
        batch.persons |= seen
        return
    await _see(session, seen)


async def _see(session: AsyncSession, seen: set[tuple[str, str, str]]) -> None:
    if seen:
        await session.execute(
            insert_ignoring_conflicts(session, DashPersonSeen),
            [{"org_id": o, "period": p, "person_key": k} for o, p, k in sorted(seen)],
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
    if (batch := batch_of(session)) is not None:
        batch.sources[source] = (occurred_at, batch.sources.get(source, (occurred_at, 0))[1] + 1)
        return
    await _touch(session, source, occurred_at, 1)


async def _touch(session: AsyncSession, source: str, occurred_at: datetime, events: int) -> None:
    statement = _insert(session, DashSource).values(
        source=source,
        last_event_at=occurred_at,
        applied_at=datetime.now(UTC),
        events_applied=events,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["source"],
        set_={
            "last_event_at": statement.excluded.last_event_at,
            "applied_at": statement.excluded.applied_at,
            "events_applied": DashSource.events_applied + statement.excluded.events_applied,
        },
    )
    await session.execute(statement)


async def member_for_update(session: AsyncSession, member_no: str) -> DashMember | None:
    if (found := _prefetched(session, DashMember, member_no)) is not _MISSING:
        return found
    return await session.get(DashMember, member_no, with_for_update=True)


async def member_moves(session: AsyncSession, member_no: str) -> list[DashMemberMove]:
    """The member's transfers; in a batch, the batch's own list (its handlers append)."""
    batch = batch_of(session)
    if batch is not None and member_no in batch.moves:
        return batch.moves[member_no]
    rows = await session.scalars(
        select(DashMemberMove).where(DashMemberMove.member_no == member_no)
    )
    return list(rows)


async def session_for_update(session: AsyncSession, session_id: str) -> DashSession | None:
    if (found := _prefetched(session, DashSession, session_id)) is not _MISSING:
        return found
    return await session.get(DashSession, session_id, with_for_update=True)


async def certificate_for_update(
    session: AsyncSession, certificate_id: str
) -> DashCertificate | None:
    if (found := _prefetched(session, DashCertificate, certificate_id)) is not _MISSING:
        return found
    return await session.get(DashCertificate, certificate_id, with_for_update=True)


async def station_for_update(session: AsyncSession, station_id: str) -> DashStation | None:
    if (found := _prefetched(session, DashStation, station_id)) is not _MISSING:
        return found
    return await session.get(DashStation, station_id, with_for_update=True)


def add_entity(session: AsyncSession, key: str, row: Any) -> None:
    """A new entity row (member, session, certificate, station): added to the session, and
    to the batch's rows, so the batch's next event of it finds it without a query."""
    session.add(row)
    if (batch := batch_of(session)) is not None:
        batch.rows.setdefault(type(row), {})[key] = row


# -- batches ------------------------------------------------------------------------------
#
# A batch of events applied in one transaction (`handlers.BATCHES`) must not deadlock with
# the other dashboard consumers' batches on the same database. So each batch takes its
# locks in one global order: its own entity rows (members, sessions, certificates,
# stations: one consumer's tables) in one statement per table, by key; then every advisory
# lock it needs (orgs it announces or counts for while they are unknown, coverage regions)
# in one sorted statement; the handlers then take no lock another consumer's batch holds
# except those; and the shared rows (counters, subtree counters, persons seen, freshness)
# are written once at the end, each table in one statement by key.

_BATCH = "gateway.dashboards.batch"
_MISSING = object()


@dataclass
class Batch:
    """The writes of a batch's handlers to shared rows, folded until `finish_batch`, and
    the entity rows read (and locked) at its start (None: not there yet)."""

    counts: Counts = field(default_factory=lambda: defaultdict(int))
    subtree: Counts = field(default_factory=lambda: defaultdict(int))
    persons: set[tuple[str, str, str]] = field(default_factory=set)
    sources: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    rows: dict[type, dict[str, Any]] = field(default_factory=dict)
    moves: dict[str, list[DashMemberMove]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # orgs locked at the start


def batch_of(session: AsyncSession) -> Batch | None:
    return session.info.get(_BATCH)


def _prefetched(session: AsyncSession, model: type, key: str) -> Any:
    batch = batch_of(session)
    if batch is None:
        return _MISSING
    return batch.rows.get(model, {}).get(key, _MISSING)


def begin_batch(session: AsyncSession) -> Batch:
    batch = Batch()
    session.info[_BATCH] = batch
    return batch


async def lock_entities(session: AsyncSession, model: Any, keys: Iterable[str]) -> list[Any]:
    """Read and lock the rows of `model` with these primary keys, in key order; the batch
    remembers them, and the keys without a row."""
    batch = batch_of(session)
    assert batch is not None
    wanted = sorted(set(keys))
    found: dict[str, Any] = dict.fromkeys(wanted)
    (key_column,) = model.__table__.primary_key.columns
    for start in range(0, len(wanted), _CHUNK):
        query = (
            select(model)
            .where(key_column.in_(wanted[start : start + _CHUNK]))
            .order_by(key_column)
            .with_for_update()
        )
        for row in await session.scalars(query):
            found[getattr(row, key_column.key)] = row
    batch.rows.setdefault(model, {}).update(found)
    return [row for row in found.values() if row is not None]


async def read_moves(session: AsyncSession, member_nos: Iterable[str]) -> list[DashMemberMove]:
    """The transfers of these members (their rows are locked): the batch keeps a list each."""
    batch = batch_of(session)
    assert batch is not None
    wanted = sorted(set(member_nos))
    for member_no in wanted:
        batch.moves.setdefault(member_no, [])
    for start in range(0, len(wanted), _CHUNK):
        query = select(DashMemberMove).where(
            DashMemberMove.member_no.in_(wanted[start : start + _CHUNK])
        )
        for move in await session.scalars(query):
            batch.moves[move.member_no].append(move)
    return [move for member_no in wanted for move in batch.moves[member_no]]


async def org_places(session: AsyncSession, org_ids: Iterable[str]) -> dict[str, Any]:
    """(id, org_type, lon, lat) of the known orgs among `org_ids`, read without a lock:
    which orgs a batch must lock, before it locks them."""
    wanted = sorted(set(org_ids))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = select(DashOrg.id, DashOrg.org_type, DashOrg.lon, DashOrg.lat).where(
            DashOrg.id.in_(wanted[start : start + _CHUNK])
        )
        found.update({row.id: row for row in await session.execute(query)})
    return found


def org_lock_keys(org_ids: Iterable[str]) -> list[tuple[int, int]]:
    return [_org_lock(org_id) for org_id in org_ids]


async def finish_batch(session: AsyncSession) -> None:
    """Write what the batch's handlers folded: counters, subtree counters, persons seen,
    freshness; each table in one statement, in key order."""
    batch = session.info.pop(_BATCH)
    await _write_counts(session, rolled_up(batch.counts), batch.subtree, batch.held)
    await _see(session, batch.persons)
    for source, (occurred_at, events) in sorted(batch.sources.items()):
        await _touch(session, source, occurred_at, events)


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


class SourceRow(NamedTuple):
    """A source's `dash_sources` row: how fresh its part of the read model is."""

    source: str
    last_event_at: datetime | None
    applied_at: datetime | None
    events_applied: int


# Every source's row, by source: the read model's version (compared whole, as a tuple).
ReadModelVersion = tuple[SourceRow, ...]

_SOURCE_ROWS = select(
    DashSource.source, DashSource.last_event_at, DashSource.applied_at, DashSource.events_applied
).order_by(DashSource.source)


async def source_rows(reader: Reader) -> ReadModelVersion:
    """Every `dash_sources` row: each source's freshness, and together the read model's
    version (every handler's transaction rewrites its source's row). Read before every
    cached dashboard answer: through the runtime's read pool where it can."""
    return tuple(SourceRow._make(row) for row in await reads.fetch(reader, _SOURCE_ROWS, {}))


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
