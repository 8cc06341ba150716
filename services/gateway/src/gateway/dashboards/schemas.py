"""Dashboard response bodies: figures per org subtree, built only from the services' events.

Two kinds of figure, both answered from counters per (org, month):

* **stock** figures say how things stand at the end of the period (or now, without `to`):
  members by status and category, cadres, stations, units and coverage;
* **flow** figures count what happened inside the period (every month, without one):
  new members, sessions, person-times (人次), unique persons, certificates, budget spent,
  visits, services used, subsidies paid.

Periods are whole months (`YYYY-MM`, inclusive), the grain of the counters. Money is in fen
(0.01 yuan) as integers, with a yuan string beside it for display.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Month = Annotated[
    str,
    Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="a month, YYYY-MM", examples=["2026-11"]),
]
YuanOut = Annotated[
    str, Field(pattern=r"^-?\d+\.\d{2}$", description="yuan with 2 decimals", examples=["38.57"])
]
Source = Literal["membership", "training", "stations"]

PERSON_TIMES = (
    "person-times (人次): attendance records, one per person per session day attended; "
    "one person at a 3-day session is 3 person-times"
)
UNIQUE_PERSONS = (
    "unique persons (人数): distinct people (person_key) among those attendance records, "
    "however many days, sessions or orgs of the subtree each attended"
)


class Metric(StrEnum):
    """The figures a time series can be drawn for (`GET /v1/dashboard/timeseries?metric=`)."""

    # flow: what happened in each month
    new_members = "new_members"  # 新发展会员
    person_times = "person_times"  # 培训人次
    unique_persons = "unique_persons"  # 培训人数 (distinct within the month)
    sessions_scheduled = "sessions_scheduled"
    sessions_completed = "sessions_completed"
    sessions_cancelled = "sessions_cancelled"
    certificates_issued = "certificates_issued"
    certificates_revoked = "certificates_revoked"
    budget_spent_fen = "budget_spent_fen"
    visits = "visits"  # 驿站服务人次
    services_used = "services_used"
    subsidies_paid_fen = "subsidies_paid_fen"
    # stock: how things stood at the end of each month
    members_active = "members_active"  # 会员总数
    migrant_workers = "migrant_workers"  # 农民工会员
    new_employment = "new_employment"  # 新就业形态劳动者会员


STOCK_METRICS = frozenset({Metric.members_active, Metric.migrant_workers, Metric.new_employment})

METRIC_LABELS_ZH: dict[Metric, str] = {
    Metric.new_members: "新发展会员",
    Metric.person_times: "培训人次",
    Metric.unique_persons: "培训人数",
    Metric.sessions_scheduled: "安排培训班次",
    Metric.sessions_completed: "完成培训班次",
    Metric.sessions_cancelled: "取消培训班次",
    Metric.certificates_issued: "颁发证书",
    Metric.certificates_revoked: "撤销证书",
    Metric.budget_spent_fen: "培训经费支出（分）",
    Metric.visits: "驿站服务人次",
    Metric.services_used: "驿站服务项次",
    Metric.subsidies_paid_fen: "驿站补贴发放（分）",
    Metric.members_active: "会员总数",
    Metric.migrant_workers: "农民工会员",
    Metric.new_employment: "新就业形态劳动者会员",
}

_ORG_EXAMPLE: Any = {
    "id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
    "name": "凤庆县总工会",
    "path": "/0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d/",
    "org_type": "county_federation",
    "region_code": "530921000000",
    "status": "active",
}


class OrgRef(BaseModel):
    id: str
    name: str | None = Field(description="null while the org's own event has not arrived")
    path: str
    org_type: str | None = Field(examples=["village_union"])
    region_code: str | None = Field(examples=["530921101201"])
    status: str | None = Field(examples=["active"])


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: Month | None = Field(
        None, serialization_alias="from", description="first month, inclusive; null: the start"
    )
    to: Month | None = Field(None, description="last month, inclusive; null: now")


class SourceFreshness(BaseModel):
    """How fresh the figures of one producing service are."""

    source: Source
    last_event_at: datetime | None = Field(
        description="occurred_at of the last event of this source applied; null: none yet"
    )
    applied_at: datetime | None = Field(description="when the gateway applied that event")
    events_applied: int = Field(description="events of this source applied since the last rebuild")


class Count(BaseModel):
    key: str = Field(description="the code counted by", examples=["migrant_worker"])
    label_zh: str = Field(examples=["农民工"])
    count: int


class MonthCount(BaseModel):
    month: Month
    count: int


class LevelCoverage(BaseModel):
    """How many units of one level have a union of the matching type (建会率)."""

    level: Literal["county", "township", "village"] | None = Field(
        description="null when the region has no level below it"
    )
    total: int
    covered: int
    rate: float | None = Field(description="covered / total, 4 decimals; null when total is 0")


class UnitFigures(BaseModel):
    """Union coverage of the administrative units of the org's region (建会覆盖), now.

    A unit is covered when an active union of the matching territorial type has the unit's
    code as its region code (township ↔ township_union, village/community ↔ village_union):
    the rule of membership's `GET /v1/orgs/{id}/coverage`.
    """

    sources: list[Source] = ["membership"]
    region_code: str | None
    direct: LevelCoverage = Field(description="the units directly under the org's region")
    levels: list[LevelCoverage] = Field(description="every level below the region, top down")


class MemberFigures(BaseModel):
    sources: list[Source] = ["membership"]
    active: int = Field(description="members in good standing at the end of the period (会员数)")
    by_category: list[Count] = Field(
        description="active members per category (会员类别), every category, zeros included"
    )
    by_status: list[Count] = Field(
        description="every member ever approved in the subtree, by status at the end of the "
        "period: active, withdrawn (退会), lapsed, expelled (除名)"
    )
    migrant_workers: int = Field(description="active members of category migrant_worker (农民工)")
    new_employment: int = Field(
        description="active members of category new_employment (新就业形态劳动者)"
    )
    new_members: int = Field(description="members approved in the period (新发展会员)")
    new_members_per_month: list[MonthCount] = Field(
        description="members approved per month, months without any included: every month "
        "of the period, or without `from` the 12 months ending with `to` (or this month)"
    )


class CadreFigures(BaseModel):
    """Cadres (工会干部) and cadre-training coverage (干部培训覆盖率), now."""

    sources: list[Source] = ["membership", "training"]
    cadres: int = Field(description="distinct members holding a cadre post in the subtree")
    trained: int = Field(
        description="those who attended a session of a course of category cadre_training "
        "(hosted anywhere, any time)"
    )
    rate: float | None = Field(description="trained / cadres, 4 decimals; null without cadres")


class TrainingFigures(BaseModel):
    sources: list[Source] = ["training"]
    sessions_scheduled: int = Field(
        description="sessions announced and not (yet) completed or cancelled, that start in the "
        "period; the three session figures never count a session twice"
    )
    sessions_completed: int = Field(description="sessions completed that end in the period")
    sessions_cancelled: int = Field(description="sessions cancelled that start in the period")
    person_times: int = Field(description=PERSON_TIMES + "; counted by the day attended")
    unique_persons: int = Field(description=UNIQUE_PERSONS)
    certificates_issued: int = Field(description="certificates issued in the period")
    certificates_revoked: int = Field(
        description="of those, revoked since (by the month the certificate was issued)"
    )
    certificates: int = Field(description="certificates_issued - certificates_revoked")
    budget_spent_fen: int = Field(description="spent_fen of sessions completed in the period")
    budget_spent: YuanOut


class CircleCoverage(BaseModel):
    """The 15-minute union service circle (15分钟工会服务圈), now: stations' own rule.

    Units are the active village/community unions of the subtree that have a location; one is
    covered when an active station (run by any org) lies within `radius_m` (great-circle).
    """

    sources: list[Source] = ["membership", "stations"]
    minutes: float = Field(examples=[15.0])
    walking_speed_kmh: float = Field(examples=[4.5])
    radius_m: float = Field(examples=[1125.0])
    units_total: int = Field(description="active village unions in the subtree")
    units_located: int = Field(description="of those, with lon/lat known")
    covered: int
    rate: float | None = Field(description="covered / units_located, 4 decimals")


class StationFigures(BaseModel):
    sources: list[Source] = ["stations"]
    total: int = Field(description="stations hosted in the subtree, any status")
    active: int
    by_type: list[Count] = Field(description="every station type, zeros included (any status)")
    by_status: list[Count] = Field(description="active, suspended, closed")
    circle: CircleCoverage
    visits: int = Field(description="visits recorded in the period (服务人次)")
    services_used: int = Field(description="services used in those visits, summed")
    services_by_kind: list[Count] = Field(
        description="services used per kind, most used first (label_zh: the code when unknown)"
    )
    subsidies_paid_fen: int = Field(description="subsidies paid for months of the period")
    subsidies_paid: YuanOut


class DashboardFigures(BaseModel):
    """Every figure of one org subtree."""

    units: UnitFigures
    members: MemberFigures
    cadres: CadreFigures
    training: TrainingFigures
    stations: StationFigures


_FIGURES_EXAMPLE: Any = {
    "units": {
        "sources": ["membership"],
        "region_code": "530921000000",
        "direct": {"level": "township", "total": 13, "covered": 13, "rate": 1.0},
        "levels": [
            {"level": "township", "total": 13, "covered": 13, "rate": 1.0},
            {"level": "village", "total": 189, "covered": 189, "rate": 1.0},
        ],
    },
    "members": {
        "sources": ["membership"],
        "active": 8423,
        "by_category": [
            {"key": "migrant_worker", "label_zh": "农民工", "count": 6210},
            {"key": "new_employment", "label_zh": "新就业形态劳动者", "count": 412},
            {"key": "employee", "label_zh": "职工", "count": 1701},
            {"key": "other", "label_zh": "其他", "count": 100},
        ],
        "by_status": [
            {"key": "active", "label_zh": "正常", "count": 8423},
            {"key": "withdrawn", "label_zh": "退会", "count": 31},
            {"key": "lapsed", "label_zh": "失效", "count": 12},
            {"key": "expelled", "label_zh": "除名", "count": 1},
        ],
        "migrant_workers": 6210,
        "new_employment": 412,
        "new_members": 640,
        "new_members_per_month": [{"month": "2026-10", "count": 320}],
    },
    "cadres": {"sources": ["membership", "training"], "cadres": 945, "trained": 945, "rate": 1.0},
    "training": {
        "sources": ["training"],
        "sessions_scheduled": 32,
        "sessions_completed": 31,
        "sessions_cancelled": 1,
        "person_times": 4805,
        "unique_persons": 1240,
        "certificates_issued": 1775,
        "certificates_revoked": 71,
        "certificates": 1704,
        "budget_spent_fen": 27002550,
        "budget_spent": "270025.50",
    },
    "stations": {
        "sources": ["stations"],
        "total": 60,
        "active": 57,
        "by_type": [{"key": "village_service_point", "label_zh": "村级工会服务点", "count": 40}],
        "by_status": [{"key": "active", "label_zh": "正常", "count": 57}],
        "circle": {
            "sources": ["membership", "stations"],
            "minutes": 15.0,
            "walking_speed_kmh": 4.5,
            "radius_m": 1125.0,
            "units_total": 189,
            "units_located": 180,
            "covered": 150,
            "rate": 0.8333,
        },
        "visits": 12034,
        "services_used": 20411,
        "services_by_kind": [{"key": "drinking_water", "label_zh": "饮水", "count": 9000}],
        "subsidies_paid_fen": 480000,
        "subsidies_paid": "4800.00",
    },
}

_FRESHNESS_EXAMPLE: Any = [
    {
        "source": "membership",
        "last_event_at": "2026-11-27T08:00:00Z",
        "applied_at": "2026-11-27T08:00:01Z",
        "events_applied": 10512,
    }
]


class DashboardOverview(BaseModel):
    """The figures of an org's whole subtree, and how fresh each source is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": _ORG_EXAMPLE,
                    "period": {"from": "2026-01", "to": "2026-12"},
                    "figures": _FIGURES_EXAMPLE,
                    "freshness": _FRESHNESS_EXAMPLE,
                    "generated_at": "2026-11-27T08:00:02Z",
                }
            ]
        }
    )

    org: OrgRef
    period: Period
    figures: DashboardFigures
    freshness: list[SourceFreshness] = Field(
        description="one per source: membership, training, stations"
    )
    generated_at: datetime


