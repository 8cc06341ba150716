"""Replicas of membership's orgs and members, for the services that need them.

A service keeps what it needs of membership's facts in its own tables, built
only from membership's events by the idempotent consumer; it never reads
membership's database. A service declares the tables with the column mixins
below on its own metadata and subscribes with `membership_subscription`.

Order tolerance: each row remembers the `occurred_at` of the newest event
applied to it (`last_event_at`); an older event arriving late only fills in
what the row does not know yet. So a withdrawal that overtakes the approval
still leaves the member withdrawn, and a transfer that overtakes it still
leaves the member in the new org.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from gonghui_shared.auth import Principal
from gonghui_shared.bus.consumer import Handler, Subscription
from gonghui_shared.contracts import Event, EventEnvelope
from gonghui_shared.contracts.membership import (
    MemberApproved,
    MemberExpelled,
    MemberLapsed,
    MembershipEnded,
    MemberTransferred,
    MemberWithdrawn,
    OrgCreated,
    OrgUpdated,
)
from gonghui_shared.errors import Conflict, NotFound
from gonghui_shared.permissions import Action
from gonghui_shared.pii import PiiCipher


class OrgReplicaColumns:
    """`__tablename__ = "org_replicas"` in the service's model."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(36))
    path: Mapped[str] = mapped_column(String(800), index=True)
    org_type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(12))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="active")
    last_event_at: Mapped[datetime]


class MemberReplicaColumns:
    """`__tablename__ = "member_replicas"` in the service's model."""

    member_no: Mapped[str] = mapped_column(String(16), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(36), unique=True)
    # Filled by MemberApproved; a later event may arrive first and create the row without it.
    name: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(20))
    subtype: Mapped[str | None] = mapped_column(String(30))
    household_type: Mapped[str | None] = mapped_column(String(10))
    gender: Mapped[str | None] = mapped_column(String(10))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    org_id: Mapped[str] = mapped_column(String(36))
    org_path: Mapped[str] = mapped_column(String(800), index=True)
    status: Mapped[str] = mapped_column(String(20))
    last_event_at: Mapped[datetime]


def _newer(envelope: EventEnvelope, row_at: datetime) -> bool:
    return envelope.occurred_at >= row_at


def org_handlers(model: Any) -> dict[type[Event], Handler]:
    """Handlers that keep `model` (an OrgReplicaColumns table) up to date."""

    async def created(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, OrgCreated)
        org = await session.get(model, event.org_id, with_for_update=True)
        if org is None:
            session.add(
                model(
                    id=event.org_id,
                    parent_id=event.parent_id,
                    path=event.path,
                    org_type=event.org_type,
                    name=event.name,
                    region_code=event.region_code,
                    lon=event.lon,
                    lat=event.lat,
                    status="active",
                    last_event_at=envelope.occurred_at,
                )
            )
            return
        # An update overtook the creation: the tree facts are still ours to fill in.
        org.parent_id, org.path, org.org_type = event.parent_id, event.path, event.org_type
        if _newer(envelope, org.last_event_at):
            org.name, org.region_code = event.name, event.region_code
            org.lon, org.lat, org.last_event_at = event.lon, event.lat, envelope.occurred_at

    async def updated(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, OrgUpdated)
        org = await session.get(model, event.org_id, with_for_update=True)
        if org is None:
            session.add(
                model(
                    id=event.org_id,
                    parent_id=None,
                    path=event.path,
                    org_type="",
                    name=event.name,
                    region_code=event.region_code,
                    lon=event.lon,
                    lat=event.lat,
                    status=event.status,
                    last_event_at=envelope.occurred_at,
                )
            )
            return
        if _newer(envelope, org.last_event_at):
            org.name, org.region_code, org.status = event.name, event.region_code, event.status
            org.lon, org.lat, org.last_event_at = event.lon, event.lat, envelope.occurred_at

    return {OrgCreated: created, OrgUpdated: updated}


