"""Course request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from training.courses.models import CourseCategory, TargetGroup

Skill = Annotated[str, Field(min_length=1, max_length=50)]
Title = Annotated[str, Field(min_length=2, max_length=200)]
Hours = Annotated[float, Field(gt=0, le=1000, description="class hours (学时)")]
AttendanceRate = Annotated[
    float,
    Field(gt=0, le=1, description="share of session days to attend to complete (0.8 = 80%)"),
]


def _distinct(values: list[str]) -> list[str]:
    # Order kept: the first mention is how the organiser listed it.
    return list(dict.fromkeys(values))


class CourseCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "owner_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "电焊工职业技能培训",
                    "category": "welding_trades",
                    "skills": ["焊条电弧焊", "安全操作"],
                    "target_groups": ["migrant_workers", "rural_labour"],
                    "leads_to_certificate": True,
                    "hours": 56,
                    "min_attendance_rate": 0.8,
                },
                {
                    "owner_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "育婴师培训",
                    "category": "childcare_domestic",
                    "skills": ["婴幼儿生活照料", "早期教育"],
                    "target_groups": ["rural_labour"],
                    "leads_to_certificate": True,
                    "hours": 40,
                },
                {
                    "owner_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "茶叶种植管理",
                    "category": "planting_breeding",
                    "skills": ["茶园管理", "病虫害防治"],
                    "target_groups": ["rural_labour", "migrant_workers"],
                    "hours": 16,
                },
                {
                    "owner_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "电子商务直播带货",
                    "category": "ecommerce",
                    "skills": ["网店运营", "直播销售"],
                    "target_groups": ["new_employment", "rural_labour"],
                    "hours": 24,
                },
                {
                    "owner_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "工会干部业务知识培训",
                    "category": "cadre_training",
                    "skills": ["工会法", "会员发展", "经费管理"],
                    "target_groups": ["cadres"],
                    "hours": 16,
                    "min_attendance_rate": 1.0,
                },
            ]
        },
    )

    owner_org_id: str = Field(description="the org whose catalogue it joins; its subtree sees it")
    title: Title
    category: CourseCategory
    skills: list[Skill] = Field(default_factory=list, max_length=30)
    target_groups: list[TargetGroup] = Field(default_factory=list, max_length=len(TargetGroup))
    leads_to_certificate: bool = False
    hours: Hours
    min_attendance_rate: AttendanceRate = 0.8

    @field_validator("skills", "target_groups")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        return _distinct(values)


class CourseUpdate(BaseModel):
    """Omit a field to leave it alone; none of them can be set to null."""

    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"hours": 64, "skills": ["焊条电弧焊", "气体保护焊"]}]},
    )

    title: Title | None = None
    skills: list[Skill] | None = Field(None, max_length=30)
    target_groups: list[TargetGroup] | None = Field(None, max_length=len(TargetGroup))
    leads_to_certificate: bool | None = None
    hours: Hours | None = None
    min_attendance_rate: AttendanceRate | None = None

    @field_validator("*")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @field_validator("skills", "target_groups")
    @classmethod
    def _no_repeats(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _distinct(values)


class CourseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_org_id: str
    owner_org_path: str
    title: str
    category: CourseCategory
    skills: list[str]
    target_groups: list[TargetGroup]
    leads_to_certificate: bool
    hours: float
    min_attendance_rate: float
    created_by: str
    created_at: datetime
    updated_at: datetime
