"""What stations knows of membership: orgs (with their locations) and members, from events."""

from __future__ import annotations

from gonghui_shared.replicas import MemberReplicaColumns, OrgReplicaColumns
from stations.base import Base


class OrgReplica(OrgReplicaColumns, Base):
    __tablename__ = "org_replicas"


class MemberReplica(MemberReplicaColumns, Base):
    __tablename__ = "member_replicas"
