"""Lookups in stations's replicas of membership: orgs in scope, active members, person keys."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import replicas
from gonghui_shared.auth import Principal
from gonghui_shared.permissions import Action
from gonghui_shared.replicas import (
    MemberNotActive,
    MemberNotKnown,
    OrgNotKnown,
    member_key,
    non_member_key,
)
from stations.replicas.models import MemberReplica, OrgReplica

__all__ = [
    "MemberNotActive",
    "MemberNotKnown",
    "OrgNotKnown",
    "active_member",
    "member_key",
    "non_member_key",
    "org_in_scope",
]


async def org_in_scope(
    session: AsyncSession, principal: Principal, org_id: str, action: Action
) -> OrgReplica:
    """The org from the replica, if the principal may take `action` there."""
    org: OrgReplica = await replicas.org_in_scope(session, OrgReplica, principal, org_id, action)
    return org


async def active_member(session: AsyncSession, member_no: str) -> MemberReplica:
    member: MemberReplica = await replicas.active_member(session, MemberReplica, member_no)
    return member
