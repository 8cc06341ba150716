"""Union organisations (工会组织) as a tree with a materialised path."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from membership.base import Base, Timestamped, id_column


class OrgType(StrEnum):
    province_federation = "province_federation"  # 省总工会
    county_federation = "county_federation"  # 县总工会
    township_union = "township_union"  # 乡镇（街道）工会
    village_union = "village_union"  # 村（社区）工会
    enterprise_union = "enterprise_union"  # 企业工会
    system_union = "system_union"  # 系统工会
    union_federation = "union_federation"  # 工会联合会（区域、行业）


ORG_TYPE_LABELS_ZH = {
    OrgType.province_federation: "省总工会",
    OrgType.county_federation: "县总工会",
    OrgType.township_union: "乡镇（街道）工会",
    OrgType.village_union: "村（社区）工会",
    OrgType.enterprise_union: "企业工会",
    OrgType.system_union: "系统工会",
    OrgType.union_federation: "工会联合会",
}


class OrgStatus(StrEnum):
    active = "active"
    dissolved = "dissolved"


class Org(Timestamped, Base):
    __tablename__ = "orgs"
    __table_args__ = (
        UniqueConstraint("parent_id", "name"),
        Index("ix_orgs_region_code_type", "region_code", "org_type"),
    )

    id: Mapped[str] = id_column()
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id"), index=True)
    # "/<county id>/<township id>/<this id>/": a subtree is a prefix match.
    path: Mapped[str] = mapped_column(String(800), unique=True)
    depth: Mapped[int]
    org_type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    # 12-digit statistical region code (统计用区划代码) of where the union is.
    region_code: Mapped[str] = mapped_column(String(12))
    # The county whose federation numbers this org's members (first 6 digits).
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    founded_on: Mapped[date | None] = mapped_column(Date)
    chair_name: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default=OrgStatus.active)
