"""Dashboard figures: assembled from the read models, never from the services.

Every figure of a subtree comes from a handful of aggregate statements (counters, unique
persons, cadres, stations, village unions, units), each one indexed range of the org paths
joined to small per-org rows; the children of an org are answered by the same statements
grouped per child. Nothing here calls another service, so the dashboards answer while a
service is down, and `freshness` says how far behind each source is.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.dashboards import repository
from gateway.dashboards.coverage import METRES_PER_DEGREE_LAT, NEAREST_MAX_M, distance_m
from gateway.dashboards.handlers import SOURCES, month_of, this_month
from gateway.dashboards.models import DashOrg
from gateway.dashboards.regions import levels_below, region_prefix, unit_level
from gateway.dashboards.repository import UNION_TYPE_OF_LEVEL, Nodes, ReadModelVersion
from gateway.dashboards.schemas import (
    METRIC_LABELS_ZH,
    STOCK_METRICS,
    CadreFigures,
    ChildFigures,
    CircleCoverage,
    Count,
    DashboardChildren,
    DashboardFigures,
    DashboardMap,
    DashboardOverview,
    DashboardTimeseries,
    LevelCoverage,
    MapStation,
    MapVillage,
    MemberFigures,
    Metric,
    MonthCount,
    OrgRef,
    Period,
    SourceFreshness,
    StationFigures,
    TimeseriesPoint,
    TrainingFigures,
    UnitFigures,
)
from gonghui_shared.auth import Principal
from gonghui_shared.db import Database
from gonghui_shared.errors import NotFound, Unprocessable
from gonghui_shared.permissions import Action
from gonghui_shared.reads import ReadPool
from gonghui_shared.vocabulary import MemberCategory

ACTION = Action.dashboards_read

# The longest time series answered: 20 years of months.
MAX_MONTHS = 240
_METRES_PER_DEGREE_LAT = METRES_PER_DEGREE_LAT

MEMBER_STATUS_LABELS_ZH = {
    "active": "在册",
    "withdrawn": "退会",
    "lapsed": "失效",
    "expelled": "除名",
}
STATION_TYPE_LABELS_ZH = {
    "outdoor_worker_station": "户外劳动者服务站点",
    "worker_home": "职工之家",
    "village_service_point": "村级工会服务点",
    "liaison_station": "联络站",
    "other": "其他",
}
STATION_STATUS_LABELS_ZH = {"active": "运营中", "suspended": "暂停", "closed": "关闭"}
SERVICE_LABELS_ZH = {
    "drinking_water": "喝水",
    "phone_charging": "充电",
    "rest": "休息",
    "heating_food": "热饭",
    "breakfast": "爱心早餐",
    "first_aid": "应急药品",
    "toilet": "如厕",
    "legal_consult": "法律咨询",
    "counselling": "心理咨询",
    "reading": "阅读",
    "other": "其他",
}
CATEGORY_LABELS_ZH = {c.value: c.label_zh for c in MemberCategory}


class DashboardOrgNotFound(NotFound):
    code = "org_not_found"
    message = "No such organisation (or membership has not announced it yet)"
    message_zh = "工会组织不存在（或尚未从会员服务同步）"


class InvalidPeriod(Unprocessable):
    code = "invalid_period"
    message = "The period is invalid"
    message_zh = "统计期间无效"


@dataclass(frozen=True)
class Circle:
    """The 15-minute circle: `minutes` of walking at `speed_kmh`."""

    minutes: float
    speed_kmh: float

    @property
    def radius_m(self) -> float:
        return self.minutes * self.speed_kmh * 1000.0 / 60.0


# -- small helpers --------------------------------------------------------------------------


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    months = []
    month = first
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def nearest_within(
    point: tuple[float, float], stations: list[tuple[float, float]], lats: list[float], max_m: float
) -> float | None:
    """Distance to the nearest of `stations` (sorted by latitude, `lats` theirs) within max_m."""
    lon, lat = point
    window = max_m / _METRES_PER_DEGREE_LAT
    best: float | None = None
    for i in range(bisect.bisect_left(lats, lat - window), bisect.bisect_right(lats, lat + window)):
        d = distance_m(lon, lat, *stations[i])
        if d <= max_m and (best is None or d < best):
            best = d
    return best


async def _nearest(
    session: AsyncSession, points: dict[str, tuple[float, float]], max_m: float
) -> dict[str, float | None]:
    """Each point's distance to its nearest active station (of any org) within max_m."""
    margin = max_m / _METRES_PER_DEGREE_LAT
    # Longitude degrees shrink with latitude: twice the margin is enough up to 60°.
    stations = sorted(
        await repository.active_stations_near(session, points.values(), margin),
        key=lambda p: p[1],
    )
    lats = [p[1] for p in stations]
    return {key: nearest_within(point, stations, lats, max_m) for key, point in points.items()}


