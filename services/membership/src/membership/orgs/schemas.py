"""Org request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from membership.orgs.models import OrgStatus, OrgType
from membership.units.statistical_codes import validate_region_code

RegionCode = Field(
    pattern=r"^\d{12}$", description="12-digit statistical region code (统计用区划代码)"
)


class OrgCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "parent_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "org_type": "village_union",
                    "name": "京竹林村工会委员会",
                    "region_code": "530921101201",
                    "founded_on": "2021-10-15",
                    "chair_name": "杨定忠",
                    "lon": 99.92,
                    "lat": 24.58,
                }
            ]
        }
    )

    parent_id: str | None = Field(
        None, description="null only for a root: a county (or province) federation"
    )
    org_type: OrgType
    name: str = Field(min_length=2, max_length=200)
    region_code: str = RegionCode
    founded_on: date | None = None
    chair_name: str | None = Field(None, max_length=50)
    lon: float | None = Field(None, ge=-180, le=180, description="WGS-84 longitude")
    lat: float | None = Field(None, ge=-90, le=90, description="WGS-84 latitude")

    @field_validator("region_code")
    @classmethod
    def _real_division_code(cls, value: str) -> str:
        return validate_region_code(value)


class OrgUpdate(BaseModel):
    """Descriptive fields only; an org's place in the tree does not change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"chair_name": "毕向春"}]})

    name: str | None = Field(None, min_length=2, max_length=200)
    founded_on: date | None = None
    chair_name: str | None = Field(None, max_length=50)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    status: OrgStatus | None = None

    @field_validator("name", "status")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        # Omit a field to leave it alone; these two cannot be emptied.
        if value is None:
            raise ValueError("cannot be null")
        return value


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    parent_id: str | None
    path: str
    depth: int
    org_type: OrgType
    org_type_label_zh: str
    name: str
    region_code: str
    county_code: str
    founded_on: date | None
    chair_name: str | None
    lon: float | None
    lat: float | None
    status: OrgStatus
    created_at: datetime
    updated_at: datetime
