"""What training knows of membership, built only from membership's events.

Orgs and members use the shared replica columns and handlers
(`gonghui_shared.replicas`); cadres are training's own need (cadre-training
coverage), kept by `events/handlers.py`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui_shared.replicas import MemberReplicaColumns, OrgReplicaColumns
from training.base import Base


class OrgReplica(OrgReplicaColumns, Base):
    __tablename__ = "org_replicas"


class MemberReplica(MemberReplicaColumns, Base):
    __tablename__ = "member_replicas"


class CadreReplica(Base):
    __tablename__ = "cadre_replicas"
    __table_args__ = (Index("ix_cadre_replicas_org_path", "org_path"),)

    cadre_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_no: Mapped[str] = mapped_column(String(16), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    org_path: Mapped[str] = mapped_column(String(800))
    role: Mapped[str] = mapped_column(String(30))
    appointed_on: Mapped[date] = mapped_column(Date)
