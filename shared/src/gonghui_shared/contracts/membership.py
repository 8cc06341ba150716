"""Events the membership service publishes.

Events carry no plain ID number or phone: consumers get what they count by
(category, household type, gender, birth year, org) and the member number.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from gonghui_shared.contracts.envelope import Event


class OrgCreated(Event):
    """A union organisation was set up (建会)."""

    type = "membership.org.created"

    org_id: str
    parent_id: str | None
    path: str = Field(description="materialised path: /<root id>/…/<org id>/")
    org_type: str = Field(examples=["village_union"])
    name: str
    region_code: str = Field(examples=["530921101201"])
    founded_on: date | None = None
    lon: float | None = Field(None, description="WGS-84 longitude, when known")
    lat: float | None = Field(None, description="WGS-84 latitude, when known")


class OrgUpdated(Event):
    """An organisation's descriptive fields changed (name, chair, location, status)."""

    type = "membership.org.updated"

    org_id: str
    path: str
    name: str
    region_code: str
    status: str
    changed: list[str]
    lon: float | None = None
    lat: float | None = None


class ApplicationSubmitted(Event):
    """A worker's signed application to join reached an org (入会申请)."""

    type = "membership.application.submitted"

    application_id: str
    org_id: str
    roster_id: str | None
    category: str
    subtype: str | None


class MemberApproved(Event):
    """The county federation approved an application; the member number is issued."""

    type = "membership.member.approved"

    member_id: str
    member_no: str = Field(examples=["5309212026000001"])
    application_id: str
    org_id: str
    name: str
    category: str = Field(examples=["migrant_worker"])
    subtype: str | None = None
    household_type: str = Field(examples=["rural"])
    gender: str
    birth_year: int
    approval_doc_no: str = Field(examples=["凤工复〔2026〕12号"])
    approved_at: datetime


class ApplicationRejected(Event):
    """The county federation rejected an application, with a reason."""

    type = "membership.application.rejected"

    application_id: str
    org_id: str
    reason: str


class MemberTransferred(Event):
    """A member moved to another union (会员关系接转); history and years are kept."""

    type = "membership.member.transferred"

    member_id: str
    member_no: str
    transfer_id: str
    from_org_id: str
    to_org_id: str
    from_org_path: str
    category: str


class MembershipEnded(Event):
    """Base of the three ways a membership ends."""

    type = "membership.member.ended"

    member_id: str
    member_no: str
    org_id: str
    category: str
    reason: str


class MemberWithdrawn(MembershipEnded):
    """The member left of their own will (退会)."""

    type = "membership.member.withdrawn"


class MemberLapsed(MembershipEnded):
    """The membership lapsed (for example dues unpaid)."""

    type = "membership.member.lapsed"


class MemberExpelled(MembershipEnded):
    """The member was expelled (除名)."""

    type = "membership.member.expelled"


class CadreAppointed(Event):
    """A member was appointed to a role in an org (工会干部)."""

    type = "membership.cadre.appointed"

    cadre_id: str
    org_id: str
    member_id: str
    member_no: str
    role: str = Field(examples=["chair"])
    appointed_on: date


class RegisteredUnit(BaseModel):
    """One administrative unit as membership now holds it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str = Field(description="12-digit statistical region code", examples=["530921101201"])
    name: str = Field(examples=["东城社区"])
    level: str = Field(examples=["village"], description="county, township or village (…)")
    parent_code: str | None = Field(examples=["530921101000"])
    urban_rural_code: str | None = Field(None, examples=["111"], description="城乡分类代码")
    lon: float | None = Field(None, description="WGS-84 longitude, when known")
    lat: float | None = Field(None, description="WGS-84 latitude, when known")


class UnitsRegistered(Event):
    """Administrative units (行政区划) were imported: one chunk of one import's units.

    Every unit of the imported file is announced, changed or not, with the values
    membership holds after the import; a large file comes in several chunks of the
    same `import_id`. Units are never deleted.
    """

    type = "membership.units.registered"

    import_id: str
    chunk: int = Field(description="1-based number of this chunk", examples=[1])
    chunks: int = Field(description="how many chunks the import announced", examples=[1])
    units: list[RegisteredUnit]


EVENTS: tuple[type[Event], ...] = (
    OrgCreated,
    OrgUpdated,
    ApplicationSubmitted,
    MemberApproved,
    ApplicationRejected,
    MemberTransferred,
    MemberWithdrawn,
    MemberLapsed,
    MemberExpelled,
    CadreAppointed,
    UnitsRegistered,
)
