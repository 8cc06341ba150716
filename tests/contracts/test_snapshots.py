"""Every event contract's JSON schema is pinned: an accidental breaking change fails here.

Additive changes within a version are allowed: regenerate the snapshots with
`UPDATE_SNAPSHOTS=1 make test` and review the diff. A breaking change is a new
version (a new class with `version = 2`), never an edit of a published one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gonghui_shared.contracts import ALL_EVENTS, Event, EventEnvelope

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _schema(model: type) -> str:
    return (
        json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    )


@pytest.mark.parametrize("contract", ALL_EVENTS, ids=lambda c: f"{c.type}.v{c.version}")
def test_contract_schema_matches_snapshot(contract: type[Event]) -> None:
    path = SNAPSHOTS / f"{contract.type}.v{contract.version}.json"
    current = _schema(contract)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(current, encoding="utf-8")
    assert path.exists(), (
        f"no snapshot for {contract.type} v{contract.version}; run with UPDATE_SNAPSHOTS=1"
    )
    assert path.read_text(encoding="utf-8") == current, (
        f"{contract.type} v{contract.version} changed; additive changes: UPDATE_SNAPSHOTS=1, "
        "breaking changes: publish a new version"
    )


def test_envelope_schema_matches_snapshot() -> None:
    path = SNAPSHOTS / "envelope.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(_schema(EventEnvelope), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == _schema(EventEnvelope)


def test_every_snapshot_has_a_contract() -> None:
    """A snapshot without its class means a published event was removed."""
    known = {f"{c.type}.v{c.version}.json" for c in ALL_EVENTS} | {"envelope.json"}
    assert {p.name for p in SNAPSHOTS.glob("*.json")} <= known


@pytest.mark.parametrize("contract", ALL_EVENTS, ids=lambda c: c.type)
def test_subject_follows_the_scheme(contract: type[Event]) -> None:
    assert contract.subject() == f"gonghui.{contract.type}.v{contract.version}"
    assert contract.subject().split(".")[1] == contract.source()


def test_envelope_from_before_numbering_still_parses() -> None:
    """`aggregate_seq` was added within version 1: events already in streams lack it."""
    old = {
        "event_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "type": "membership.member.approved",
        "version": 1,
        "occurred_at": "2026-11-01T00:00:00Z",
        "source": "membership",
        "aggregate_id": "m1",
        "data": {},
    }
    assert EventEnvelope.model_validate(old).aggregate_seq is None