def org_ref(org: DashOrg) -> OrgRef:
    return OrgRef(
        id=org.id,
        name=org.name or None,
        path=org.path,
        org_type=org.org_type or None,
        region_code=org.region_code or None,
        status=org.status,
    )


def _period(first: str | None, last: str | None) -> Period:
    if first is not None and last is not None and first > last:
        raise InvalidPeriod(
            f"`from` ({first}) is after `to` ({last})",
            f"起始月份（{first}）晚于截止月份（{last}）",
            details={"field": "from"},
        )
    return Period(from_=first, to=last)


async def org_in_scope(session: AsyncSession, principal: Principal, org_id: str) -> DashOrg:
    """The org, if known and inside the principal's subtree."""
    principal.require(ACTION)
    org = await repository.get_org(session, org_id)
    if org is None:
        raise DashboardOrgNotFound(details={"field": "org_id"})
    principal.require(ACTION, org.path)
    return org


async def freshness(session: AsyncSession) -> list[SourceFreshness]:
    return freshness_of(await repository.source_rows(session))


def freshness_of(version: ReadModelVersion) -> list[SourceFreshness]:
    """The freshness of each source from its `dash_sources` row (as `source_rows` reads it)."""
    rows = {row.source: row for row in version}
    result = []
    for source in SOURCES:
        row = rows.get(source)
        result.append(
            SourceFreshness.model_validate(
                {
                    "source": source,
                    "last_event_at": row.last_event_at if row else None,
                    "applied_at": row.applied_at if row else None,
                    "events_applied": row.events_applied if row else 0,
                }
            )
        )
    return result


# -- figures --------------------------------------------------------------------------------


# The one stock metric among the counters (status|category changes): summed up to `to`.
STOCK_COUNTERS = {"members"}
# Months of new members shown without `from`: the last year.
DEFAULT_SERIES_MONTHS = 12


@dataclass
class _Sums:
    """One node's counters: flows over the period, stocks up to its end, by (metric, dim)."""

    values: dict[tuple[str, str], int]

    def total(self, metric: str) -> int:
        return sum(v for (m, _), v in self.values.items() if m == metric)

    def by(self, metric: str) -> dict[str, int]:
        return {d: v for (m, d), v in self.values.items() if m == metric}


def _counts(values: dict[str, int], labels: dict[str, str], *, every: bool) -> list[Count]:
    """Counts in the vocabulary's order (all of it when `every`), then unknown keys by size."""
    known = [k for k in labels if every or values.get(k)]
    extra = sorted((k for k in values if k not in labels and values[k]), key=lambda k: -values[k])
    return [Count(key=k, label_zh=labels.get(k, k), count=values.get(k, 0)) for k in known + extra]


def _previous_months(last: str, n: int) -> str:
    """The first of the `n` months ending with `last`."""
    year, month = int(last[:4]), int(last[5:]) - (n - 1)
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}-{month:02d}"


def series_window(first: str | None, last: str | None) -> tuple[str, str]:
    """The months of `new_members_per_month`: the period, or the 12 months ending at `to`."""
    end = last or month_of(datetime.now(UTC))
    return first or _previous_months(end, DEFAULT_SERIES_MONTHS), end


