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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
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


# -- batches --------------------------------------------------------------------------
#
# With `membership_subscription`'s hooks, a fetched batch is applied whole in one
# transaction: `before` reads (and locks, in key order) every replica row the batch's
# events name, into plain rows kept in `session.info`; the handlers change those rows in
# memory, by the same rules as one at a time; `after` writes the new rows with one INSERT
# and the changed ones with one UPDATE per table, in key order. Outside such a batch (a
# message handled on its own, another consumer's batch, a test) the handlers read and
# write through the ORM, one row per event, as before.

_BATCH = "gonghui.replicas.batch"
_CHUNK = 500  # keys per IN (…): well under SQLite's bound-parameter limit


class _Row(SimpleNamespace):
    """A replica row of a batch: the handlers set its attributes as they would an ORM row's."""


@dataclass
class _TableBatch:
    """One replica table's rows in a batch: as read (None: no row yet), and as changed."""

    model: Any
    read: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    rows: dict[str, _Row | None] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__
        return table

    @property
    def key(self) -> Column[Any]:
        (key,) = self.table.primary_key.columns
        return key

    async def load(self, session: AsyncSession, keys: Iterable[str]) -> None:
        """Read and lock the rows with these keys, in key order."""
        wanted = sorted(set(keys) - self.read.keys())
        for key in wanted:
            self.read[key] = self.rows[key] = None
        if not wanted:
            return
        if session.get_bind().dialect.name == "postgresql":
            found = [await session.execute(self._locking_by_key(wanted))]
        else:  # SQLite locks the whole database already
            found = [
                await session.execute(
                    select(self.table).where(self.key.in_(wanted[start : start + _CHUNK]))
                )
                for start in range(0, len(wanted), _CHUNK)
            ]
        for result in found:
            for values in map(dict, result.mappings()):
                self.read[values[self.key.key]] = values
                self.rows[values[self.key.key]] = _Row(**values)

    def _locking_by_key(self, wanted: list[str]) -> Any:
        """One index lookup per key, each row locked as it is found, in the keys' order.

        Not `key IN (…)`: on a table filling up faster than autovacuum analyses it (a
        province loaded into empty replicas), the planner takes that for a sequential scan
        of the whole table, each batch. A lateral subquery with FOR UPDATE is never
        flattened, so each key is an equality on the primary key: an index scan.
        """
        keys = func.unnest(bindparam("keys", wanted, type_=ARRAY(String)))
        given = keys.table_valued("key").render_derived(name="wanted")
        row = select(self.table).where(self.key == given.c.key).with_for_update()
        found = row.lateral("found")
        return select(found).select_from(given).join(found, true())

    async def write(self, session: AsyncSession) -> None:
        """The new rows in one INSERT, the changed ones in one UPDATE, each in key order."""
        columns = [column.key for column in self.table.columns]
        new, changed = [], []
        for key in sorted(self.rows):
            row = self.rows[key]
            if row is None:
                continue
            values = {column: getattr(row, column, None) for column in columns}
            read = self.read[key]
            if read is None:
                new.append(values)
            elif values != read:
                changed.append({f"b_{column}": value for column, value in values.items()})
        if new:
            # Not an upsert: a row another transaction inserted meanwhile is a conflict that
            # sends the batch back to one message at a time, where the rules above merge.
            await session.execute(insert(self.table), new)
        if changed:
            others = [column for column in columns if column != self.key.key]
            await session.execute(
                update(self.table)
                .where(self.key == bindparam(f"b_{self.key.key}"))
                .values({column: bindparam(f"b_{column}") for column in others}),
                changed,
            )


def _batch_of(session: AsyncSession, model: Any) -> _TableBatch | None:
    """`model`'s rows in the batch under way in this session (None: not in one of ours)."""
    tables: dict[Any, _TableBatch] | None = session.info.get(_BATCH)
    return None if tables is None else tables.get(model)


async def _get(session: AsyncSession, model: Any, key: str) -> Any:
    """The row to change (locked), from the batch if one is under way; None if there is none."""
    batch = _batch_of(session, model)
    if batch is None:
        return await session.get(model, key, with_for_update=True)
    if key not in batch.rows:  # an event `before` did not see: read it now
        await batch.load(session, [key])
    return batch.rows[key]


def _add(session: AsyncSession, model: Any, key: str, **values: Any) -> None:
    batch = _batch_of(session, model)
    if batch is None:
        session.add(model(**values))
    else:
        batch.rows[key] = _Row(**values)


class ReplicaHandlers(dict[type[Event], Handler]):
    """The handlers of one replica table, and which row of it each of their events names."""

    def __init__(
        self,
        model: Any,
        key_of: Callable[[Event], str],
        handlers: Mapping[type[Event], Handler],
    ) -> None:
        super().__init__(handlers)
        self.model = model
        self.key_of = key_of


class ReplicaBatches:
    """The `BatchHooks` of a membership subscription: the replica rows of a whole batch read
    in one statement per table before its handlers, written in one or two after them."""

    def __init__(self, handler_sets: Sequence[ReplicaHandlers]) -> None:
        # By table name: every batch takes its locks in the same order.
        self.handler_sets = sorted(handler_sets, key=lambda s: str(s.model.__tablename__))

    async def before(
        self, session: AsyncSession, events: Sequence[tuple[EventEnvelope, Event]]
    ) -> None:
        tables: dict[Any, _TableBatch] = {}
        for handlers in self.handler_sets:
            batch = tables[handlers.model] = _TableBatch(handlers.model)
            keys = [handlers.key_of(event) for _, event in events if type(event) in handlers]
            await batch.load(session, keys)
        session.info[_BATCH] = tables

    async def after(self, session: AsyncSession) -> None:
        tables: dict[Any, _TableBatch] = session.info.pop(_BATCH)
        for batch in tables.values():
            await batch.write(session)


