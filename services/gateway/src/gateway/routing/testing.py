"""Test support for routing: ASGI apps served on real loopback sockets, inside the test's loop.

The gateway's calls to the services go over TCP in production, and what can go wrong
there (a refused connection, a connection never accepted, a slow answer) only happens
on a real socket: these servers give the tests one, without a process per service.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import GatewaySettings
from gateway.routing.upstreams import Upstreams


@contextlib.asynccontextmanager
async def services_at(app: FastAPI, settings: GatewaySettings, **urls: str) -> AsyncIterator[None]:
    """A running gateway's upstreams made from `settings` (and `urls`, e.g. training_url=...)
    for the block's duration, then closed, and the gateway's own put back."""
    original = app.state.upstreams
    app.state.upstreams = Upstreams.from_settings(
        settings.model_copy(update=urls), app.state.runtime.tracing
    )
    try:
        yield
    finally:
        await app.state.upstreams.aclose()
        app.state.upstreams = original


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Several servers start and stop in one pytest process: leave its signals alone.
        yield


class LoopbackServer:
    """An ASGI app under uvicorn on 127.0.0.1; `stop()` then `start()` again keeps the port."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.port = 0
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only when the
        # protocol says TCP, and without it every answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",  # the app's own lifespan, if any, is the caller's to run
            # The app sees the connection's own peer (which port a call came from), not the
            # address in the X-Forwarded-For the gateway sends.
            proxy_headers=False,
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what went wrong
            if time.monotonic() > deadline:
                raise TimeoutError(f"the loopback server on port {self.port} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None


@contextlib.contextmanager
def unaccepting_port() -> Iterator[int]:
    """A port that listens but never accepts, its backlog full: connecting to it times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    try:
        # Linux queues backlog + 1 connections; later SYNs are dropped, so connect() waits.
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EchoService:
    """A fake service that answers with what reached it.

    Its JSON answer (and its `calls` log) holds the method, raw path, query, headers, the
    body's size, digest and number of chunks, and the port the call came from.
    `/v1/slow?seconds=` answers late, `/v1/download?bytes=` streams a body,
    `/v1/status/<code>` answers with that status.
    """

    name: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Set once a request body's first bytes have arrived, before the rest of the body.
    body_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        query = parse_qs(scope["query_string"].decode())
        path = scope["path"]
        if path == "/v1/download":
            await self._download(int(query["bytes"][0]), send)
            return
        digest, size, chunks = hashlib.sha256(), 0, 0
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
            if body := message.get("body", b""):
                digest.update(body)
                size += len(body)
                chunks += 1
                self.body_started.set()
        call = {
            "service": self.name,
            "method": scope["method"],
            "path": path,
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_bytes": size,
            "body_sha256": digest.hexdigest(),
            "body_chunks": chunks,
            # The gateway's end of the connection: the same port for calls on one connection.
            "peer_port": scope["client"][1] if scope.get("client") else None,
        }
        self.calls.append(call)
        if path == "/v1/slow":
            await asyncio.sleep(float(query["seconds"][0]))
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/v1/status/") else 200
        body = b"" if status in (204, 304) else json.dumps(call).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-upstream", self.name.encode()),
                    (b"keep-alive", b"timeout=5"),
                    (b"proxy-authenticate", b"Basic"),
                    (b"x-request-id", b"set-by-the-service"),
                    (b"set-cookie", b"a=1"),
                    (b"set-cookie", b"b=2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _download(self, size: int, send: Send) -> None:
        """`size` bytes in 64 KiB chunks, without a length (chunked encoding)."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        block = bytes(range(256)) * 256
        sent = 0
        while sent < size:
            part = block[: min(len(block), size - sent)]
            await send({"type": "http.response.body", "body": part, "more_body": True})
            sent += len(part)
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Fake:
    """A fake service and the server it listens on."""

    echo: EchoService
    server: LoopbackServer
