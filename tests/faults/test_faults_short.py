"""The short fault suite (`make test`): nats-server and a service SIGKILLed under load.

The whole platform runs on loopback with its own nats-server; admissions, enrolments with
attendance and visits go through the gateway while nats-server, then membership (while its
relay publishes a roster import), is killed and started again. Nothing acknowledged may be
lost, nothing applied twice, no dashboard figure off; each fault must be recovered from, end
to end (the 10 s target is `make faults`' to judge: speed is not a unit test's business); and
deduplication must have caught at least one duplicate, or the faults did not exercise it.
`make faults` runs the long version with every fault (tests/faults/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gonghui_shared.testing import postgres_url_or_skip
from tests.faults.report import render
from tests.faults.runner import RunConfig, run


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL, as in production; SQLite only where there is no PostgreSQL to test on."""
    if request.param == "postgres":
        postgres_url_or_skip()
    elif os.environ.get("TEST_POSTGRES_URL"):
        pytest.skip("the short fault suite runs on PostgreSQL here; SQLite stands in without it")
    return str(request.param)


async def test_killing_nats_and_a_service_loses_and_duplicates_nothing(
    backend: str, tmp_path: Path
) -> None:
    config = RunConfig(
        backend=backend,
        faults=["nats_kill", "service_kill"],
        folder=tmp_path,
        rate=8.0,
        before=2.0,
        down=2.0,
        after=4.0,
        killed_service="membership",
        # One settling at the end (not after each fault) keeps the run short; a delivery
        # NATS lost the ack of comes back after the consumers' 30 s ack wait, and the
        # events of its aggregate behind it a second after that.
        settle_between=False,
        settle_timeout=45.0,
        report_path=tmp_path / "report.md",
    )
    report = await run(config)
    table = render(report)
    print(table)
    assert report.problems(timed=False) == [], table
