"""The event envelope and the base class of every event contract.

Events are facts in the past tense. Each contract declares its `type`
(`<service>.<entity>.<verb>`) and `version`; its subject is
`<root>.<type>.v<version>`, for example `gonghui.membership.member.approved.v1`.
Within a version only additive changes are allowed; a breaking change is a new
class with `version = 2`, published beside the old one until consumers move.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gonghui_shared.ids import new_id


class Event(BaseModel):
    """Base of every event contract: the `data` part of an envelope."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def source(cls) -> str:
        return cls.type.split(".", 1)[0]

    @classmethod
    def subject(cls, root: str = "gonghui") -> str:
        return subject_for(cls.type, cls.version, root)


class EventEnvelope(BaseModel):
    """What travels on the bus: ids and routing facts around the contract's data."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID = Field(description="unique per event; the NATS message id")
    type: str = Field(examples=["membership.member.approved"])
    version: int = Field(examples=[1])
    occurred_at: datetime
    source: str = Field(description="the producing service", examples=["membership"])
    aggregate_id: str = Field(description="the entity the event is about")
    aggregate_seq: int | None = Field(
        None,
        ge=1,
        description="1, 2, 3… per aggregate in commit order, so a consumer can tell an early "
        "event from a late duplicate; null on events from before numbering",
    )
    org_path: str | None = Field(
        None, description="materialised path of the org it belongs to, for scoping and roll-ups"
    )
    request_id: str | None = None
    data: dict[str, Any]

    def subject(self, root: str = "gonghui") -> str:
        return subject_for(self.type, self.version, root)


def subject_for(event_type: str, version: int, root: str = "gonghui") -> str:
    return f"{root}.{event_type}.v{version}"


def envelope_for(
    event: Event,
    *,
    aggregate_id: str,
    aggregate_seq: int | None = None,
    org_path: str | None = None,
    request_id: str | None = None,
    occurred_at: datetime | None = None,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.UUID(new_id()),
        type=event.type,
        version=event.version,
        occurred_at=occurred_at or datetime.now(UTC),
        source=event.source(),
        aggregate_id=aggregate_id,
        aggregate_seq=aggregate_seq,
        org_path=org_path,
        request_id=request_id,
        data=event.model_dump(mode="json"),
    )
