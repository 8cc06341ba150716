"""Event contracts: the envelope, and one module per producing service.

Consumers import these classes; nobody re-declares an event elsewhere.
"""

from gonghui_shared.contracts import membership, stations, training
from gonghui_shared.contracts.envelope import Event, EventEnvelope, envelope_for, subject_for

ALL_EVENTS: tuple[type[Event], ...] = membership.EVENTS + training.EVENTS + stations.EVENTS

REGISTRY: dict[tuple[str, int], type[Event]] = {(e.type, e.version): e for e in ALL_EVENTS}


def parse_event(envelope: EventEnvelope) -> Event:
    """The typed contract inside an envelope; KeyError if the type is unknown."""
    return REGISTRY[(envelope.type, envelope.version)].model_validate(envelope.data)


__all__ = [
    "ALL_EVENTS",
    "REGISTRY",
    "Event",
    "EventEnvelope",
    "envelope_for",
    "parse_event",
    "subject_for",
]
