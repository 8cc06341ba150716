"""The request audit trail: the middleware, the client address, the append-only table."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import FastAPI
from sqlalchemy import MetaData, inspect

from gonghui_shared.app import RequestContextMiddleware
from gonghui_shared.audit import audit_table, create_audit_table, drop_audit_table
from gonghui_shared.audit.context import mark_personal_data_read
from gonghui_shared.audit.middleware import AuditMiddleware, client_address, parse_networks
from gonghui_shared.audit.writer import AuditWriter
from gonghui_shared.auth import Principal, PrincipalDep, TokenIssuer, TokenVerifier
from gonghui_shared.db import Database
from gonghui_shared.errors import install_error_handlers
from gonghui_shared.ids import new_id
from gonghui_shared.keys import load_private_key, new_ed25519_pem
from gonghui_shared.permissions import Action, Role
from gonghui_shared.reads import ReadPool
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import create_postgres_database, drop_postgres_database
from gonghui_shared.testing import postgres_url_or_skip as _postgres_url_or_skip
from gonghui_shared.testing.audit import assert_append_only, audit_rows

metadata = MetaData()
audit_log = audit_table(metadata)
KEY = load_private_key(new_ed25519_pem())


def _migrate(connection: Any) -> None:
    create_audit_table(Operations(MigrationContext.configure(connection)))


def _unmigrate(connection: Any) -> None:
    drop_audit_table(Operations(MigrationContext.configure(connection)))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def audit_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A database holding only the audit table, built by the migration helper."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("auditdb") / "audit.db"
        url, admin = f"sqlite+aiosqlite:///{path}", None
    else:
        admin = _postgres_url_or_skip()
        url = await create_postgres_database(admin, "gonghui_audit_test")
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(_migrate)
    yield db
    await db.dispose()
    if admin:
        await drop_postgres_database(admin, url)


@pytest.fixture(scope="module")
async def audit_reads(
    audit_db: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ReadPool]:
    """The runtime's read pool, which the rows go in through on PostgreSQL."""
    reads = ReadPool(audit_db, ServiceSettings(data_dir=tmp_path_factory.mktemp("auditreads")))
    yield reads
    await reads.dispose()


