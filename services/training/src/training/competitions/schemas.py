"""Skill competition bodies: competitions, events (trades), entries, scores, results."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from training.competitions.models import Award, CompetitionStatus

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
Trade = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Employer = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Score = Annotated[
    Decimal,
    Field(ge=0, le=1000, max_digits=6, decimal_places=2, description="0 to 1000, 2 decimals"),
]


class CompetitionCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "2026年凤庆县职工职业技能大赛",
                    "host_org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "starts_on": "2026-10-16",
                    "ends_on": "2026-10-18",
                }
            ]
        }
    )

    title: Title
    host_org_id: str = Field(description="the union holding it, in your scope")
    starts_on: date
    ends_on: date = Field(description="on or after starts_on")

    @model_validator(mode="after")
    def _ends_after_start(self) -> CompetitionCreate:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class CompetitionEventCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"trade": "电焊工"}]})

    trade: Trade = Field(description="the trade competed in, e.g. 电焊工, 茶艺师, 快递员技能")


class EntryCreate(BaseModel):
    """A member by number, or a non-member by name, ID number and phone."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"member_no": "5309212026000001", "employer": "凤庆县滇红茶厂"},
                {
                    "name": "杨春花",
                    "id_number": "530921199001011234",
                    "phone": "13800138000",
                    "employer": "凤山镇茶叶合作社",
                },
            ]
        }
    )

    member_no: str | None = Field(None, min_length=1, max_length=16)
    name: Name | None = Field(None, description="non-members only")
    id_number: str | None = Field(
        None, min_length=1, max_length=40, description="non-members only: 18-digit resident ID"
    )
    phone: str | None = Field(None, min_length=1, max_length=40, description="non-members only")
    employer: Employer | None = None


class ScoreSet(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"score": "92.50"}]})

    score: Score


class AwardQuotas(BaseModel):
    """How many ranks each award covers, given in order: gold, silver, bronze, excellence."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"gold": 1, "silver": 2, "bronze": 3, "excellence": 5}]}
    )

    gold: int = Field(0, ge=0, le=10000, description="一等奖")
    silver: int = Field(0, ge=0, le=10000, description="二等奖")
    bronze: int = Field(0, ge=0, le=10000, description="三等奖")
    excellence: int = Field(0, ge=0, le=10000, description="优秀奖")


class EntryRead(BaseModel):
    """An entry as staff see it; ID number and phone masked unless you may read personal data."""

    id: str
    event_id: str
    member_no: str | None
    name: str
    id_number: str | None = Field(None, examples=["530921********1234"])
    phone: str | None = Field(None, examples=["138****8000"])
    worker_category: str = Field(examples=["migrant_worker", "rural_labour"])
    employer: str | None
    score: Decimal | None
    rank: int | None
    award: Award
    created_at: datetime


class ResultRead(BaseModel):
    """One line of a published result list (no personal data beyond the name)."""

    rank: int
    name: str
    member_no: str | None
    employer: str | None
    score: Decimal
    award: Award


class CompetitionEventRead(BaseModel):
    id: str
    competition_id: str
    trade: str
    entries: int
    results_published: bool
    results: list[ResultRead] | None = Field(None, description="once published, by rank")


class CompetitionRead(BaseModel):
    id: str
    title: str
    host_org_id: str
    host_org_path: str
    starts_on: date
    ends_on: date
    status: CompetitionStatus
    created_by: str
    created_at: datetime


class CompetitionDetail(CompetitionRead):
    events: list[CompetitionEventRead]


class PublishedResult(BaseModel):
    """What publishing an event's results decided."""

    event: CompetitionEventRead
    participants: int
    awards: dict[str, int] = Field(examples=[{"gold": 1, "silver": 2, "bronze": 3}])
