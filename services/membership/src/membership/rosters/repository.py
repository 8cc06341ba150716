"""Roster import and export queries: batched lookups and bulk inserts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gonghui_shared.db import analyze_if_stale, bulk_insert
from membership.admissions.models import PENDING, Application
from membership.audit.models import Transition
from membership.members.models import Member, MemberStatus
from membership.orgs.models import Org

# Hashes per `IN (…)`: few round trips, and a statement PostgreSQL plans in well under 1 ms.
LOOKUP_BATCH = 500


def _batches(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _hash_in(column: InstrumentedAttribute[str], batch: Sequence[str]) -> ColumnElement[bool]:
    """`column IN ('…', …)` with the hashes inlined as literals, not bound parameters.

    asyncpg prepares statements, and after five runs PostgreSQL switches to a generic
    plan, which cannot use a hash table for `= ANY($1 … $500)`: with statistics still
    stale after a big import it scans every row against the whole list (2 s instead of
    50 ms for 10,000 rows). Literals get a plan of their own each time. The values are
    our own hex digests, so inlining them is safe.
    """
    return column.in_(bindparam("hashes", list(batch), expanding=True, literal_execute=True))


async def refresh_statistics(session: AsyncSession) -> None:
    """Fresh planner statistics for the two look-ups below after bulk changes (an import's
    applications, an approval's members), so they stay index look-ups."""
    await analyze_if_stale(
        session, [cast(Table, Member.__table__), cast(Table, Application.__table__)]
    )


async def active_member_hashes(session: AsyncSession, hashes: Sequence[str]) -> set[str]:
    """Which of these ID number hashes belong to an active member."""
    found: set[str] = set()
    for batch in _batches(hashes, LOOKUP_BATCH):
        rows = await session.execute(
            select(Member.id_number_hash, Member.status).where(
                _hash_in(Member.id_number_hash, batch)
            )
        )
        found.update(row.id_number_hash for row in rows if row.status == MemberStatus.active)
    return found


async def pending_application_hashes(session: AsyncSession, hashes: Sequence[str]) -> set[str]:
    """Which of these ID number hashes have an application waiting for a decision."""
    found: set[str] = set()
    for batch in _batches(hashes, LOOKUP_BATCH):
        rows = await session.execute(
            select(Application.id_number_hash).where(
                _hash_in(Application.id_number_hash, batch), Application.status.in_(PENDING)
            )
        )
        found.update(rows.scalars())
    return found


# Bulk inserts on the mapped tables, without the ORM's per-row bookkeeping (a COPY on
# PostgreSQL). The rows carry their own ids and timestamps.
_APPLICATIONS = cast(Table, Application.__table__)
_TRANSITIONS = cast(Table, Transition.__table__)


async def insert_applications(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One bulk insert for a chunk of applications."""
    await bulk_insert(session, _APPLICATIONS, rows)


async def insert_transitions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One bulk insert for a chunk of transitions."""
    await bulk_insert(session, _TRANSITIONS, rows)


async def org_names_within(session: AsyncSession, path: str) -> dict[str, str]:
    """Names of every org in the subtree at `path`, by id."""
    rows = await session.execute(
        select(Org.id, Org.name).where(Org.path.startswith(path, autoescape=True))
    )
    return {row.id: row.name for row in rows}


async def members_for_export(
    session: AsyncSession,
    *,
    within_path: str,
    status: str | None,
    after_member_no: str | None,
    limit: int,
) -> Sequence[Any]:
    """One keyset page of members in a subtree by member number, with their form reference."""
    query = (
        select(
            Member.id,
            Member.member_no,
            Member.org_id,
            Member.name,
            Member.id_number_encrypted,
            Member.id_number_masked,
            Member.phone_encrypted,
            Member.phone_masked,
            Member.household_type,
            Member.category,
            Member.subtype,
            Member.employer,
            Application.form_ref,
        )
        .join(Application, Application.id == Member.application_id)
        .where(Member.org_path.startswith(within_path, autoescape=True))
    )
    if status is not None:
        query = query.where(Member.status == status)
    if after_member_no is not None:
        query = query.where(Member.member_no > after_member_no)
    return (await session.execute(query.order_by(Member.member_no).limit(limit))).all()