class ChildFigures(BaseModel):
    org: OrgRef
    figures: DashboardFigures


class DashboardChildren(BaseModel):
    """The figures of each direct child org's subtree, for drill-down."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": _ORG_EXAMPLE,
                    "period": {"from": None, "to": None},
                    "children": [
                        {
                            "org": {
                                **_ORG_EXAMPLE,
                                "name": "凤山镇工会",
                                "org_type": "township_union",
                            },
                            "figures": _FIGURES_EXAMPLE,
                        }
                    ],
                    "freshness": _FRESHNESS_EXAMPLE,
                    "generated_at": "2026-11-27T08:00:02Z",
                }
            ]
        }
    )

    org: OrgRef
    period: Period
    children: list[ChildFigures] = Field(description="direct child orgs, by name")
    freshness: list[SourceFreshness]
    generated_at: datetime


class TimeseriesPoint(BaseModel):
    month: Month
    value: int


class DashboardTimeseries(BaseModel):
    """One metric per month over an org's subtree."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": _ORG_EXAMPLE,
                    "metric": "person_times",
                    "label_zh": "培训人次",
                    "kind": "flow",
                    "period": {"from": "2026-09", "to": "2026-11"},
                    "points": [
                        {"month": "2026-09", "value": 410},
                        {"month": "2026-10", "value": 0},
                        {"month": "2026-11", "value": 388},
                    ],
                    "freshness": _FRESHNESS_EXAMPLE,
                    "generated_at": "2026-11-27T08:00:02Z",
                }
            ]
        }
    )

    org: OrgRef
    metric: Metric
    label_zh: str
    kind: Literal["flow", "stock"] = Field(
        description="flow: what happened in the month; stock: how it stood at the month's end"
    )
    period: Period = Field(
        description="as asked; without bounds, from the first month with data to the current one"
    )
    points: list[TimeseriesPoint] = Field(description="every month of the period, in order")
    freshness: list[SourceFreshness]
    generated_at: datetime