# -- handlers ---------------------------------------------------------------------------


def org_handlers(model: Any) -> ReplicaHandlers:
    """Handlers that keep `model` (an OrgReplicaColumns table) up to date."""

    async def created(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, OrgCreated)
        org = await _get(session, model, event.org_id)
        if org is None:
            _add(
                session,
                model,
                event.org_id,
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
            return
        # An update overtook the creation: the tree facts are still ours to fill in.
        org.parent_id, org.path, org.org_type = event.parent_id, event.path, event.org_type
        if _newer(envelope, org.last_event_at):
            org.name, org.region_code = event.name, event.region_code
            org.lon, org.lat, org.last_event_at = event.lon, event.lat, envelope.occurred_at

    async def updated(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, OrgUpdated)
        org = await _get(session, model, event.org_id)
        if org is None:
            _add(
                session,
                model,
                event.org_id,
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
            return
        if _newer(envelope, org.last_event_at):
            org.name, org.region_code, org.status = event.name, event.region_code, event.status
            org.lon, org.lat, org.last_event_at = event.lon, event.lat, envelope.occurred_at

    return ReplicaHandlers(model, _org_key, {OrgCreated: created, OrgUpdated: updated})


def _org_key(event: Event) -> str:
    assert isinstance(event, OrgCreated | OrgUpdated)
    return event.org_id


def _member_key(event: Event) -> str:
    assert isinstance(event, MemberApproved | MemberTransferred | MembershipEnded)
    return event.member_no


def member_handlers(model: Any) -> ReplicaHandlers:
    """Handlers that keep `model` (a MemberReplicaColumns table) up to date."""

    async def approved(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MemberApproved)
        member = await _get(session, model, event.member_no)
        personal = {
            "name": event.name,
            "category": event.category,
            "subtype": event.subtype,
            "household_type": event.household_type,
            "gender": event.gender,
            "birth_year": event.birth_year,
        }
        if member is None:
            _add(
                session,
                model,
                event.member_no,
                member_no=event.member_no,
                member_id=event.member_id,
                org_id=event.org_id,
                org_path=envelope.org_path or "",
                status="active",
                last_event_at=envelope.occurred_at,
                **personal,
            )
            return
        # A later event (transfer, withdrawal) came first: keep its org and status.
        for name, value in personal.items():
            setattr(member, name, value)

    async def transferred(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MemberTransferred)
        member = await _get(session, model, event.member_no)
        if member is None:
            _add(
                session,
                model,
                event.member_no,
                member_no=event.member_no,
                member_id=event.member_id,
                category=event.category,
                org_id=event.to_org_id,
                org_path=envelope.org_path or "",
                status="active",
                last_event_at=envelope.occurred_at,
            )
            return
        if _newer(envelope, member.last_event_at):
            member.org_id = event.to_org_id
            member.org_path = envelope.org_path or member.org_path
            member.last_event_at = envelope.occurred_at

    async def ended(session: AsyncSession, event: Event, envelope: EventEnvelope) -> None:
        assert isinstance(event, MembershipEnded)
        status = event.type.rsplit(".", 1)[1]  # withdrawn, lapsed, expelled
        member = await _get(session, model, event.member_no)
        if member is None:
            _add(
                session,
                model,
                event.member_no,
                member_no=event.member_no,
                member_id=event.member_id,
                category=event.category,
                org_id=event.org_id,
                org_path=envelope.org_path or "",
                status=status,
                last_event_at=envelope.occurred_at,
            )
            return
        if _newer(envelope, member.last_event_at):
            member.status, member.last_event_at = status, envelope.occurred_at

    return ReplicaHandlers(
        model,
        _member_key,
        {
            MemberApproved: approved,
            MemberTransferred: transferred,
            MemberWithdrawn: ended,
            MemberLapsed: ended,
            MemberExpelled: ended,
        },
    )


def membership_subscription(
    consumer: str, *handler_sets: Mapping[type[Event], Handler]
) -> Subscription:
    """One durable consumer of membership's stream for `consumer` (e.g. "training")."""
    handlers: dict[type[Event], Handler] = {}
    for handler_set in handler_sets:
        handlers.update(handler_set)
    # A fetched batch is applied whole in one transaction: one commit (one WAL flush), and
    # the replica rows read and written once per table (`ReplicaBatches`). Only this
    # consumer writes these tables, and it locks their rows in one order.
    replicas = [s for s in handler_sets if isinstance(s, ReplicaHandlers)]
    return Subscription(
        durable=f"{consumer}__membership",
        source="membership",
        handlers=handlers,
        apply_batches=True,
        batch_hooks=ReplicaBatches(replicas) if replicas else None,
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


@lru_cache(maxsize=16)
def _member_by_number(model: Any) -> Any:
    """Made once per replica model: cheaper per write than `session.get`'s own query."""
    return select(model).where(model.member_no == bindparam("member_no"))


async def active_member(session: AsyncSession, model: Any, member_no: str) -> Any:
    member = await session.scalar(_member_by_number(model), {"member_no": member_no})
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
