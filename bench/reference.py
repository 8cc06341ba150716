"""The floors between the bare ceiling and a service: what FastAPI alone, and FastAPI with one
database read, keep of the bare endpoint on this machine.

Issue 8 read its targets against figures like these (a minimal FastAPI endpoint with a path
parameter and a pydantic response answered 38% of bare; asyncpg did about 32,000 primary-key
lookups a second). The harness measures them in the same run, served the same way, so a
service's ratio can be read against what any FastAPI endpoint doing that much work keeps:

- `/minimal/{member_no}`: a path parameter in, a pydantic model out, nothing else;
- `/lookup/{member_no}`: the same with one asyncpg lookup of the member by number in
  membership's own database (PostgreSQL runs only, `BENCH_REFERENCE_DSN`): no token, no
  audit row, no access log, no personal data to decrypt.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

DSN_VARIABLE = "BENCH_REFERENCE_DSN"
_LOOKUP = (
    "SELECT member_no, org_id, org_path, status, category, joined_on "
    "FROM members WHERE member_no = $1"
)


class MemberFloor(BaseModel):
    member_no: str
    org_id: str
    org_path: str
    status: str
    category: str
    joined_on: date | None


def create_app() -> FastAPI:
    dsn = os.environ.get(DSN_VARIABLE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4) if dsn else None
        try:
            yield
        finally:
            if app.state.pool is not None:
                await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/minimal/{member_no}")
    async def minimal(member_no: str) -> MemberFloor:
        return MemberFloor(
            member_no=member_no,
            org_id="0191c0de-0000-7000-8000-000000000000",
            org_path="/530102/530102001/530102001001",
            status="active",
            category="migrant_worker",
            joined_on=date(2026, 3, 1),
        )

    @app.get("/lookup/{member_no}")
    async def lookup(member_no: str) -> MemberFloor:
        pool: Any = app.state.pool
        if pool is None:
            raise HTTPException(404, "no database: BENCH_REFERENCE_DSN is not set")
        row = await pool.fetchrow(_LOOKUP, member_no)
        if row is None:
            raise HTTPException(404, "no such member")
        return MemberFloor(**dict(row))

    return app