class MapStation(BaseModel):
    id: str
    name: str
    station_type: str = Field(examples=["village_service_point"])
    status: Literal["active", "suspended", "closed"]
    host_org_id: str
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")


class MapVillage(BaseModel):
    org_id: str
    name: str | None
    region_code: str | None
    lon: float | None = Field(description="WGS-84; null when membership has no location")
    lat: float | None
    covered: bool = Field(description="an active station lies within radius_m (false unlocated)")
    nearest_station_m: float | None = Field(
        description="distance to the nearest active station (run by any org), metres, "
        "1 decimal; null without a location or when none lies within 5 km"
    )


class DashboardMap(BaseModel):
    """Station points and village unions of a subtree, for the map of 15-minute circles."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": _ORG_EXAMPLE,
                    "minutes": 15.0,
                    "walking_speed_kmh": 4.5,
                    "radius_m": 1125.0,
                    "stations": [
                        {
                            "id": "0193b…",
                            "name": "凤山镇爱心驿站",
                            "station_type": "outdoor_worker_station",
                            "status": "active",
                            "host_org_id": "0193a…",
                            "lon": 99.9281,
                            "lat": 24.5801,
                        }
                    ],
                    "villages": [
                        {
                            "org_id": "0193c…",
                            "name": "东城社区工会",
                            "region_code": "530921101201",
                            "lon": 99.931,
                            "lat": 24.582,
                            "covered": True,
                            "nearest_station_m": 352.4,
                        }
                    ],
                    "freshness": _FRESHNESS_EXAMPLE,
                    "generated_at": "2026-11-27T08:00:02Z",
                }
            ]
        }
    )

    org: OrgRef
    minutes: float
    walking_speed_kmh: float
    radius_m: float = Field(description="the circle's radius in metres: what 15 minutes walk")
    stations: list[MapStation] = Field(description="stations hosted in the subtree, any status")
    villages: list[MapVillage] = Field(description="active village/community unions of the subtree")
    freshness: list[SourceFreshness]
    generated_at: datetime