def _member_figures(
    sums: _Sums, per_month: dict[str, int], window: tuple[str, str]
) -> MemberFigures:
    by_status: dict[str, int] = defaultdict(int)
    active_by_category: dict[str, int] = defaultdict(int)
    for dimension, value in sums.by("members").items():
        status, _, category = dimension.partition("|")
        by_status[status] += value
        if status == "active":
            active_by_category[category] += value
    start, end = window
    return MemberFigures(
        active=sum(active_by_category.values()),
        by_category=_counts(active_by_category, CATEGORY_LABELS_ZH, every=True),
        by_status=_counts(by_status, MEMBER_STATUS_LABELS_ZH, every=True),
        migrant_workers=active_by_category.get(MemberCategory.MIGRANT_WORKER.value, 0),
        new_employment=active_by_category.get(MemberCategory.NEW_EMPLOYMENT.value, 0),
        new_members=sums.total("new_members"),
        new_members_per_month=[
            MonthCount(month=m, count=per_month.get(m, 0))
            for m in months_between(start, end)[:MAX_MONTHS]
        ],
    )


def _training_figures(sums: _Sums, unique: int) -> TrainingFigures:
    issued = sums.total("certificates_issued")
    revoked = sums.total("certificates_revoked")
    spent = sums.total("budget_spent_fen")
    return TrainingFigures(
        sessions_scheduled=sums.total("sessions_scheduled"),
        sessions_completed=sums.total("sessions_completed"),
        sessions_cancelled=sums.total("sessions_cancelled"),
        person_times=sums.total("person_times"),
        unique_persons=unique,
        certificates_issued=issued,
        certificates_revoked=revoked,
        certificates=issued - revoked,
        budget_spent_fen=spent,
        budget_spent=yuan(spent),
    )


def _station_figures(
    sums: _Sums, stations: list[tuple[str, str, int]], circle: CircleCoverage
) -> StationFigures:
    by_type: dict[str, int] = defaultdict(int)
    by_status: dict[str, int] = defaultdict(int)
    for station_type, status, n in stations:
        by_type[station_type] += n
        by_status[status] += n
    services = sums.by("services_used")
    paid = sums.total("subsidies_paid_fen")
    return StationFigures(
        total=sum(by_type.values()),
        active=by_status.get("active", 0),
        by_type=_counts(by_type, STATION_TYPE_LABELS_ZH, every=True),
        by_status=_counts(by_status, STATION_STATUS_LABELS_ZH, every=True),
        circle=circle,
        visits=sums.total("visits"),
        services_used=sum(services.values()),
        services_by_kind=sorted(
            _counts(services, SERVICE_LABELS_ZH, every=False), key=lambda c: (-c.count, c.key)
        ),
        subsidies_paid_fen=paid,
        subsidies_paid=yuan(paid),
    )


def _level(level: str | None, total: int, covered: int) -> LevelCoverage:
    return LevelCoverage.model_validate(
        {"level": level, "total": total, "covered": covered, "rate": _rate(covered, total)}
    )


async def _unit_figures(session: AsyncSession, orgs: list[DashOrg]) -> dict[str, UnitFigures]:
    """Union coverage of each org's region, as membership's coverage endpoint computes it."""
    plans: dict[str, tuple[str, list[str]]] = {}
    for org in orgs:
        level = unit_level(org.region_code)
        below = [lvl for lvl in levels_below(level) if lvl in UNION_TYPE_OF_LEVEL] if level else []
        if level and below:
            plans[org.id] = (region_prefix(org.region_code, level), below)
    wanted = {lvl for _, below in plans.values() for lvl in below}
    units = await repository.units_with_cover(
        session, (prefix for prefix, _ in plans.values()), wanted
    )
    result = {}
    for org in orgs:
        if org.id not in plans:
            result[org.id] = UnitFigures(
                region_code=org.region_code or None, direct=_level(None, 0, 0), levels=[]
            )
            continue
        prefix, below = plans[org.id]
        inside = [u for u in units if u.code.startswith(prefix)]
        levels = []
        for lvl in below:
            of_level = [u for u in inside if u.level == lvl]
            levels.append(_level(lvl, len(of_level), sum(bool(u.covered) for u in of_level)))
        direct = [u for u in inside if u.parent_code == org.region_code]
        result[org.id] = UnitFigures(
            region_code=org.region_code,
            direct=_level(below[0], len(direct), sum(bool(u.covered) for u in direct)),
            levels=levels,
        )
    return result


