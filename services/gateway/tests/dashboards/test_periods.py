"""The counter periods chosen for a range of months add up to exactly those months."""

from __future__ import annotations

import itertools

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select

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
