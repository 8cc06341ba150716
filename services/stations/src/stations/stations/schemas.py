"""Station request and response bodies.

Points name their coordinate system: requests carry `crs` ("wgs84", the default, or "gcj02",
what Amap/Tencent maps hand out) next to `lon`/`lat`; responses give `location` in both systems.
Money is yuan with at most 2 decimals in, a 2-decimal string out (stored as integer fen).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gonghui_shared.identity import normalize_phone
from stations.geo import Crs
from stations.stations.models import StationStatus, StationType

STATION_TYPE_LABELS_ZH: dict[StationType, str] = {
    StationType.outdoor_worker_station: "工会户外劳动者服务站点（爱心驿站）",
    StationType.worker_home: "职工之家",
    StationType.village_service_point: "村级工会服务点",
    StationType.liaison_station: "联络站",
    StationType.other: "其他",
}

MAX_PHOTOS = 20
# monthly_subsidy_fen is a BIGINT, but nobody subsidises a station with a million a month.
MAX_MONTHLY_YUAN = Decimal("1000000")

YuanIn = Annotated[
    Decimal,
    Field(
        ge=0,
        le=MAX_MONTHLY_YUAN,
        max_digits=10,
        decimal_places=2,
        description="yuan, at most 2 decimal places",
        examples=["100.00"],
    ),
]
Lon = Annotated[float, Field(ge=-180, le=180, description="longitude in `crs`")]
Lat = Annotated[float, Field(ge=-90, le=90, description="latitude in `crs`")]
PhotoRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        pattern=r"^\S+$",
        description="an object-store key or a URL",
        examples=["stations/2026/11/jzl-front.jpg"],
    ),
]
AmenityCode = Annotated[str, Field(min_length=1, max_length=40, examples=["drinking_water"])]
RegionCode = Annotated[
    str, Field(pattern=r"^\d{12}$", description="12-digit statistical region code")
]


def to_fen(yuan: Decimal) -> int:
    """Yuan to fen, exactly (the schema already allows at most 2 decimal places)."""
    return int((yuan * 100).to_integral_exact())


def yuan(fen: int) -> str:
    """Fen to a yuan string with exactly 2 decimals: 10000 -> "100.00"."""
    return f"{Decimal(fen).scaleb(-2):.2f}"


def _phone(value: str | None) -> str | None:
    # normalize_phone raises InvalidPhone, a ValueError: a 422 naming contact_phone.
    return None if value is None else normalize_phone(value)


_CREATE_EXAMPLE: dict[str, Any] = {
    "station_type": "village_service_point",
    "name": "京竹林村邮乐购工会服务点",
    "host_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
    "host_partner": "中国邮政村邮乐购",
    "address": "凤山镇京竹林村委会旁",
    "region_code": "530921101201",
    "lon": 99.9318,
    "lat": 24.5812,
    "crs": "gcj02",
    "contact_name": "杨定忠",
    "contact_phone": "13887012345",
    "amenities": ["drinking_water", "phone_charging", "seating", "first_aid_kit"],
    "opening_hours": "Mo-Su 08:00-20:00",
    "timezone": "Asia/Shanghai",
    "photos": ["stations/jzl/front.jpg"],
    "checked_on": "2026-11-20",
}


class StationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    station_type: StationType
    name: str = Field(min_length=2, max_length=200)
    host_org_id: str = Field(max_length=36, description="the union that runs it (membership id)")
    host_partner: str | None = Field(
        None, max_length=200, description="e.g. 中国邮政村邮乐购, a rural bank outlet"
    )
    address: str | None = Field(None, max_length=300)
    region_code: RegionCode | None = Field(None, description="the host org's when omitted")
    lon: Lon
    lat: Lat
    crs: Crs = Crs.wgs84
    contact_name: str | None = Field(None, max_length=50)
    contact_phone: str | None = Field(None, max_length=30, examples=["13887012345"])
    amenities: list[AmenityCode] = Field(default_factory=list, max_length=50)
    opening_hours: str = Field(
        "24/7", max_length=300, description="OpenStreetMap opening_hours syntax"
    )
    timezone: str = Field("Asia/Shanghai", max_length=40, description="IANA time zone")
    photos: list[PhotoRef] = Field(default_factory=list, max_length=MAX_PHOTOS)
    checked_on: date | None = Field(None, description="when hours and amenities were checked")
    monthly_subsidy: YuanIn | None = Field(
        None, description="100.00 for a village service point when omitted, else 0.00"
    )

    @field_validator("contact_phone")
    @classmethod
    def _normal_phone(cls, value: str | None) -> str | None:
        return _phone(value)


# Fields a PATCH may clear with an explicit null; every other one may only be omitted or set.
NULLABLE = frozenset(
    {"host_partner", "address", "region_code", "contact_name", "contact_phone", "checked_on"}
)


class StationUpdate(BaseModel):
    """Descriptive fields; omit a field to leave it alone. Move a station with lon+lat (+crs)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "amenities": ["drinking_water", "phone_charging", "microwave"],
                    "opening_hours": "Mo-Su 06:00-09:00,17:00-21:00",
                    "checked_on": "2026-11-23",
                },
                {"lon": 99.9321, "lat": 24.5815, "crs": "gcj02"},
            ]
        }
    )

    station_type: StationType | None = None
    name: str | None = Field(None, min_length=2, max_length=200)
    host_partner: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=300)
    region_code: RegionCode | None = None
    lon: Lon | None = None
    lat: Lat | None = None
    crs: Crs | None = None
    contact_name: str | None = Field(None, max_length=50)
    contact_phone: str | None = Field(None, max_length=30)
    amenities: list[AmenityCode] | None = Field(None, max_length=50)
    opening_hours: str | None = Field(None, max_length=300)
    timezone: str | None = Field(None, max_length=40)
    photos: list[PhotoRef] | None = Field(None, max_length=MAX_PHOTOS)
    checked_on: date | None = None
    monthly_subsidy: YuanIn | None = None

    @field_validator("contact_phone")
    @classmethod
    def _normal_phone(cls, value: str | None) -> str | None:
        return _phone(value)

    @field_validator(
        "station_type",
        "name",
        "lon",
        "lat",
        "crs",
        "amenities",
        "opening_hours",
        "timezone",
        "photos",
        "monthly_subsidy",
    )
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        # Only runs for values actually sent: an explicit null is an error, omission is not.
        if value is None:
            raise ValueError("cannot be null; omit the field to leave it unchanged")
        return value


