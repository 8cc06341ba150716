"""Coverage of the 15-minute service circle: the report for an org subtree."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NearestStation(BaseModel):
    id: str
    name: str
    distance_m: float = Field(description="great-circle distance from the unit, metres")
    walking_minutes: float


class UncoveredUnit(BaseModel):
    org_id: str
    name: str
    region_code: str
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    nearest_station: NearestStation | None = Field(
        description="the nearest active station, null if there is none within 50 km"
    )


class UnlocatedUnit(BaseModel):
    org_id: str
    name: str
    region_code: str


class CoverageRead(BaseModel):
    """Which village/community unions have an active station within `minutes` of walking."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "minutes": 15,
                    "radius_m": 1125,
                    "walking_speed_kmh": 4.5,
                    "units_total": 21,
                    "units_located": 20,
                    "covered": 15,
                    "rate": 0.75,
                    "uncovered": [
                        {
                            "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6e",
                            "name": "京竹林村工会委员会",
                            "region_code": "530921101201",
                            "lon": 99.93,
                            "lat": 24.58,
                            "nearest_station": {
                                "id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6f",
                                "name": "凤山镇邮政村邮乐购服务点",
                                "distance_m": 1830.4,
                                "walking_minutes": 24.4,
                            },
                        }
                    ],
                    "unlocated": [
                        {
                            "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c70",
                            "name": "大寺村工会委员会",
                            "region_code": "530921101202",
                        }
                    ],
                }
            ]
        }
    )

    org_id: str
    minutes: float
    radius_m: float = Field(description="the distance walked in `minutes`, metres")
    walking_speed_kmh: float
    units_total: int = Field(description="village/community unions in the subtree")
    units_located: int = Field(description="those with a location (the rate's denominator)")
    covered: int = Field(description="located units with an active station within the radius")
    rate: float | None = Field(description="covered / units_located; null when none is located")
    uncovered: list[UncoveredUnit]
    unlocated: list[UnlocatedUnit] = Field(description="units membership gave no location")
