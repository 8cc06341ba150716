"""The generated province: every county's people pass the checks a roster import makes;
statistics kept fresh while it loads."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bench import run
from bench.dataset import FULL_COUNTIES, county_code, person
from gonghui_shared.db import Database
from gonghui_shared.identity import normalize_phone, parse_id_number
from gonghui_shared.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url_or_skip,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_county_of_a_full_province_has_a_real_code_and_valid_people() -> None:
    codes = [county_code(index) for index in range(FULL_COUNTIES)]
    assert len(set(codes)) == FULL_COUNTIES
    for index, code in enumerate(codes):
        for n in (index * 10_000, index * 10_000 + 9_999):
            row = person(n, code)
            assert parse_id_number(row["id_number"]).region_code == code[:6]
            normalize_phone(row["phone"])


async def test_statistics_are_refreshed_while_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = postgres_url_or_skip()
    url = await create_postgres_database(admin, "gonghui_bench_analyse")
    made: list[Database] = []
    checker = Database(url, pool_size=1, max_overflow=0)

    class OneDatabaseStack:
        backend = "postgres"

        def database(self, name: str) -> Database:
            made.append(Database(url, pool_size=1, max_overflow=0))
            return made[-1]

    async def analyses() -> int:
        async with checker.reading() as session:
            counted = await session.scalar(
                text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'loaded'")
            )
        return int(counted or 0)

    try:
        async with checker.transaction() as session:
            await session.execute(text("CREATE TABLE loaded (n int)"))
        monkeypatch.setattr(run, "ANALYSE_EVERY", 0.05)
        async with run.analysing_while_loading(OneDatabaseStack()):  # type: ignore[arg-type]
            for _ in range(100):
                await asyncio.sleep(0.05)
                if await analyses() >= 2:
                    break
        assert await analyses() >= 2
        assert made and all(db.engine.pool.checkedout() == 0 for db in made)
    finally:
        await checker.dispose()
        await drop_postgres_database(admin, url)


def test_a_stopped_run_takes_its_services_with_it(tmp_path: Path, nats_url: str) -> None:
    """SIGTERM mid-run: the services the run started stop too (they once ran on, orphaned)."""
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--scale", "0.0002", "--backend", "sqlite"],
        cwd=REPO,
        env=os.environ | {"NATS_URL": nats_url},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert bench.stderr is not None
        ready = ""
        for line in bench.stderr:
            if "services ready:" in line:
                ready = line
                break
        ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", ready)]
        assert ports, "the run never said its services were ready"
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
