"""What stations consumes: membership's org and member events, into the replicas."""

from __future__ import annotations

from gonghui_shared.replicas import member_handlers, membership_subscription, org_handlers
from stations.replicas.models import MemberReplica, OrgReplica

MEMBERSHIP = membership_subscription(
    "stations", org_handlers(OrgReplica), member_handlers(MemberReplica)
)
