"""The audit middleware: one row per write, and per read that showed personal data unmasked.

It runs inside the request-id middleware, lets the request through, and when the status
is known (at `http.response.start`, or an unhandled error) writes the row, before the
response goes out: a client never sees the answer to a write that left no record. Rows
of requests finishing together share one INSERT (`AuditWriter`). Failed writes (4xx,
5xx) are recorded as well; requests that matched no route never reached a handler and
are not, nor are those a service behind this one answered (it writes their row).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonghui_shared.audit.context import AuditContext, audit_context_var
from gonghui_shared.audit.writer import AuditWriter
from gonghui_shared.ids import new_id
from gonghui_shared.logging import request_id_var

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_PARAM = 200  # characters kept of each path parameter


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """`"10.0.0.5, 172.18.0.0/16"` as networks; a bad entry raises ValueError."""
    entries = text.split(",") if isinstance(text, str) else list(text)
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str | None:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the nearest
    address in `X-Forwarded-For` that is not one (read from the right, where our own
    proxies append; whatever a client writes further left is not believed)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if peer is None or not trusted or not _trusted(_ip(peer), trusted):
        return peer
    forwarded = [
        part.strip()
        for name, value in scope.get("headers") or []
        if name == b"x-forwarded-for"
        for part in value.decode("latin-1").split(",")
    ]
    nearest = peer
    for hop in reversed(forwarded):
        address = _ip(hop)
        if address is None:
            break  # garbage from beyond our proxies: the last address we trust is all we know
        nearest = str(address)
        if not _trusted(address, trusted):
            break
    return nearest


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: tuple[Network, ...]
) -> bool:
    return address is not None and any(address in network for network in trusted)


class AuditMiddleware:
    """Writes the audit row of every write, and of every read marked as showing personal data."""

    def __init__(self, app: ASGIApp, table: Table, trusted_proxies: str = "") -> None:
        self.app = app
        self.table = table
        self.trusted = parse_networks(trusted_proxies)
        self._writer: AuditWriter | None = None  # made for the runtime's database on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = AuditContext()
        token = audit_context_var.set(context)
        started = datetime.now(UTC)
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            if scope.get("route") is None:
                return  # matched no route: never reached a handler
            if scope["method"] not in WRITE_METHODS and not context.personal_data:
                return
            if context.audited_upstream:
                return  # the service that answered has the row
            await self._write(scope, context, status, started)

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                await record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            await record(500)  # the server error handler outside will answer 500
            raise
        finally:
            audit_context_var.reset(token)

    async def _write(self, scope: Scope, context: AuditContext, status: int, at: datetime) -> None:
        principal = (scope.get("state") or {}).get("principal") or context.actor
        actor_org_path = getattr(principal, "org_path", None)
        role = getattr(principal, "role", None)
        route = scope["route"]
        row: dict[str, Any] = {
            "id": new_id(),
            "at": at,
            "request_id": request_id_var.get(),
            "subject": getattr(principal, "subject", None),
            "role": None if role is None else str(role),
            "actor_org_path": actor_org_path,
            "org_path": context.target_org_path or actor_org_path,
            "method": scope["method"],
            "route": getattr(route, "path", "?")[:200],
            "path_params": {
                str(k): str(v)[:_MAX_PARAM] for k, v in (scope.get("path_params") or {}).items()
            },
            "status": status,
            "personal_data": context.personal_data,
            "client_addr": (client_address(scope, self.trusted) or "")[:64] or None,
        }
        runtime = scope["app"].state.runtime
        if self._writer is None or self._writer.db is not runtime.db:
            self._writer = AuditWriter(runtime.db, runtime.reads, self.table)
        await self._writer.write(row)
