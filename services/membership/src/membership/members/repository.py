"""Member and transfer queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import CursorResult, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import reads
from gonghui_shared.pagination import paginate
from gonghui_shared.reads import Reader
from membership.cadres.models import Cadre
from membership.members.models import Member, MemberStatus, Transfer, TransferStatus
from membership.orgs.models import Org


async def by_number(session: AsyncSession, member_no: str, *, lock: bool = False) -> Member | None:
    query = select(Member).where(Member.member_no == member_no)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


class MemberRecord(NamedTuple):
    """A member as the member lookup reads it: the columns `service.to_read` shows, and the
    name of the member's org. Plain columns, not an ORM object: the lookup is the service's
    busiest read, and loading an entity cost more than the query."""

    member_no: str
    name: str
    org_id: str
    org_path: str
    status: str
    category: str
    subtype: str | None
    household_type: str
    gender: str
    birth_date: date
    id_number_encrypted: str
    id_number_masked: str
    phone_encrypted: str
    phone_masked: str
    employer: str | None
    joined_on: date
    ended_on: date | None
    end_reason: str | None
    org_name: str


# Built once: compiled once for asyncpg (`reads.fetch`) and prepared once per connection.
_RECORD_BY_NUMBER = (
    select(*(getattr(Member, name) for name in MemberRecord._fields[:-1]), Org.name)
    .join(Org, Org.id == Member.org_id)
    .where(Member.member_no == bindparam("member_no"))
)


async def record_by_number(reader: Reader, member_no: str) -> MemberRecord | None:
    """The member with that number and its org's name, in one query (the member lookup)."""
    rows = await reads.fetch(reader, _RECORD_BY_NUMBER, {"member_no": member_no})
    return MemberRecord._make(rows[0]) if rows else None


async def active_by_phone_hash(session: AsyncSession, phone_hash: str) -> Sequence[Member]:
    """Active members whose phone hashes to `phone_hash` (family members may share one)."""
    query = (
        select(Member)
        .where(Member.phone_hash == phone_hash, Member.status == MemberStatus.active)
        .order_by(Member.joined_on, Member.member_no)
    )
    return (await session.scalars(query)).all()


async def list_members(
    session: AsyncSession,
    *,
    within_path: str | None,
    category: str | None,
    status: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Member]:
    query = select(Member)
    if within_path:
        query = query.where(Member.org_path.startswith(within_path, autoescape=True))
    if category:
        query = query.where(Member.category == category)
    if status:
        query = query.where(Member.status == status)
    if q:
        query = query.where(
            or_(
                Member.name.contains(q, autoescape=True),
                Member.member_no.startswith(q, autoescape=True),
            )
        )
    return (await session.scalars(paginate(query, Member.id, cursor, limit))).all()


async def org_names(session: AsyncSession, org_ids: set[str]) -> dict[str, str]:
    if not org_ids:
        return {}
    rows = await session.execute(select(Org.id, Org.name).where(Org.id.in_(org_ids)))
    return {row.id: row.name for row in rows}


async def pending_transfer(session: AsyncSession, member_id: str) -> Transfer | None:
    return await session.scalar(
        select(Transfer).where(
            Transfer.member_id == member_id, Transfer.status == TransferStatus.requested
        )
    )


async def get_transfer(
    session: AsyncSession, transfer_id: str, *, lock: bool = False
) -> Transfer | None:
    query = select(Transfer).where(Transfer.id == transfer_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def list_transfers(
    session: AsyncSession,
    *,
    incoming_path: str | None,
    outgoing_path: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Transfer]:
    query = select(Transfer)
    if incoming_path is not None:
        query = query.where(Transfer.to_org_path.startswith(incoming_path, autoescape=True))
    if outgoing_path is not None:
        query = query.where(Transfer.from_org_path.startswith(outgoing_path, autoescape=True))
    if status:
        query = query.where(Transfer.status == status)
    return (await session.scalars(paginate(query, Transfer.id, cursor, limit))).all()


async def end_cadre_posts(session: AsyncSession, member_id: str, on: date) -> int:
    """End the member's active cadre appointments; returns how many."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(Cadre)
        .where(Cadre.member_id == member_id, Cadre.ended_on.is_(None))
        .values(ended_on=on)
    )
    return int(result.rowcount or 0)