async def _circles(
    session: AsyncSession, nodes: Nodes, node_ids: Iterable[str], circle: Circle
) -> dict[str, CircleCoverage]:
    if circle.radius_m <= NEAREST_MAX_M:  # what the kept nearest distances can answer
        counts = await repository.circle_counts(session, nodes, circle.radius_m)
    else:
        counts = await _circle_counts_from_stations(session, nodes, circle.radius_m)
    totals = {node_id: counts.get(node_id, (0, 0, 0)) for node_id in node_ids}
    return {
        node_id: CircleCoverage(
            minutes=circle.minutes,
            walking_speed_kmh=circle.speed_kmh,
            radius_m=round(circle.radius_m, 1),
            units_total=units,
            units_located=located_n,
            covered=covered,
            rate=_rate(covered, located_n),
        )
        for node_id, (units, located_n, covered) in totals.items()
    }


async def _circle_counts_from_stations(
    session: AsyncSession, nodes: Nodes, radius_m: float
) -> dict[str, tuple[int, int, int]]:
    """A circle wider than the kept distances reach (a walking speed over 20 km/h): from
    the stations themselves, as before they were kept."""
    villages = await repository.villages(session, nodes)
    located = {v.id: (v.lon, v.lat) for v in villages if v.lon is not None and v.lat is not None}
    nearest = await _nearest(session, located, radius_m)
    totals: dict[str, tuple[int, int, int]] = {}
    for village in villages:
        units, located_n, covered = totals.get(village.node_id, (0, 0, 0))
        if village.id in located:
            located_n += 1
            covered += nearest[village.id] is not None
        totals[village.node_id] = (units + 1, located_n, covered)
    return totals


async def figures(
    session: AsyncSession,
    nodes: Nodes,
    orgs: list[DashOrg],
    first: str | None,
    last: str | None,
    circle: Circle,
) -> dict[str, DashboardFigures]:
    """Every figure of each org's subtree (`orgs` are the nodes `nodes` selects)."""
    ids = [org.id for org in orgs]
    sums = {node_id: _Sums(values={}) for node_id in ids}
    for node_id, metric, dimension, value in await repository.counter_sums(
        session, nodes, first, last, STOCK_COUNTERS
    ):
        sums.setdefault(node_id, _Sums(values={})).values[(metric, dimension)] = int(value)
    window = series_window(first, last)
    new_per_month = await repository.monthly_counter_by_node(session, nodes, "new_members", *window)
    unique = await repository.unique_persons(session, nodes, first, last)
    cadres = await repository.cadres(session, nodes)
    stations: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for node_id, station_type, status, n in await repository.station_counts(session, nodes):
        stations[node_id].append((station_type, status, int(n)))
    circles = await _circles(session, nodes, ids, circle)
    units = await _unit_figures(session, orgs)

    result = {}
    for node_id in ids:
        node_sums = sums[node_id]
        cadre_total, trained = cadres.get(node_id, (0, 0))
        result[node_id] = DashboardFigures(
            units=units[node_id],
            members=_member_figures(node_sums, new_per_month.get(node_id, {}), window),
            cadres=CadreFigures(
                cadres=cadre_total, trained=trained, rate=_rate(trained, cadre_total)
            ),
            training=_training_figures(node_sums, unique.get(node_id, 0)),
            stations=_station_figures(node_sums, stations[node_id], circles[node_id]),
        )
    return result


# -- endpoints' services --------------------------------------------------------------------


async def overview(
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    first: str | None,
    last: str | None,
    circle: Circle,
    version: ReadModelVersion | None = None,
) -> DashboardOverview:
    """The figures of the org's whole subtree, with each source's freshness. `version`: the
    read model's, when the caller has read it (a cached answer's); else it is read here."""
    period = _period(first, last)
    org = await org_in_scope(session, principal, org_id)
    found = await figures(session, Nodes(org_id=org.id), [org], first, last, circle)
    return DashboardOverview(
        org=org_ref(org),
        period=period,
        figures=found[org.id],
        freshness=freshness_of(version) if version is not None else await freshness(session),
        generated_at=datetime.now(UTC),
    )