def member_handlers(model: Any) -> dict[type[Event], Handler]:
    """Handlers that keep `model` (a MemberReplicaColumns table) up to date."""

    async def approved(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MemberApproved)
        member = await session.get(model, event.member_no, with_for_update=True)
        personal = {
            "name": event.name,
            "category": event.category,
            "subtype": event.subtype,
            "household_type": event.household_type,
            "gender": event.gender,
            "birth_year": event.birth_year,
        }
        if member is None:
            session.add(
                model(
                    member_no=event.member_no,
                    member_id=event.member_id,
                    org_id=event.org_id,
                    org_path=envelope.org_path or "",
                    status="active",
                    last_event_at=envelope.occurred_at,
                    **personal,
                )
            )
            return
        # A later event (transfer, withdrawal) came first: keep its org and status.
        for field, value in personal.items():
            setattr(member, field, value)

    async def transferred(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MemberTransferred)
        member = await session.get(model, event.member_no, with_for_update=True)
        if member is None:
            session.add(
                model(
                    member_no=event.member_no,
                    member_id=event.member_id,
                    category=event.category,
                    org_id=event.to_org_id,
                    org_path=envelope.org_path or "",
                    status="active",
                    last_event_at=envelope.occurred_at,
                )
            )
            return
        if _newer(envelope, member.last_event_at):
            member.org_id = event.to_org_id
            member.org_path = envelope.org_path or member.org_path
            member.last_event_at = envelope.occurred_at

    async def ended(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MembershipEnded)
        status = event.type.rsplit(".", 1)[1]  # withdrawn, lapsed, expelled
        member = await session.get(model, event.member_no, with_for_update=True)
        if member is None:
            session.add(
                model(
                    member_no=event.member_no,
                    member_id=event.member_id,
                    category=event.category,
                    org_id=event.org_id,
                    org_path=envelope.org_path or "",
                    status=status,
                    last_event_at=envelope.occurred_at,
                )
            )
            return
        if _newer(envelope, member.last_event_at):
            member.status, member.last_event_at = status, envelope.occurred_at

    return {
        MemberApproved: approved,
        MemberTransferred: transferred,
        MemberWithdrawn: ended,
        MemberLapsed: ended,
        MemberExpelled: ended,
    }


def membership_subscription(
    consumer: str, *handler_sets: Mapping[type[Event], Handler]
) -> Subscription:
    """One durable consumer of membership's stream for `consumer` (e.g. "training")."""
    handlers: dict[type[Event], Handler] = {}
    for handler_set in handler_sets:
        handlers.update(handler_set)
    # The replicas' handlers are upserts of one row each, with no locks of their own: a
    # fetched batch in one transaction costs one commit (one WAL flush) instead of one each.
    return Subscription(
        durable=f"{consumer}__membership",
        source="membership",
        handlers=handlers,
        apply_batches=True,
    )


# -- lookups a service makes in its replicas -------------------------------------------


class OrgNotKnown(NotFound):
    code = "org_not_found"
    message = "No such organisation (or membership has not announced it yet)"
    message_zh = "工会组织不存在（或尚未从会员服务同步）"


class MemberNotKnown(NotFound):
    code = "member_not_found"
    message = "No such member (or membership has not announced it yet)"
    message_zh = "会员不存在（或尚未从会员服务同步）"


class MemberNotActive(Conflict):
    code = "membership_not_active"
    message = "The membership has ended"
    message_zh = "该会员资格已终止"


async def org_in_scope(
    session: AsyncSession, model: Any, principal: Principal, org_id: str, action: Action
) -> Any:
    """The org from the replica `model`, if the principal may take `action` there."""
    principal.require(action)
    org = await session.get(model, org_id)
    if org is None:
        raise OrgNotKnown(details={"field": "org_id"})
    principal.require(action, org.path)
    return org


async def active_member(session: AsyncSession, model: Any, member_no: str) -> Any:
    member = await session.get(model, member_no)
    if member is None:
        raise MemberNotKnown(details={"field": "member_no"})
    if member.status != "active":
        raise MemberNotActive(details={"field": "member_no"})
    return member


def member_key(member_no: str) -> str:
    """How a member is counted as a person across services: by member number."""
    return f"m:{member_no}"


def non_member_key(pii: PiiCipher, id_number: str) -> str:
    """A non-member is known by a keyed hash of the ID number, never the number itself."""
    return f"p:{pii.lookup_hash(id_number)[:32]}"