def _app(db: Database, reads: ReadPool, trusted: str = "10.0.0.0/8") -> FastAPI:
    """A small app with the audit trail, as create_service_app wires it."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(AuditMiddleware, table=audit_log, trusted_proxies=trusted)
    app.add_middleware(RequestContextMiddleware, service="audit-test")
    app.state.runtime = SimpleNamespace(
        db=db, reads=reads, verifier=TokenVerifier(KEY.public_key()), jwks=None
    )

    @app.post("/v1/orgs/{org_id}/things/{thing_no}", status_code=201)
    async def make_thing(org_id: str, thing_no: int, principal: PrincipalDep) -> dict[str, str]:
        principal.require(Action.orgs_write, f"/c/{org_id}/")
        return {"ok": "yes"}

    @app.get("/v1/people/{person}")
    async def read_person(person: str, principal: PrincipalDep, full: bool = False) -> dict:
        if full:
            mark_personal_data_read("/c/people/")
        return {"person": person}

    @app.delete("/v1/boom")
    async def boom(principal: PrincipalDep) -> None:
        raise RuntimeError("a bug")

    return app


def _headers(subject: str, role: Role = Role.county_admin, **extra: str) -> dict[str, str]:
    token = TokenIssuer(KEY).issue(Principal(subject=subject, role=role, org_path="/c/"))
    return {"Authorization": f"Bearer {token}", **extra}


async def _client(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


async def test_a_write_records_who_what_when_where(
    audit_db: Database, audit_reads: ReadPool
) -> None:
    async with await _client(_app(audit_db, audit_reads), "10.0.0.2") as client:
        response = await client.post(
            "/v1/orgs/o1/things/7",
            headers=_headers(
                "writer-1", **{"X-Request-Id": "req-write-1", "X-Forwarded-For": "203.0.113.9"}
            ),
        )
    assert response.status_code == 201
    [row] = await audit_rows(audit_db, audit_log, request_id="req-write-1")
    assert row["subject"] == "writer-1" and row["role"] == "county_admin"
    assert row["actor_org_path"] == "/c/" and row["org_path"] == "/c/o1/"  # the org acted on
    assert row["method"] == "POST" and row["route"] == "/v1/orgs/{org_id}/things/{thing_no}"
    assert row["path_params"] == {"org_id": "o1", "thing_no": "7"}
    assert row["status"] == 201 and row["personal_data"] is False
    assert row["client_addr"] == "203.0.113.9"  # forwarded by a trusted proxy
    assert row["at"].utcoffset().total_seconds() == 0


async def test_failed_writes_are_recorded_too(audit_db: Database, audit_reads: ReadPool) -> None:
    async with await _client(_app(audit_db, audit_reads), "192.0.2.10") as client:
        denied = await client.post(
            "/v1/orgs/o1/things/1",
            headers=_headers("reader-2", Role.station_operator, **{"X-Request-Id": "req-403"}),
        )
        anonymous = await client.post("/v1/orgs/o1/things/1", headers={"X-Request-Id": "req-401"})
        invalid = await client.post(
            "/v1/orgs/o1/things/x", headers=_headers("writer-2", **{"X-Request-Id": "req-422"})
        )
        crashed = await client.delete(
            "/v1/boom", headers=_headers("writer-2", **{"X-Request-Id": "req-500"})
        )
        unrouted = await client.post("/v1/nowhere", headers={"X-Request-Id": "req-404"})
    assert [denied.status_code, anonymous.status_code, invalid.status_code] == [403, 401, 422]
    assert crashed.status_code == 500 and unrouted.status_code == 404
    [row_403] = await audit_rows(audit_db, audit_log, request_id="req-403")
    assert (row_403["subject"], row_403["status"]) == ("reader-2", 403)
    [row_401] = await audit_rows(audit_db, audit_log, request_id="req-401")
    assert row_401["subject"] is None and row_401["status"] == 401
    [row_422] = await audit_rows(audit_db, audit_log, request_id="req-422")
    assert row_422["status"] == 422 and row_422["path_params"] == {"org_id": "o1", "thing_no": "x"}
    [row_500] = await audit_rows(audit_db, audit_log, request_id="req-500")
    assert (row_500["method"], row_500["status"]) == ("DELETE", 500)
    # matched no route: never reached a handler, nothing to audit
    assert await audit_rows(audit_db, audit_log, request_id="req-404") == []
    # an untrusted peer's X-Forwarded-For is not believed: the peer is the client
    assert row_401["client_addr"] == "192.0.2.10"


async def test_only_unmasked_reads_are_recorded(audit_db: Database, audit_reads: ReadPool) -> None:
    async with await _client(_app(audit_db, audit_reads), "10.0.0.2") as client:
        masked = await client.get(
            "/v1/people/p1", headers=_headers("reader-3", **{"X-Request-Id": "req-masked"})
        )
        full = await client.get(
            "/v1/people/p1?full=true", headers=_headers("reader-3", **{"X-Request-Id": "req-full"})
        )
    assert masked.status_code == full.status_code == 200
    assert await audit_rows(audit_db, audit_log, request_id="req-masked") == []
    [row] = await audit_rows(audit_db, audit_log, request_id="req-full")
    assert row["personal_data"] is True and row["org_path"] == "/c/people/"
    assert row["method"] == "GET" and row["client_addr"] == "10.0.0.2"  # no XFF: the proxy


async def test_requests_finishing_together_share_insert_statements(
    audit_db: Database, audit_reads: ReadPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request's row is stored before its answer, and 30 at once need fewer than 30
    INSERT statements: rows waiting while a write is in flight go in the next one together."""
    batches: list[int] = []
    store = AuditWriter._store

    async def counted(writer: AuditWriter, rows: list[dict[str, Any]]) -> None:
        batches.append(len(rows))
        await store(writer, rows)

    monkeypatch.setattr(AuditWriter, "_store", counted)
    async with await _client(_app(audit_db, audit_reads), "10.0.0.2") as client:
        one_check_at_a_time = asyncio.Lock()  # a connection for checks, not one each

        async def post(n: int) -> str:
            request_id = f"req-batch-{n}"
            response = await client.post(
                f"/v1/orgs/o1/things/{n}",
                headers=_headers("writer-5", **{"X-Request-Id": request_id}),
            )
            assert response.status_code == 201
            async with one_check_at_a_time:  # answered: the row is already there
                assert len(await audit_rows(audit_db, audit_log, request_id=request_id)) == 1
            return request_id

        done = await asyncio.gather(*(post(n) for n in range(30)))
    assert len(set(done)) == 30
    assert sum(batches) == 30 and 1 <= len(batches) < 30


