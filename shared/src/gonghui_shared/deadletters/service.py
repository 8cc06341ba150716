"""Who may read and replay dead letters, and what a replay does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Row, Table
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import metrics
from gonghui_shared.auth import NO_ORG_SCOPE, Principal
from gonghui_shared.bus.consumer import EventConsumer, Outcome
from gonghui_shared.deadletters import repository
from gonghui_shared.deadletters.schemas import ReplayOutcome
from gonghui_shared.errors import Conflict, NotFound
from gonghui_shared.permissions import Action

if TYPE_CHECKING:
    from gonghui_shared.runtime import ServiceRuntime


class DeadLetterNotFound(NotFound):
    code = "dead_letter_not_found"
    message = "Dead letter not found"
    message_zh = "死信不存在"


class ConsumerNotRunning(Conflict):
    code = "consumer_not_running"
    message = "The consumer of this dead letter does not run in this service any more"
    message_zh = "该死信所属的消费者已不在本服务中运行"


class ReplayFailed(Conflict):
    code = "replay_failed"
    message = "The event failed again; the dead letter keeps the new error"
    message_zh = "事件再次处理失败，死信已记录新的错误"


class ReplayOutOfOrder(Conflict):
    code = "replay_out_of_order"
    message = (
        "An earlier event of this aggregate has not been applied: replay it first, "
        "or pass force=true if it will never come"
    )
    message_zh = "该对象的较早事件尚未处理：请先重放较早的事件；若其永远不会到达，可使用 force=true"


async def list_dead_letters(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    *,
    consumer: str | None,
    replayed: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """All rows for the platform; for a county admin, those of events in their subtree."""
    principal.require(Action.bus_admin)
    return await repository.list_dead_letters(
        session,
        table,
        within_path=principal.subtree,
        consumer=consumer,
        replayed=replayed,
        cursor=cursor,
        limit=limit,
    )


async def replay(
    runtime: ServiceRuntime,
    table: Table,
    principal: Principal,
    dead_letter_id: str,
    *,
    force: bool,
) -> tuple[ReplayOutcome, Row[Any]]:
    """Apply the dead letter's event through its consumer's handler, inbox and ordering,
    and mark it replayed in the same transaction; replaying again applies nothing.

    The consumer owns these transactions (as it does for a delivery), not the request:
    a failure must roll back the handler's writes yet still record the new error.
    """
    principal.require(Action.bus_admin)
    row = await _get(runtime, table, dead_letter_id)
    # Rows without an org (unreadable messages among them) are the platform's.
    principal.require(Action.bus_admin, row.org_path or NO_ORG_SCOPE)
    consumer = next((c for c in runtime.consumers if c.durable == row.consumer), None)
    if consumer is None:
        raise ConsumerNotRunning(details={"consumer": row.consumer})
    if row.replayed_at is not None:
        return "already_applied", row
    try:
        envelope, event = consumer.parse(row.payload.encode())
    except ValidationError as exc:
        await _record_failure(consumer, row, f"unreadable event: {exc}")
        raise ReplayFailed(details={"error": str(exc)[:1000]}) from exc

    async def mark_replayed(session: AsyncSession) -> None:
        await repository.mark_replayed(
            session, table, row.id, by=principal.subject, at=datetime.now(UTC)
        )

    try:
        result = await consumer.apply_in_order(envelope, event, force=force, also=mark_replayed)
    except Exception as exc:  # noqa: BLE001 - the handler's failure is the client's answer
        error = f"{type(exc).__name__}: {exc}"
        await _record_failure(consumer, row, error)
        raise ReplayFailed(details={"error": error[:1000]}) from exc
    if result.outcome is Outcome.early:
        raise ReplayOutOfOrder(
            details={
                "aggregate_id": envelope.aggregate_id,
                "applied_up_to": result.last_seq,
                "aggregate_seq": envelope.aggregate_seq,
            }
        )
    metrics.DEAD_LETTERS_REPLAYED.labels(consumer.durable).inc()
    await consumer.refresh_unreplayed()
    outcomes: dict[Outcome, ReplayOutcome] = {
        Outcome.applied: "applied",
        Outcome.ignored: "ignored",
    }
    outcome = outcomes.get(result.outcome, "already_applied")
    return outcome, await _get(runtime, table, dead_letter_id)


async def _get(runtime: ServiceRuntime, table: Table, dead_letter_id: str) -> Row[Any]:
    async with runtime.db.sessions() as session:
        row = await repository.get(session, table, dead_letter_id)
    if row is None:
        raise DeadLetterNotFound()
    return row


async def _record_failure(consumer: EventConsumer, row: Row[Any], error: str) -> None:
    async with consumer.db.transaction() as session:
        await repository.record_replay_failure(
            session, consumer.tables.dead_letters, row.id, error=error[:4000], at=datetime.now(UTC)
        )
