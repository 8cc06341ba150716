"""Visits recorded per second through `POST /v1/stations/{id}/visits` (not part of `make test`).

Migrates a fresh database, puts a county, a township, a station and the members in the
replicas, then records visits through the app in-process (httpx over ASGI, as the
station's operator): `--visits` anonymous ones, the same number with a member card
(verified offline: an Ed25519 signature check, plus a replica lookup), then a half-and-half
mix, one after another and then `--concurrency` at a time. Every request also verifies its
bearer token (Ed25519 again) and writes the visit and its outbox row in one transaction.
It also times the card check alone, which is pure CPU.

    .venv/bin/python services/stations/bench/visit_rate.py
    .venv/bin/python services/stations/bench/visit_rate.py \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres

With `--postgres ADMIN_URL` a database is created for the run and dropped afterwards.
NATS is used when `--nats-url` (or NATS_URL) answers; without it the outbox keeps the events.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gonghui_shared.db import Database, normalise_url
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.testing import (
    auth_header,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    token_for,
)
from stations.cards import load_card_verifier
from stations.config import StationsSettings
from stations.main import create_app
from stations.replicas.models import MemberReplica, OrgReplica
from stations.testing import dev_card_key, insert_station, sign_member_card

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server; default SQLite")
    parser.add_argument("--visits", type=int, default=1000, help="visits per measurement")
    parser.add_argument("--members", type=int, default=500, help="members in the replica")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:1"))
    return parser.parse_args()


async def seed(db: Database, members: int) -> tuple[dict[str, Any], list[str]]:
    """A county and a township in the org replica, and active members in the member replica."""
    now = datetime.now(UTC)
    county_id, township_id = new_id(), new_id()
    county_path = f"/{county_id}/"
    township = {"id": township_id, "path": f"{county_path}{township_id}/"}
    member_nos = [f"530921{2026}{n:06d}" for n in range(1, members + 1)]
    async with db.transaction() as session:
        session.add_all(
            [
                OrgReplica(
                    id=county_id,
                    parent_id=None,
                    path=county_path,
                    org_type="county_federation",
                    name="凤庆县总工会",
                    region_code="530921000000",
                    last_event_at=now,
                ),
                OrgReplica(
                    id=township_id,
                    parent_id=county_id,
                    path=township["path"],
                    org_type="township_union",
                    name="凤山镇工会",
                    region_code="530921101000",
                    last_event_at=now,
                ),
            ]
        )
        session.add_all(
            MemberReplica(
                member_no=no,
                member_id=new_id(),
                category="new_employment" if n % 3 else "migrant_worker",
                org_id=township_id,
                org_path=township["path"],
                status="active",
                last_event_at=now,
            )
            for n, no in enumerate(member_nos)
        )
    return township, member_nos


async def rate(
    count: int, concurrency: int, post: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Visits per second and per-request milliseconds, `concurrency` requests in flight."""
    timings: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            await post(i)
            timings.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started), timings


async def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stations-bench-"))
    admin_url = normalise_url(args.postgres) if args.postgres else None
    if admin_url:
        url = await create_postgres_database(admin_url, "stations_bench")
    else:
        url = normalise_url(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    try:
        await migrate(ALEMBIC_INI, url)
        settings = StationsSettings(
            database_url=url,
            data_dir=folder,
            nats_url=args.nats_url,
            subject_root=f"bench{new_id()[-8:]}",
            log_level="WARNING",
        )
        await run(args, settings)
    finally:
        if admin_url:
            await drop_postgres_database(admin_url, url)
    return 0


async def run(args: argparse.Namespace, settings: StationsSettings) -> None:
    seal = dev_card_key(settings)  # the dev seal membership would sign with, under data_dir
    verifier = load_card_verifier(settings)
    cards = [sign_member_card(seal, no) for no in [f"530921{2026}{n:06d}" for n in range(1, 1001)]]

    # The card check alone: signature, claims, no database.
    started = time.perf_counter()
    for card in cards:
        verifier.verify(card)
    verify_us = (time.perf_counter() - started) / len(cards) * 1e6

    app = create_app(settings)
    logging.getLogger("gonghui_shared.bus").setLevel(logging.CRITICAL)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        township, member_nos = await seed(runtime.db, args.members)
        station = await insert_station(runtime, township)
        member_cards = [sign_member_card(seal, no) for no in member_nos]
        headers = auth_header(
            token_for(
                settings, Role.station_operator, org_id=township["id"], org_path=township["path"]
            )
        )
        url = f"/v1/stations/{station['id']}/visits"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stations") as client:

            def poster(card_every: int) -> Callable[[int], Awaitable[None]]:
                async def post(i: int) -> None:
                    body: dict[str, Any] = {"services": ["drinking_water", "rest"], "rating": 5}
                    if card_every and i % card_every == 0:
                        body["member_card"] = member_cards[i % len(member_cards)]
                    response = await client.post(url, json=body, headers=headers)
                    if response.status_code != 201:
                        raise RuntimeError(response.text)

                return post

            for _ in range(20):  # warm-up: connections, caches, the first compiled statements
                await poster(2)(0)
            print(f"database    {runtime.db.dialect}")
            print(f"card check  {verify_us:.0f} µs per card (signature + claims, CPU only)")
            print(f"{'visits':<22} {'in flight':>9} {'visits/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
            for name, card_every in (
                ("anonymous", 0),
                ("with member card", 1),
                ("half with card", 2),
            ):
                for concurrency in (1, args.concurrency):
                    per_second, timings = await rate(args.visits, concurrency, poster(card_every))
                    q = statistics.quantiles(timings, n=100, method="inclusive")
                    print(
                        f"{name:<22} {concurrency:>9} {per_second:>9.0f}"
                        f" {statistics.median(timings):>7.1f} {q[98]:>7.1f}"
                    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
