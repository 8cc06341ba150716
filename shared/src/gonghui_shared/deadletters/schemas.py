"""Dead letters as the endpoints return them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DeadLetterRead(BaseModel):
    """An event a consumer gave up on: what it was, why it failed, whether it was replayed."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    consumer: str = Field(examples=["training__membership"])
    event_id: str | None = Field(description="null when the message could not be parsed")
    event_type: str | None = Field(examples=["membership.member.approved"])
    aggregate_id: str | None
    aggregate_seq: int | None = Field(description="its number within the aggregate")
    org_path: str | None
    subject: str = Field(examples=["gonghui.membership.member.approved.v1"])
    stream_seq: int | None = Field(description="its position in the source stream")
    payload: str = Field(description="the message body as received")
    headers: dict[str, Any] | None
    error: str = Field(description="the last failure", examples=["RuntimeError: cannot apply"])
    attempts: int = Field(description="deliveries (and replays) that failed")
    first_failed_at: datetime
    last_failed_at: datetime
    replayed_at: datetime | None
    replayed_by: str | None = Field(description="the subject who replayed it")


# `applied` now; `already_applied` (by a delivery or an earlier replay); `ignored` (a type
# the consumer no longer handles: only its aggregate's position moved).
ReplayOutcome = Literal["applied", "already_applied", "ignored"]


class ReplayRead(BaseModel):
    """What a replay did, and the dead letter as it is now."""

    outcome: ReplayOutcome
    dead_letter: DeadLetterRead