async def children(
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    first: str | None,
    last: str | None,
    circle: Circle,
    version: ReadModelVersion | None = None,
) -> DashboardChildren:
    """The figures of each direct child's subtree. `version`: the read model's, when the
    caller has read it (a cached answer's); else it is read here."""
    period = _period(first, last)
    org = await org_in_scope(session, principal, org_id)
    kids = await repository.children_of(session, org.id)
    found = (
        await figures(session, Nodes(parent_id=org.id), kids, first, last, circle) if kids else {}
    )
    return DashboardChildren(
        org=org_ref(org),
        period=period,
        children=[ChildFigures(org=org_ref(kid), figures=found[kid.id]) for kid in kids],
        freshness=freshness_of(version) if version is not None else await freshness(session),
        generated_at=datetime.now(UTC),
    )


# -- answers cached per read-model version -------------------------------------------------


CacheKey = tuple[Any, ...]


@dataclass
class _Cached:
    version: ReadModelVersion
    org_path: str  # the scope check of every caller, without reading the org again
    body: bytes  # the JSON answer up to its closing brace, without `generated_at`


class AnswerCache:
    """Serialized overviews and children answers of this process, by what was asked.

    An entry is served only while the read model is at the version it was computed at:
    `dash_sources` holds one row per source, and every event any gateway replica applies
    rewrites its source's row (count and time applied) in the event's own transaction, so
    the rows, read once per request, change whenever a figure may have. The figures are
    read after the version, never older than it: an answer cached under a version is at
    least as fresh as that version. Each replica keeps its own entries; none can serve an
    answer another replica's events have outdated. A rebuild empties `dash_sources` too.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, _Cached] = OrderedDict()

    def get(self, key: CacheKey, version: ReadModelVersion) -> _Cached | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != version:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, entry: _Cached) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _body_without_time(answer: DashboardOverview | DashboardChildren) -> bytes:
    """The answer as FastAPI would serialize it, less the closing `,"generated_at":…}`."""
    data = answer.model_dump(mode="json", by_alias=True)
    del data["generated_at"]  # the last field: appended per request
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()[
        :-1
    ]


def _now_json() -> bytes:
    """`generated_at` as pydantic writes a UTC datetime in JSON."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()


class VersionReads:
    """The read model's version for concurrent requests, one database read at a time.

    A request waits for the next read to *start* (never joins one already running, which
    could predate an event committed before the request came), and every request that
    arrived before a read started shares it. Under load one read per round trip serves
    all the requests meanwhile, instead of one connection, ping and transaction each; the
    answer is as fresh as reading it per request.
    """

    def __init__(self, reads: ReadPool) -> None:
        self.reads = reads
        self._next: asyncio.Future[ReadModelVersion] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def current(self) -> ReadModelVersion:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_while_asked())
        # Shielded: a caller that goes away must not cancel the others' read.
        return await asyncio.shield(waiting)

    async def _read_while_asked(self) -> None:
        while self._next is not None:
            # Who asks from now on waits for the following read.
            waiting, self._next = self._next, None
            try:
                # One statement: in autocommit, without BEGIN and ROLLBACK round trips,
                # which would keep every waiting request waiting that much longer.
                waiting.set_result(await self.reads.run(repository.source_rows))
            except Exception as exc:  # noqa: BLE001 - every waiting request raises it
                waiting.set_exception(exc)
                waiting.exception()  # retrieved: no warning if every caller went away


class Answers:
    """This process's cached answers, its reads of the read model's version, and the
    database and circle the answers are computed with."""

    def __init__(self, db: Database, reads: ReadPool, circle: Circle) -> None:
        self.db = db
        self.circle = circle
        self.cache = AnswerCache()
        self.versions = VersionReads(reads)


async def cached_answer(
    answers: Answers,
    kind: str,
    principal: Principal,
    org_id: str,
    first: str | None,
    last: str | None,
) -> bytes:
    """The overview (`kind` "overview") or children answer as JSON bytes: the read
    model's version, then the cached body if it is still current; only a miss opens a
    session to compute it."""
    _period(first, last)
    principal.require(ACTION)
    version = await answers.versions.current()
    # Without `to`, the months shown end with the current one: part of what was asked.
    key = (kind, org_id, first, last, this_month() if last is None else "")
    entry = answers.cache.get(key, version)
    if entry is None:
        compute = overview if kind == "overview" else children
        async with answers.db.transaction() as session:
            answer = await compute(session, principal, org_id, first, last, answers.circle, version)
        entry = _Cached(version=version, org_path=answer.org.path, body=_body_without_time(answer))
        answers.cache.put(key, entry)
    principal.require(ACTION, entry.org_path)
    return entry.body + b',"generated_at":"' + _now_json() + b'"}'


