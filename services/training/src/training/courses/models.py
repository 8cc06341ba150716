"""Courses (培训课程): what is taught, to whom, and what counts as completing it."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from training.base import Base, Timestamped, id_column


class CourseCategory(StrEnum):
    planting_breeding = "planting_breeding"  # 种植养殖
    welding_trades = "welding_trades"  # 电焊等技工
    ecommerce = "ecommerce"  # 电子商务
    childcare_domestic = "childcare_domestic"  # 育婴师、家政
    cadre_training = "cadre_training"  # 工会干部业务培训
    law_rights = "law_rights"  # 法律维权
    safety = "safety"  # 安全生产
    other = "other"


class TargetGroup(StrEnum):
    migrant_workers = "migrant_workers"  # 农民工
    new_employment = "new_employment"  # 新就业形态劳动者
    cadres = "cadres"  # 工会干部
    rural_labour = "rural_labour"  # 农村劳动力
    all = "all"


class Course(Timestamped, Base):
    __tablename__ = "courses"

    id: Mapped[str] = id_column()
    # The org whose catalogue it is in; visible to that org's whole subtree.
    owner_org_id: Mapped[str] = mapped_column(String(36))
    owner_org_path: Mapped[str] = mapped_column(String(800), index=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(30), index=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    leads_to_certificate: Mapped[bool] = mapped_column(Boolean, default=False)
    hours: Mapped[float] = mapped_column(Float)
    # Completion rule: the share of session days attended (人人持证 needs 0.8 in the seeds).
    min_attendance_rate: Mapped[float] = mapped_column(Float, default=0.8)
    created_by: Mapped[str] = mapped_column(String(100))
