"""Coverage queries: the administrative units (village and community unions) of a subtree."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stations.replicas.models import OrgReplica

# Membership's type for a village or community union (村（社区）工会): the units the
# 15-minute circle is measured for.
UNIT_ORG_TYPE = "village_union"


async def units_in(session: AsyncSession, path: str) -> Sequence[OrgReplica]:
    """The active village/community unions at or under `path`, by region code then name."""
    query = (
        select(OrgReplica)
        .where(
            OrgReplica.path.startswith(path, autoescape=True),
            OrgReplica.org_type == UNIT_ORG_TYPE,
            OrgReplica.status == "active",
        )
        .order_by(OrgReplica.region_code, OrgReplica.name, OrgReplica.id)
    )
    return (await session.scalars(query)).all()