# Which counters each metric of a time series sums: (metric, dimension prefix or None).
_SERIES_COUNTERS: dict[Metric, tuple[str, str | None]] = {
    Metric.members_active: ("members", "active|"),
    Metric.migrant_workers: ("members", f"active|{MemberCategory.MIGRANT_WORKER.value}"),
    Metric.new_employment: ("members", f"active|{MemberCategory.NEW_EMPLOYMENT.value}"),
}


async def timeseries(
    session: AsyncSession,
    principal: Principal,
    org_id: str,
    metric: Metric,
    first: str | None,
    last: str | None,
) -> DashboardTimeseries:
    """One metric per month over the subtree: what happened (flow) or how it stood (stock)."""
    _period(first, last)
    org = await org_in_scope(session, principal, org_id)
    if metric is Metric.unique_persons:
        values = await repository.monthly_unique_persons(session, org.path, first, last)
    else:
        counter, prefix = _SERIES_COUNTERS.get(metric, (metric.value, None))
        values = await repository.monthly_counter(session, org.id, counter, prefix, last)
    stock = metric in STOCK_METRICS
    months = sorted(m for m, v in values.items() if v)
    current = month_of(datetime.now(UTC))
    end = last or max([current, *months[-1:]])
    start = first or (months[0] if months else end)
    if start > end:  # only `from`, after this month and every month with data
        end = start
    series = months_between(start, end)
    if len(series) > MAX_MONTHS:
        raise InvalidPeriod(
            f"At most {MAX_MONTHS} months per series; ask for a shorter period",
            f"时间序列最多 {MAX_MONTHS} 个月，请缩短统计期间",
            details={"field": "from", "months": len(series)},
        )
    points = []
    running = sum(v for m, v in values.items() if m < start) if stock else 0
    for month in series:
        if stock:
            running += values.get(month, 0)
            points.append(TimeseriesPoint(month=month, value=running))
        else:
            points.append(TimeseriesPoint(month=month, value=values.get(month, 0)))
    return DashboardTimeseries(
        org=org_ref(org),
        metric=metric,
        label_zh=METRIC_LABELS_ZH[metric],
        kind="stock" if stock else "flow",
        period=Period(from_=start, to=end),
        points=points,
        freshness=await freshness(session),
        generated_at=datetime.now(UTC),
    )


async def map_points(
    session: AsyncSession, principal: Principal, org_id: str, circle: Circle
) -> DashboardMap:
    """Stations and village unions of the subtree, with each village's 15-minute cover."""
    org = await org_in_scope(session, principal, org_id)
    stations = await repository.stations_in(session, org.path)
    villages = await repository.villages(session, Nodes(org_id=org.id))
    return DashboardMap(
        org=org_ref(org),
        minutes=circle.minutes,
        walking_speed_kmh=circle.speed_kmh,
        radius_m=round(circle.radius_m, 1),
        stations=[
            MapStation(
                id=st.station_id,
                name=st.name,
                station_type=st.station_type,
                status=st.status,
                host_org_id=st.host_org_id,
                lon=st.lon,
                lat=st.lat,
            )
            for st in stations
        ],
        villages=[_map_village(v, v.nearest_m, circle) for v in villages],
        freshness=await freshness(session),
        generated_at=datetime.now(UTC),
    )


def _map_village(org: Any, nearest: float | None, circle: Circle) -> MapVillage:
    """A village row (id, name, region_code, lon, lat) on the map."""
    return MapVillage(
        org_id=org.id,
        name=org.name or None,
        region_code=org.region_code or None,
        lon=org.lon,
        lat=org.lat,
        covered=nearest is not None and nearest <= circle.radius_m,
        nearest_station_m=round(nearest, 1) if nearest is not None else None,
    )
