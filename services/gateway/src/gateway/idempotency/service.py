"""Replay the first answer to a retried POST that carries the same `Idempotency-Key`.

The key belongs to the principal that sent it. The first request claims the key
(a row with no status yet, committed at once) and runs; its answer is then stored
with it for `idempotency_ttl_seconds`. A retry with the same method, path and body
gets that answer again, marked `Idempotent-Replayed: true`, and never reaches the
service; the same key on a different request is refused (422), and a retry while
the first is still running gets 409. A 5xx, or a failure before any answer, frees
the key so the client may try again. Freeing the key and storing the answer are
retried through a short database outage, and an answer that could not be stored is
still returned: the service did the work, and the caller must hear of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.base import utcnow
from gateway.config import GatewaySettings
from gateway.idempotency.models import IdempotentRequest
from gonghui_shared.db import Database
from gonghui_shared.errors import AppError, Conflict, Unprocessable, is_database_outage

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
# How long a request keeps trying to free its key, or store its answer, while the
# database is unreachable, before leaving the key to `idempotency_in_flight_seconds`.
BOOKKEEPING_SECONDS = 10.0
_KEPT_HEADERS = frozenset({"content-type", "location"})


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request"
    message_zh = "该幂等键已用于另一个不同的请求"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed; retry shortly"
    message_zh = "使用该幂等键的请求仍在处理中，请稍后重试"


class InvalidIdempotencyKey(AppError):
    status_code = 400
    code = "invalid_idempotency_key"
    message = "An Idempotency-Key is 1 to 200 printable characters"
    message_zh = "幂等键须为 1 至 200 个可打印字符"


Handler = Callable[[], Awaitable[Response]]


async def idempotent(request: Request, subject: str, handler: Handler) -> Response:
    """Run `handler` once per (subject, Idempotency-Key); without the header, just run it."""
    key = request.headers.get(HEADER)
    if key is None:
        return await handler()
    if not 0 < len(key) <= 200 or not key.isprintable():
        raise InvalidIdempotencyKey()
    db: Database = request.app.state.runtime.db
    settings: GatewaySettings = request.app.state.runtime.settings
    body_hash = hashlib.sha256(await request.body()).hexdigest()
    path = request.url.path[:800]
    stored = await _claim(db, settings, subject, key, request.method, path, body_hash)
    if stored is not None:
        if (stored.method, stored.path, stored.body_hash) != (request.method, path, body_hash):
            raise IdempotencyKeyReused()
        if stored.status is None:
            raise IdempotencyInProgress()
        return _replay(stored)
    try:
        response = await handler()
        body = b"".join([chunk async for chunk in _chunks(response)])
    except Exception:
        await _persist("free", lambda: _release(db, subject, key))
        raise
    except BaseException:  # cancelled: no time to wait for the database
        await _release(db, subject, key)
        raise
    if response.status_code >= 500:
        await _persist("free", lambda: _release(db, subject, key))
    else:
        kept = [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in response.raw_headers
            if name.decode("latin-1").lower() in _KEPT_HEADERS
        ]
        # The service has done the work: the caller gets its answer even if it cannot
        # be stored (a retry then waits for the in-flight limit instead of a replay).
        await _persist(
            "store the answer to",
            lambda: _store(db, subject, key, response.status_code, json.dumps(kept), body),
        )
    answer = Response(body, status_code=response.status_code, background=response.background)
    answer.raw_headers = [
        (n, v) for n, v in response.raw_headers if n.lower() != b"content-length"
    ] + [(b"content-length", str(len(body)).encode())]
    return answer


async def _chunks(response: Response) -> AsyncIterator[bytes]:
    """The whole answer, streamed (a relayed service answer) or not."""
    if not isinstance(response, StreamingResponse):
        yield bytes(response.body)
        return
    async for chunk in response.body_iterator:
        yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)


async def _claim(
    db: Database,
    settings: GatewaySettings,
    subject: str,
    key: str,
    method: str,
    path: str,
    body_hash: str,
) -> IdempotentRequest | None:
    """Claim the key (None), or return the request that holds it."""
    expired = utcnow() - timedelta(seconds=settings.idempotency_ttl_seconds)
    abandoned = utcnow() - timedelta(seconds=settings.idempotency_in_flight_seconds)
    for _ in range(2):
        try:
            async with db.transaction() as session:
                session.add(
                    IdempotentRequest(
                        subject=subject, key=key, method=method, path=path, body_hash=body_hash
                    )
                )
            return None
        except IntegrityError:
            pass
        async with db.transaction() as session:
            row = await session.scalar(
                select(IdempotentRequest).where(
                    IdempotentRequest.subject == subject, IdempotentRequest.key == key
                )
            )
            if row is None:
                continue  # released meanwhile: claim it again
            stale = row.created_at <= expired or (
                row.status is None and row.created_at <= abandoned
            )
            if not stale:
                return row
            await session.delete(row)
    raise IdempotencyInProgress()


async def _persist(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run a bookkeeping step, retrying through a short database outage.

    Without this, a key whose answer could be neither stored nor freed stays "in progress"
    for `idempotency_in_flight_seconds` (minutes): every retry of the request gets 409,
    even one the service never saw. Only an outage is waited out; any other error is a bug
    that waiting will not mend.
    """
    delay, deadline = 0.1, time.monotonic() + BOOKKEEPING_SECONDS
    while True:
        try:
            await step()
            return
        except Exception as exc:  # noqa: BLE001 - logged; the caller still gets its answer
            if not is_database_outage(exc) or time.monotonic() + delay > deadline:
                log.warning(
                    "cannot %s an idempotency key: %s",
                    what,
                    exc,
                    extra={"error": type(exc).__name__},
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def _store(
    db: Database, subject: str, key: str, status: int, headers: str, body: bytes
) -> None:
    async with db.transaction() as session:
        row = await session.get(IdempotentRequest, (subject, key))
        if row is not None:
            row.status, row.headers, row.body = status, headers, body


async def _release(db: Database, subject: str, key: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.subject == subject, IdempotentRequest.key == key
            )
        )


def _replay(stored: IdempotentRequest) -> Response:
    response = Response(stored.body or b"", status_code=stored.status or 200)
    headers = json.loads(stored.headers or "[]")
    response.raw_headers = [
        *(h for h in response.raw_headers if h[0] != b"content-type"),
        *((n.encode("latin-1"), v.encode("latin-1")) for n, v in headers),
        (b"idempotent-replayed", b"true"),
    ]
    return response