class StatusChange(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "店铺装修，暂停服务"}]})

    reason: str = Field(min_length=1, max_length=500)


class Reopen(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "装修完成"}]})

    reason: str | None = Field(None, max_length=500)


class Point(BaseModel):
    lon: float
    lat: float


class Location(BaseModel):
    """The same point in both systems: WGS-84 (stored, GPS, OSM) and GCJ-02 (Chinese maps)."""

    wgs84: Point
    gcj02: Point


class DeepLinks(BaseModel):
    amap: str = Field(description="Amap (高德) marker, GCJ-02")
    baidu: str = Field(description="Baidu map marker, GCJ-02 via coord_type=gcj02")
    geo: str = Field(description="RFC 5870 geo URI, WGS-84")


class StationRead(BaseModel):
    id: str
    station_type: StationType
    station_type_label_zh: str
    name: str
    host_org_id: str
    host_org_path: str
    host_partner: str | None
    address: str | None
    region_code: str | None
    location: Location
    h3_r7: str
    h3_r9: str
    contact_name: str | None
    contact_phone: str | None = Field(description="E.164; a public service number")
    status: StationStatus
    status_reason: str | None
    amenities: list[str]
    opening_hours: str
    timezone: str
    open_now: bool = Field(description="active and open by its hours right now")
    photos: list[str]
    checked_on: date | None
    monthly_subsidy: str = Field(examples=["100.00"])
    deep_links: DeepLinks
    created_at: datetime
    updated_at: datetime


class OpenAt(BaseModel):
    """Whether a station is open at a time, in its own time zone."""

    station_id: str
    at: datetime = Field(description="the time asked about, in the station's time zone")
    timezone: str
    opening_hours: str
    status: StationStatus
    state: Literal["open", "closed", "unknown"] = Field(
        description="unknown: the hours say so (e.g. `unknown` or a comment); not active: closed"
    )
    open: bool
    next_change: datetime | None = Field(
        description="when `state` next changes by the hours; null for 24/7, far-off changes or "
        "a station that is not active"
    )


class AmenityRead(BaseModel):
    code: str = Field(examples=["drinking_water"])
    osm_tags: list[str] = Field(
        examples=[["amenity=drinking_water"]], description="empty: no established OSM tag"
    )
    label_zh: str = Field(examples=["饮水"])
    label_en: str = Field(examples=["Drinking water"])
