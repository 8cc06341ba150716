"""The counter periods chosen for a range of months add up to exactly those months."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select

from gateway.dashboards import handlers
from gateway.dashboards.repository import covering, periods_of

MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025, 2026, 2027) for m in range(1, 13)]


def test_covering_counts_every_month_of_the_range_once() -> None:
    metadata = MetaData()
    counters = Table(
        "counters",
        metadata,
        Column("period", String(7), primary_key=True),
        Column("value", Integer),
    )
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    # Month i holds 2**i, added to its month, its year and all time, as the handlers do.
    totals: dict[str, int] = {}
    for i, month in enumerate(MONTHS):
        for period in periods_of(month):
            totals[period] = totals.get(period, 0) + 2**i
    bounds = [None, *MONTHS[10:40]]  # 2024-11 … 2027-04, and unbounded
    with engine.begin() as conn:
        conn.execute(insert(counters), [{"period": p, "value": v} for p, v in totals.items()])
        checked = 0
        for first, last in itertools.product(bounds, bounds):
            if first is not None and last is not None and first > last:
                continue
            got = conn.scalar(
                select(func.coalesce(func.sum(counters.c.value), 0)).where(
                    covering(counters.c.period, first, last)
                )
            )
            # Distinct powers of two: the sum names exactly which months were counted.
            want = sum(
                2**i
                for i, month in enumerate(MONTHS)
                if (first is None or month >= first) and (last is None or month <= last)
            )
            assert got == want, (first, last)
            checked += 1
    assert checked > 400


def test_this_month_turns_when_china_s_month_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The remembered month is `month_of(now)` at every instant, across month and year ends
    in China time (UTC+8: its December starts at 16:00 UTC on 30 November)."""
    clock = [0.0]
    monkeypatch.setattr(handlers.time, "time", lambda: clock[0])
    this_month = handlers._ThisMonth()
    turns = [
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),  # 1 December, China time
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC),  # 1 January 2027
        datetime(2027, 2, 28, 16, 0, tzinfo=UTC),  # 1 March
    ]
    instants = [t + timedelta(seconds=d) for t in turns for d in (-86400, -0.001, 0, 0.001)]
    rnd = random.Random(7)
    instants += sorted(
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.uniform(0, 3 * 365 * 86400))
        for _ in range(500)
    )
    seen = []
    for at in instants:
        clock[0] = at.timestamp()
        seen.append((at, this_month()))
    assert [month for _, month in seen] == [handlers.month_of(at) for at, _ in seen]
    assert seen[1][1] == "2026-11" and seen[2][1] == "2026-12"
