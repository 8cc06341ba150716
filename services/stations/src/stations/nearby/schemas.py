"""Nearby search (the 15-minute service circle): query parameters and the result page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams

from stations.geo import Crs
from stations.stations.models import StationType

MAX_RADIUS_M = 20_000.0
MAX_MINUTES = 120.0
DEFAULT_MINUTES = 15.0
MAX_LIMIT = 100


class NearbyParams(BaseModel):
    """The query of `GET /v1/stations/nearby`, as `search` takes it (`**dict(params)`)."""

    lon: float = Field(ge=-180, le=180, description="longitude, in `crs`")
    lat: float = Field(ge=-90, le=90, description="latitude, in `crs`")
    crs: Crs = Field(
        Crs.wgs84, description="datum of lon/lat: wgs84 (GPS) or gcj02 (Amap, Tencent)"
    )
    minutes: float | None = Field(
        None, gt=0, le=MAX_MINUTES, description="walking minutes (default 15)"
    )
    radius_m: float | None = Field(
        None, gt=0, le=MAX_RADIUS_M, description="radius in metres, instead of minutes"
    )
    amenities: list[str] = Field(
        default_factory=list,
        alias="amenity",
        description="repeatable; a station must offer every amenity listed",
    )
    open_now: bool = Field(False, description="only stations open at `at`")
    at: datetime | None = Field(
        None, description="when `open_now` is evaluated (ISO 8601, no offset: Beijing time)"
    )
    station_type: StationType | None = Field(None, alias="type", title="Type")
    limit: int = Field(20, ge=1, le=MAX_LIMIT, description="items per page")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")


def parse_nearby_query(query: QueryParams) -> NearbyParams:
    """The query as `NearbyParams`; raises pydantic's ValidationError."""
    values: dict[str, Any] = dict(query)  # a repeated parameter: its last value, as FastAPI
    if "amenity" in values:
        values["amenity"] = query.getlist("amenity")
    return NearbyParams.model_validate(values)


async def nearby_params(request: Request) -> NearbyParams:
    """The query parameters, validated at once as one model.

    FastAPI's own handling of eleven declared query parameters cost more than the rest of the
    route's framework work together (it inspects each parameter's annotation anew on every
    request); one model validation answers the same, with the same errors (422, each naming
    its field). So the route reads its query here and documents it with
    `NEARBY_PARAMETERS`. A coroutine on purpose: FastAPI runs a plain function dependency in
    a worker thread, a thread hand-off on every search.
    """
    try:
        return parse_nearby_query(request.query_params)
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI query parameters, as FastAPI documents declared ones."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


# The route's `openapi_extra`: what `nearby_params` reads, for the OpenAPI document.
NEARBY_PARAMETERS = {"parameters": _query_parameters(NearbyParams)}


class Point(BaseModel):
    lon: float
    lat: float


class Location(BaseModel):
    """One point in both datums: WGS-84 (stored, GPS) and GCJ-02 (Chinese map apps)."""

    wgs84: Point
    gcj02: Point


class NearbyStation(BaseModel):
    id: str
    name: str
    station_type: StationType
    address: str | None
    location: Location
    amenities: list[str]
    opening_hours: str = Field(description="OpenStreetMap `opening_hours` syntax")
    open_now: bool = Field(description="open at the page's `open_at`, in the station's time zone")
    distance_m: float = Field(description="great-circle distance from the query point, metres")
    walking_minutes: float = Field(description="straight-line walking time at the stated speed")
    navigation: dict[str, str] = Field(
        description="deep links: amap (GCJ-02), baidu (coord_type=gcj02), geo (WGS-84)"
    )


class NearbyPage(BaseModel):
    """Active stations within the circle, nearest first (ties by id)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "center": {
                        "wgs84": {"lon": 115.8582, "lat": 28.6829},
                        "gcj02": {"lon": 115.8639, "lat": 28.6796},
                    },
                    "walking_speed_kmh": 4.5,
                    "minutes": 15,
                    "radius_m": 1125,
                    "open_at": "2026-11-24T08:30:00+08:00",
                    "items": [
                        {
                            "id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                            "name": "八一广场环卫爱心驿站",
                            "station_type": "outdoor_worker_station",
                            "address": "南昌市东湖区八一广场东侧",
                            "location": {
                                "wgs84": {"lon": 115.8601, "lat": 28.6815},
                                "gcj02": {"lon": 115.8658, "lat": 28.6782},
                            },
                            "amenities": ["drinking_water", "phone_charging", "microwave"],
                            "opening_hours": "24/7",
                            "open_now": True,
                            "distance_m": 241.7,
                            "walking_minutes": 3.2,
                            "navigation": {
                                "amap": "https://uri.amap.com/marker?position=115.865800,"
                                "28.678200&name=...&coordinate=gaode&callnative=1"
                            },
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    center: Location = Field(description="the query point in both datums")
    walking_speed_kmh: float = Field(description="the speed that turns minutes into metres")
    minutes: float = Field(description="the walking time of the radius")
    radius_m: float = Field(description="the radius searched, metres")
    open_at: datetime = Field(description="when `open_now` was evaluated")
    items: list[NearbyStation]
    next_cursor: str | None = Field(None, description="null on the last page")