async def test_a_batch_stored_again_leaves_its_rows_as_they_are(
    audit_db: Database, audit_reads: ReadPool
) -> None:
    """A batch runs again when its connection died as it committed: the rows it had stored
    stay once each, and the write is no failure."""
    if not audit_reads.direct:
        pytest.skip("on SQLite a batch is one transaction of the engine's, never run again")
    writer = AuditWriter(audit_db, audit_reads, audit_log)
    rows = [_row(f"req-again-{n}") for n in range(3)]
    await writer._store(rows[:2])
    await writer._store(rows)
    for n in range(3):
        assert len(await audit_rows(audit_db, audit_log, request_id=f"req-again-{n}")) == 1


def _row(request_id: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "at": datetime.now(UTC),
        "request_id": request_id,
        "subject": "writer-7",
        "role": "county_admin",
        "actor_org_path": "/c/",
        "org_path": "/c/o1/",
        "method": "POST",
        "route": "/v1/things",
        "path_params": {"thing_no": "7"},
        "status": 201,
        "personal_data": False,
        "client_addr": "10.0.0.2",
    }


async def test_a_failed_audit_write_is_logged_and_releases_its_requests(
    audit_db: Database, audit_reads: ReadPool, caplog: pytest.LogCaptureFixture
) -> None:
    missing = audit_table(MetaData(), name="audit_log_that_is_not_there")
    writer = AuditWriter(audit_db, audit_reads, missing)
    row = _row("req-lost") | {"subject": "writer-6"}
    with caplog.at_level(logging.ERROR, logger="gonghui_shared.audit.writer"):
        await asyncio.wait_for(
            asyncio.gather(writer.write(row), writer.write(row | {"id": new_id()})), 10
        )
    [record] = [r for r in caplog.records if r.message == "audit rows not written"]
    assert record.rows == 2 and record.routes == ["/v1/things"]


async def test_the_database_refuses_to_change_or_remove_rows(
    audit_db: Database, audit_reads: ReadPool
) -> None:
    async with await _client(_app(audit_db, audit_reads), "10.0.0.2") as client:
        await client.post("/v1/orgs/o1/things/1", headers=_headers("writer-4"))
    await assert_append_only(audit_db, audit_log)


async def test_the_migration_goes_down_cleanly(audit_db: Database, audit_reads: ReadPool) -> None:
    """Down drops the table and its guard (the PostgreSQL function too); up again works."""
    async with audit_db.engine.begin() as conn:
        await conn.run_sync(_unmigrate)
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "audit_log" not in tables
        await conn.run_sync(_migrate)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: XFF ignored
        ("10.0.0.2", None, "10.0.0.2"),  # a proxy with nothing to forward
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # the client wrote a fake address first; the proxies appended the real one and theirs
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("10.0.0.2", "not-an-ip, 10.0.0.9", "10.0.0.9"),  # garbage: last address we trust
        ("10.0.0.2", "10.0.0.7, 10.0.0.9", "10.0.0.7"),  # all ours: the farthest of them
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address_believes_only_trusted_proxies(
    peer: str, forwarded: str | None, expected: str
) -> None:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"client": (peer, 1234), "headers": headers}
    assert client_address(scope, parse_networks("10.0.0.0/8, ::1")) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    scope = {"client": ("10.0.0.2", 1), "headers": [(b"x-forwarded-for", b"198.51.100.1")]}
    assert client_address(scope, parse_networks("")) == "10.0.0.2"
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, gateway.local")
