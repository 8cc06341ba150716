"""Administrative unit and coverage response bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UnitLevel = Literal["province", "city", "county", "township", "village"]


class UnitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="12-digit statistical region code (统计用区划代码)")
    name: str
    level: UnitLevel
    parent_code: str | None
    urban_rural_code: str | None = Field(
        description="城乡分类代码 of a village-level unit (111 主城区 … 220 村庄)"
    )
    lon: float | None
    lat: float | None


class UnitsImported(BaseModel):
    """What an import did; importing the same file again creates and updates nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"created": 203, "updated": 0, "unchanged": 0, "total": 203}]
        }
    )

    created: int = Field(description="units that were not known before")
    updated: int = Field(description="known units whose name, classification or position changed")
    unchanged: int = Field(description="known units the file repeats as they are")
    total: int = Field(description="units in the file")


class LevelCoverage(BaseModel):
    """How many units of one level have a union of the matching type (建会率)."""

    level: UnitLevel | None = Field(description="null when the region has no level below it")
    total: int
    covered: int
    rate: float | None = Field(description="covered / total; null when total is 0")


class UncoveredUnit(BaseModel):
    code: str
    name: str
    level: UnitLevel
    parent_code: str | None


class Coverage(BaseModel):
    """Union coverage of an org's region: direct children, every level below, what is missing.

    A unit is covered when an active union of the matching territorial type has the
    unit's code as its region code (乡镇 ↔ township_union, 村/社区 ↔ village_union).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "region_code": "530921000000",
                    "unit_name": "凤庆县",
                    "direct": {"level": "township", "total": 13, "covered": 13, "rate": 1.0},
                    "levels": [
                        {"level": "township", "total": 13, "covered": 13, "rate": 1.0},
                        {"level": "village", "total": 189, "covered": 188, "rate": 0.9947},
                    ],
                    "uncovered": [
                        {
                            "code": "530921013014",
                            "name": "杨河村",
                            "level": "village",
                            "parent_code": "530921013000",
                        }
                    ],
                    "uncovered_total": 1,
                }
            ]
        }
    )

    org_id: str
    region_code: str
    unit_name: str | None = Field(description="null when the region's unit was never imported")
    direct: LevelCoverage = Field(description="the units directly under the org's region")
    levels: list[LevelCoverage] = Field(description="every level below the region, top down")
    uncovered: list[UncoveredUnit] = Field(
        description="units without a union, by code, at most `limit`"
    )
    uncovered_total: int
