"""Dashboard read models: built only from the services' events, never from their databases.

Three kinds of table:

* **counters** (`dash_counters`): one row per (org, period, metric, dimension) holding a sum
  the handlers keep up to date, and the same sums per subtree (`dash_subtree_counters`,
  one row per org in the path of each counted org): a subtree's figure is the rows of one
  node; nothing per member, nor per org below it, is read.
* **entity state** the handlers need to stay order-tolerant and to move counts: members
  (`dash_members`, `dash_member_moves`), sessions, certificates. Their counters are a pure
  function of that state, so an event only ever adds "new contribution - old contribution",
  whatever order events come in.
* **small registers** read directly per request because they are few per county (hundreds):
  orgs, units, stations, cadres, plus `dash_persons_seen` for unique persons.

Why counters are keyed by org id rather than carrying the org path: an attendance or a visit
may be applied (by the training or stations consumer) before membership's consumer has
applied the org's creation. Joining on `dash_orgs` at read time makes such counts appear as
soon as the org is known, with no fix-up pass that could race the other consumers, and an
org moved in the tree takes its counts along.

Months are `YYYY-MM` in China time (UTC+8), the finest grain of every counter.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import BYTEWISE_PATH, Base

# SQLite's INTEGER PRIMARY KEY/alias rules do not matter here; BIGINT keeps fen sums safe.
BIG = BigInteger().with_variant(Integer(), "sqlite")


class DashOrg(Base):
    """An org as membership announced it (the shared replica rules, `gonghui_shared.replicas`)."""

    __tablename__ = "dash_orgs"
    __table_args__ = (
        Index("ix_dash_orgs_path", "path"),
        Index("ix_dash_orgs_parent_id", "parent_id"),
        Index("ix_dash_orgs_region_code", "region_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(36))
    path: Mapped[str] = mapped_column(BYTEWISE_PATH)
    org_type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(12))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="active")
    last_event_at: Mapped[datetime]


class DashUnit(Base):
    """An administrative unit (行政区划) from `membership.units.registered`."""

    __tablename__ = "dash_units"
    __table_args__ = (Index("ix_dash_units_parent_code", "parent_code"),)

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(String(12))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    last_event_at: Mapped[datetime]


class DashCounter(Base):
    """A sum per (org, period, metric, dimension); `dashboards.handlers` lists the metrics.

    Each change is added three times, to its month ("2026-11"), its year ("2026") and the
    running total ("*"), so a figure reads as few rows as the period allows: "*" alone
    without a period, whole years as one row each, and months only for partial years. The
    primary key leads with (org, period): an overview reads a handful of rows per org; the
    second index (org, metric, period) serves the monthly series of one metric.
    """

    __tablename__ = "dash_counters"
    __table_args__ = (Index("ix_dash_counters_org_id_metric", "org_id", "metric", "period"),)

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BIG)


class DashSubtreeCounter(Base):
    """`dash_counters` summed over each org's subtree: what an overview reads.

    `node_id` is every org id in the path of a counted org (itself included), so a
    subtree's figure is the rows of one node, however many orgs are below it. The
    handlers add each change to the org's counter and, in the same statement order and
    transaction, to its path's nodes (`repository.add_counts`); an org not announced yet
    has no path, so its counters join its nodes when it is (`repository.org_arrived`).
    """

    __tablename__ = "dash_subtree_counters"
    __table_args__ = (
        Index("ix_dash_subtree_counters_node_id_metric", "node_id", "metric", "period"),
    )

    node_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BIG)


class DashPersonSeen(Base):
    """A person (person_key) attended at an org in a month: the first time is enough.

    Unique persons over a subtree and a period are `COUNT(DISTINCT person_key)` of these rows
    for the subtree's orgs and the period; they cannot be a sum of per-org uniques (one person
    trained in two villages is one person for the township). Like the counters, a person is
    seen in the month, the year and "*" (ever), so a whole year or all time reads one row per
    person and org. One row per person, org and period keeps the table far smaller than
    attendance (a person attends many days), and the primary key (org_id, period,
    person_key) covers the query: the database answers from the index alone.
    """

    __tablename__ = "dash_persons_seen"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    person_key: Mapped[str] = mapped_column(String(80), primary_key=True)


class DashMember(Base):
    """What the member counters are computed from: approval, ending (transfers aside)."""

    __tablename__ = "dash_members"

    member_no: Mapped[str] = mapped_column(String(16), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(36))
    category: Mapped[str] = mapped_column(String(20))
    # From membership.member.approved; null while a later event has overtaken it.
    approved_org_id: Mapped[str | None] = mapped_column(String(36))
    approved_month: Mapped[str | None] = mapped_column(String(7))
    ended_status: Mapped[str | None] = mapped_column(String(20))
    ended_org_id: Mapped[str | None] = mapped_column(String(36))
    ended_at: Mapped[datetime | None]
    ended_month: Mapped[str | None] = mapped_column(String(7))


class DashMemberMove(Base):
    """A transfer (会员关系接转) of a member from one org to another."""

    __tablename__ = "dash_member_moves"
    __table_args__ = (Index("ix_dash_member_moves_member_no", "member_no"),)

    transfer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_no: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    month: Mapped[str] = mapped_column(String(7))
    from_org_id: Mapped[str] = mapped_column(String(36))
    to_org_id: Mapped[str] = mapped_column(String(36))


class DashCadre(Base):
    """A cadre post (工会干部) held by a member in an org."""

    __tablename__ = "dash_cadres"
    __table_args__ = (
        Index("ix_dash_cadres_org_id", "org_id"),
        Index("ix_dash_cadres_member_no", "member_no"),
    )

    cadre_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_no: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[str] = mapped_column(String(36))
    role: Mapped[str] = mapped_column(String(30))


class DashCadreTrained(Base):
    """A member who attended a session of a cadre_training course (anywhere, any time).

    Kept apart from `dash_cadres` and joined when read: the appointment (membership's
    consumer) and the attendance (training's) may be applied concurrently in either order.
    """

    __tablename__ = "dash_cadres_trained"

    member_no: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_day: Mapped[date] = mapped_column(Date)


class DashSession(Base):
    """A training session's state; its counters follow from it."""

    __tablename__ = "dash_sessions"

    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_org_id: Mapped[str] = mapped_column(String(36))
    course_category: Mapped[str | None] = mapped_column(String(40))
    # From training.session.scheduled; null while a later event has overtaken it.
    start_month: Mapped[str | None] = mapped_column(String(7))
    end_month: Mapped[str | None] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(20))  # scheduled, completed, cancelled
    # The terminal event (completed or cancelled): when, and its month as a fallback.
    status_at: Mapped[datetime | None]
    status_month: Mapped[str | None] = mapped_column(String(7))
    spent_fen: Mapped[int] = mapped_column(BIG, default=0)


