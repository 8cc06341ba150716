"""Admission request and response bodies: rosters, applications, decisions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from gonghui_shared.vocabulary import (
    Gender,
    HouseholdType,
    LabelledEnum,
    MemberCategory,
    NewEmploymentSubtype,
)
from membership.admissions.models import ApplicationStatus
from membership.cards.schemas import CardToken
from membership.members.models import MemberStatus


def _vocabulary(enum: type[LabelledEnum]) -> BeforeValidator:
    """Accept a vocabulary's code, its Chinese label or a common variant (农民工, 外卖骑手 …)."""

    def parse(value: Any) -> Any:
        return enum.parse(value) if isinstance(value, str) else value

    return BeforeValidator(parse)


Text50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
DocNo = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="批复文号: the number of the county federation's approval document"),
]


# ---------------------------------------------------------------- rosters


class RosterCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "title": "2026年第一批农民工入会名册",
                }
            ]
        }
    )

    org_id: str = Field(description="the union that submits the roster")
    title: Text200


class StatusCounts(BaseModel):
    """How many applications of a roster are in each status."""

    submitted: int = 0
    on_roster: int = 0
    approved: int = 0
    rejected: int = 0
    total: int = 0


class RosterRead(BaseModel):
    id: str
    org_id: str
    title: str
    source: str = Field(description="manual, or import for an uploaded file", examples=["manual"])
    filename: str | None
    submitted_by: str
    created_at: datetime
    counts: StatusCounts


class RosterApplicationsAdd(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"application_ids": ["0193a1c2-8e2f-7b4c-8d6e-2f3a4b5c6d7e"]}]
        }
    )

    application_ids: list[str] = Field(min_length=1, max_length=500)


# ---------------------------------------------------------------- applications


class ApplicationCreate(BaseModel):
    """A worker's signed application to join (入会申请书), as the org records it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "roster_id": "0193a1c2-7f00-7a3b-9c5d-1e2f3a4b5c6d",
                    "name": "李春华",
                    "id_number": "530921198807150351",
                    "phone": "13800138000",
                    "household_type": "rural",
                    "category": "migrant_worker",
                    "employer": "凤庆县滇红茶厂",
                    "form_ref": "RH-2026-00012",
                }
            ]
        }
    )

    org_id: str
    roster_id: str | None = Field(
        None, description="put it straight onto this roster of the same org"
    )
    name: Text50
    id_number: str = Field(max_length=40, description="18-digit resident ID number (公民身份号码)")
    phone: str = Field(max_length=40, description="mobile, or fixed line with its area code")
    household_type: Annotated[HouseholdType, _vocabulary(HouseholdType)]
    category: Annotated[MemberCategory, _vocabulary(MemberCategory)]
    subtype: Annotated[NewEmploymentSubtype | None, _vocabulary(NewEmploymentSubtype)] = Field(
        None, description="required for new_employment, absent otherwise"
    )
    employer: Text200 | None = None
    form_ref: Text100 = Field(
        description="reference of the signed paper form (申请书编号 or scan id)"
    )


class SelfApplicationCreate(BaseModel):
    """A person's own application to join, from the mobile app (自助入会申请).

    The applicant is the caller (logged in by phone, no member number yet); the
    application itself is the signed form, so it has no paper `form_ref`: it is
    recorded as `online:<application id>`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "name": "李春华",
                    "id_number": "530921198807150351",
                    "phone": "13800138000",
                    "household_type": "rural",
                    "category": "migrant_worker",
                    "employer": "凤庆县滇红茶厂",
                }
            ]
        }
    )

    org_id: str = Field(description="the union to join (a village, community or enterprise union)")
    name: Text50
    id_number: str = Field(max_length=40, description="18-digit resident ID number (公民身份号码)")
    phone: str = Field(max_length=40, description="mobile, or fixed line with its area code")
    household_type: Annotated[HouseholdType, _vocabulary(HouseholdType)]
    category: Annotated[MemberCategory, _vocabulary(MemberCategory)]
    subtype: Annotated[NewEmploymentSubtype | None, _vocabulary(NewEmploymentSubtype)] = Field(
        None, description="required for new_employment, absent otherwise"
    )
    employer: Text200 | None = None


class ApplicationStep(BaseModel):
    """One step of an application's history: who moved it, when, and why."""

    from_state: str | None = Field(serialization_alias="from")
    to: str
    actor: str
    role: str
    reason: str | None
    details: dict[str, Any] | None = None
    at: datetime


class ApplicationRead(BaseModel):
    """An application; ID number and phone are masked unless you may read personal data."""

    id: str
    org_id: str
    roster_id: str | None
    status: ApplicationStatus
    name: str
    id_number: str = Field(examples=["530921********0351"])
    phone: str = Field(examples=["138****8000"])
    gender: Gender
    birth_year: int
    birth_date: date | None = Field(
        None, description="only with members.read_personal: with the masked ID it would reveal it"
    )
    household_type: HouseholdType
    category: MemberCategory
    subtype: NewEmploymentSubtype | None
    employer: str | None
    form_ref: str
    submitted_by: str
    decided_by: str | None
    decided_at: datetime | None
    approval_doc_no: str | None
    rejection_reason: str | None
    member_id: str | None
    created_at: datetime
    updated_at: datetime


class ApplicationDetail(ApplicationRead):
    history: list[ApplicationStep]


# ---------------------------------------------------------------- decisions


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"approval_doc_no": "凤工复〔2026〕12号"}]}
    )

    approval_doc_no: DocNo


class RejectionCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "申请书未由本人签字，请本人重新填写"}]}
    )

    reason: Reason


class MemberSummary(BaseModel):
    member_no: str = Field(examples=["5309212026000001"])
    name: str
    org_id: str
    category: MemberCategory
    joined_on: date
    status: MemberStatus


class ApprovalRead(BaseModel):
    """The approved application, the new member and their member card."""

    application: ApplicationRead
    member: MemberSummary
    card: CardToken


class SkippedApplication(BaseModel):
    application_id: str
    code: str = Field(examples=["already_member"])


class RosterApprovalRead(BaseModel):
    """The result of approving a whole roster (批复) in one transaction."""

    approved: int
    member_nos: list[str]
    skipped: list[SkippedApplication]


class RosterBatchApprovalRead(RosterApprovalRead):
    """The result of approving a whole roster (批复) in batches, one transaction each."""

    batches: int = Field(description="transactions it took; each committed on its own")
