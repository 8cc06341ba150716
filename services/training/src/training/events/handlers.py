"""What training consumes: membership's events, into the org, member and cadre replicas.

Orgs and members are kept by the shared, order-tolerant handlers; a member who
transfers keeps their training history, which is keyed by member number.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.contracts.membership import CadreAppointed
from gonghui_shared.replicas import member_handlers, membership_subscription, org_handlers
from training.replicas.models import CadreReplica, MemberReplica, OrgReplica


async def on_cadre_appointed(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
    assert isinstance(event, CadreAppointed)
    if await session.get(CadreReplica, event.cadre_id) is None:
        session.add(
            CadreReplica(
                cadre_id=event.cadre_id,
                member_no=event.member_no,
                org_id=event.org_id,
                org_path=envelope.org_path or "",
                role=event.role,
                appointed_on=event.appointed_on,
            )
        )


MEMBERSHIP = membership_subscription(
    "training",
    org_handlers(OrgReplica),
    member_handlers(MemberReplica),
    {CadreAppointed: on_cadre_appointed},
)
