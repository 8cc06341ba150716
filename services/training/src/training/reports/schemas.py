"""Report response bodies: figures for an org subtree and a period.

Person-times (人次) and unique persons are two different measures and are always
reported side by side: one person at a three-day session is three person-times
and one unique person.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gonghui_shared.vocabulary import MemberCategory
from training.courses.models import CourseCategory

COURSE_CATEGORY_LABELS_ZH: dict[str, str] = {
    CourseCategory.planting_breeding: "种植养殖",
    CourseCategory.welding_trades: "电焊等技工",
    CourseCategory.ecommerce: "电子商务",
    CourseCategory.childcare_domestic: "育婴师、家政",
    CourseCategory.cadre_training: "工会干部业务培训",
    CourseCategory.law_rights: "法律维权",
    CourseCategory.safety: "安全生产",
    CourseCategory.other: "其他",
}

RURAL_LABOUR = "rural_labour"
# The member categories, then the non-members of the rural labour force.
WORKER_CATEGORY_LABELS_ZH: dict[str, str] = {
    **{c.value: c.label_zh for c in MemberCategory},
    RURAL_LABOUR: "农村劳动力",
}

YuanOut = Annotated[
    str, Field(pattern=r"^\d+\.\d{2}$", description="yuan with 2 decimals", examples=["38.57"])
]

PERSON_TIMES = (
    "person-times (人次): attendance records, one per person per session day attended; "
    "one person at a 3-day session is 3 person-times"
)
UNIQUE_PERSONS = (
    "unique persons (人数): distinct people among those attendance records, "
    "however many days or sessions each attended"
)


class Period(BaseModel):
    from_: date = Field(serialization_alias="from", description="first day, inclusive")
    to: date = Field(description="last day, inclusive")


class OrgRef(BaseModel):
    id: str
    name: str
    path: str


class CourseCategoryFigures(BaseModel):
    category: str = Field(examples=["welding_trades"])
    label_zh: str = Field(examples=["电焊等技工"])
    sessions_held: int = Field(description="completed sessions whose last day is in the period")
    person_times: int = Field(description=PERSON_TIMES)
    unique_persons: int = Field(description=UNIQUE_PERSONS)
    certificates: int = Field(description="valid certificates issued in the period")


class WorkerCategoryFigures(BaseModel):
    category: str = Field(
        examples=["migrant_worker"],
        description="the member category, or `rural_labour` for a non-member (农村劳动力)",
    )
    label_zh: str = Field(examples=["农民工"])
    person_times: int = Field(description=PERSON_TIMES)
    unique_persons: int = Field(description=UNIQUE_PERSONS)
    certificates: int = Field(description="valid certificates issued in the period")


class CostFigures(BaseModel):
    planned: YuanOut = Field(description="planned budget entries dated in the period")
    spent: YuanOut = Field(description="spent budget entries dated in the period")
    per_person_time: YuanOut | None = Field(
        description="spent / person_times, rounded half up to the fen; null without attendance"
    )
    per_certified_person: YuanOut | None = Field(
        description="spent / certified_persons, rounded half up; null without certificates"
    )


class ReportSummary(BaseModel):
    """Training figures for an org's whole subtree over a period of days."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": {"id": "0193a1c2-…", "name": "凤庆县总工会", "path": "/0193a1c2-…/"},
                    "period": {"from": "2026-01-01", "to": "2026-12-31"},
                    "sessions_held": 31,
                    "sessions_scheduled": 32,
                    "person_times": 4805,
                    "unique_persons": 1240,
                    "certificates": 1704,
                    "certificates_revoked": 71,
                    "certified_persons": 1039,
                    "by_course_category": [
                        {
                            "category": "welding_trades",
                            "label_zh": "电焊等技工",
                            "sessions_held": 6,
                            "person_times": 930,
                            "unique_persons": 570,
                            "certificates": 544,
                        }
                    ],
                    "by_worker_category": [
                        {
                            "category": "migrant_worker",
                            "label_zh": "农民工",
                            "person_times": 1994,
                            "unique_persons": 496,
                            "certificates": 713,
                        }
                    ],
                    "cost": {
                        "planned": "282800.00",
                        "spent": "270025.50",
                        "per_person_time": "56.20",
                        "per_certified_person": "259.89",
                    },
                    "competition_participants": 60,
                    "generated_at": "2026-11-24T08:00:00Z",
                }
            ]
        }
    )

    org: OrgRef
    period: Period
    sessions_held: int = Field(description="completed sessions whose last day is in the period")
    sessions_scheduled: int = Field(
        description="sessions not cancelled (any other state) whose first day is in the period"
    )
    person_times: int = Field(description=PERSON_TIMES + "; counted by the day attended")
    unique_persons: int = Field(description=UNIQUE_PERSONS)
    certificates: int = Field(description="certificates issued in the period and still valid")
    certificates_revoked: int = Field(
        description="certificates issued in the period that have been revoked (not in "
        "`certificates`)"
    )
    certified_persons: int = Field(
        description="distinct people holding a valid certificate issued in the period"
    )
    by_course_category: list[CourseCategoryFigures] = Field(
        description="every course category, zeros included"
    )
    by_worker_category: list[WorkerCategoryFigures] = Field(
        description="every worker category, zeros included: how many migrant workers trained"
    )
    cost: CostFigures
    competition_participants: int = Field(
        description="distinct people entered in skill competitions hosted in the subtree that "
        "start in the period; a separate measure, not included in the figures above"
    )
    generated_at: datetime


class UntrainedCadre(BaseModel):
    member_no: str
    name: str | None = Field(description="null while membership has not announced the member")
    org_id: str = Field(description="the org of the cadre's post (the first, if several)")
    org_path: str
    org_name: str | None


class CadreTrainingCoverage(BaseModel):
    """Cadre training coverage (工会干部培训覆盖) of an org's subtree."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": {"id": "0193a1c2-…", "name": "凤庆县总工会", "path": "/0193a1c2-…/"},
                    "cadres_total": 945,
                    "cadres_trained": 945,
                    "cadres_untrained": 0,
                    "rate": 1.0,
                    "untrained": [],
                    "generated_at": "2026-11-24T08:00:00Z",
                }
            ]
        }
    )

    org: OrgRef
    cadres_total: int = Field(description="distinct members holding a cadre post in the subtree")
    cadres_trained: int = Field(
        description="those who completed a cadre-training session (hosted anywhere, any time)"
    )
    cadres_untrained: int
    rate: float | None = Field(description="trained / total, 4 decimals; null without cadres")
    untrained: list[UntrainedCadre] = Field(
        description="untrained cadres by org path then member number, at most `limit`"
    )
    generated_at: datetime