class DashCertificate(Base):
    __tablename__ = "dash_certificates"

    certificate_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_org_id: Mapped[str] = mapped_column(String(36))
    # The month issued; null while the revocation has overtaken the issue.
    month: Mapped[str | None] = mapped_column(String(7))
    issued: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DashStation(Base):
    """A station (驿站) with its place, type and status."""

    __tablename__ = "dash_stations"
    __table_args__ = (
        Index("ix_dash_stations_host_org_id", "host_org_id"),
        Index("ix_dash_stations_lat", "lat"),
        Index("ix_dash_stations_cell", "cell"),
    )

    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_org_id: Mapped[str] = mapped_column(String(36))
    station_type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    # The grid cell of (lon, lat), `dashboards.coverage.cell_of`: how villages find it.
    cell: Mapped[int | None] = mapped_column(BIG)
    # Newest event that set the place (opened/updated) and the status, each order-tolerant.
    place_at: Mapped[datetime]
    status_at: Mapped[datetime]


class DashVillageCover(Base):
    """A located village union's nearest active station, kept by the handlers
    (`dashboards.coverage`): the 15-minute circle without looking at a station per request."""

    __tablename__ = "dash_village_cover"
    __table_args__ = (Index("ix_dash_village_cover_cell", "cell"),)

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cell: Mapped[int] = mapped_column(BIG)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    # Metres to the nearest active station within coverage.NEAREST_MAX_M; null: none.
    nearest_m: Mapped[float | None] = mapped_column(Float)


class DashSource(Base):
    """How fresh each source's figures are: the last event applied and when."""

    __tablename__ = "dash_sources"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_event_at: Mapped[datetime]
    applied_at: Mapped[datetime]
    events_applied: Mapped[int] = mapped_column(BIG)


READ_MODELS = (
    DashOrg,
    DashUnit,
    DashCounter,
    DashSubtreeCounter,
    DashPersonSeen,
    DashMember,
    DashMemberMove,
    DashCadre,
    DashCadreTrained,
    DashSession,
    DashCertificate,
    DashStation,
    DashVillageCover,
    DashSource,
)
