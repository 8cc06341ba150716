"""The relay's connections to a service, seen through the gateway: reuse and expiry, the
connection limit, bodies out (declared or chunked) and back (streamed, with flow control),
and services that misbehave on the wire (cut off, not HTTP, hung up, not reading).

The plain routing behaviour (paths, headers, status mapping for stopped or slow services)
is in test_proxy; here the services are the echo fakes and raw sockets that misbehave on
purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from gateway.config import GatewaySettings
from gateway.routing import upstreams as upstreams_module
from gateway.routing.testing import Fake, services_at
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def member(settings: GatewaySettings) -> dict[str, str]:
    return auth_header(token_for(settings, Role.member, member_no="5309212026000001"))


def _failed(service: str) -> float:
    value = REGISTRY.get_sample_value(
        "gonghui_upstream_requests_total", {"service": service, "method": "GET", "status": "failed"}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def misbehaving(handler: Handler, *, receive_buffer: int | None = None) -> AsyncIterator[str]:
    """A raw TCP server on loopback answering with `handler`; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        # Accepted sockets inherit it: the kernel holds little of what is not read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(handler, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


async def test_calls_one_after_another_share_one_connection(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = member(routed_settings)
    for n in range(4):
        response = await gateway.get(f"/v1/training/sessions/{n}?x={n}", headers=headers)
        assert response.status_code == 200 and response.json()["query"] == f"x={n}"
    # A chunked answer read to its end leaves the connection usable as well.
    download = await gateway.get("/v1/training/download?bytes=300000", headers=headers)
    assert download.status_code == 200 and len(download.content) == 300000
    response = await gateway.get("/v1/training/sessions/last", headers=headers)
    assert response.status_code == 200
    ports = {call["peer_port"] for call in fakes["training"].echo.calls}
    # (the download is not in the echo's log)
    assert len(fakes["training"].echo.calls) == 5 and len(ports) == 1, ports


async def test_an_idle_connection_past_its_expiry_is_not_reused(
    gateway: httpx.AsyncClient,
    routed_app: FastAPI,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstreams_module, "KEEPALIVE_EXPIRY_SECONDS", 0.1)
    headers = member(routed_settings)
    async with services_at(routed_app, routed_settings):
        assert (await gateway.get("/v1/stations/stations/1", headers=headers)).status_code == 200
        assert (await gateway.get("/v1/stations/stations/2", headers=headers)).status_code == 200
        await asyncio.sleep(0.5)
        assert (await gateway.get("/v1/stations/stations/3", headers=headers)).status_code == 200
    first, second, third = (call["peer_port"] for call in fakes["stations"].echo.calls)
    assert first == second, "reused while fresh"
    assert third != first, "a new connection after the expiry"


async def test_no_connection_beyond_the_limit_a_waiting_call_gets_503(
    gateway: httpx.AsyncClient,
    routed_app: FastAPI,
    routed_settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstreams_module, "MAX_CONNECTIONS", 1)
    settings = routed_settings.model_copy(
        update={"upstream_connect_timeout_seconds": 0.3, "upstream_timeout_seconds": 5.0}
    )
    headers = member(routed_settings)
    async with services_at(routed_app, settings):
        slow = asyncio.create_task(gateway.get("/v1/membership/slow?seconds=1.5", headers=headers))
        await asyncio.sleep(0.3)  # the slow call holds the only connection
        waiting = await gateway.get("/v1/membership/members/1", headers=headers)
        assert waiting.status_code == 503, waiting.text
        assert waiting.json()["error"]["details"] == {"service": "membership"}
        assert (await slow).status_code == 200
        # The connection came back with the slow call's end.
        again = await gateway.get("/v1/membership/members/1", headers=headers)
        assert again.status_code == 200


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_upload_goes_out_as_declared_or_chunked(
    gateway: httpx.AsyncClient,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
    declared: bool,
) -> None:
    parts = [b"a" * 70_000, b"", b"b" * 5, "李春华".encode()]
    whole = b"".join(parts)

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    for own in ("user-agent", "accept"):  # the test client's: this caller sends neither
        del gateway.headers[own]
    headers = member(routed_settings) | {"content-type": "text/csv"}
    if declared:
        headers["content-length"] = str(len(whole))
    response = await gateway.post(
        "/v1/membership/rosters/import?org_id=o1", headers=headers, content=body()
    )
    assert response.status_code == 200, response.text
    call = fakes["membership"].echo.calls[0]
    assert call["body_bytes"] == len(whole)
    assert call["body_sha256"] == hashlib.sha256(whole).hexdigest()
    sent = {name: value for name, value in call["headers"]}
    if declared:
        assert sent["content-length"] == str(len(whole)) and "transfer-encoding" not in sent
    else:
        assert sent["transfer-encoding"] == "chunked" and "content-length" not in sent
    # Only what the caller sent and the gateway adds: nothing the client library makes up.
    assert sent["content-type"] == "text/csv" and "user-agent" not in sent
    assert "accept" not in sent


async def test_a_large_answer_is_not_read_faster_than_the_caller_takes_it(
    routed_app: FastAPI, routed_settings: GatewaySettings
) -> None:
    total = 256 * 1024 * 1024
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        block = b"x" * 65536
        with contextlib.suppress(ConnectionError):
            while sent < total:
                writer.write(block)
                await writer.drain()
                sent += len(block)
        writer.close()

    token = token_for(routed_settings, Role.member, member_no="5309212026000001")
    first_body = asyncio.Event()
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # no body, and the caller never hangs up
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body":
            first_body.set()
            await asyncio.Event().wait()  # a caller that stops reading

    scope = _scope("GET", "/v1/stations/export", token)
    async with (
        misbehaving(endless) as url,
        services_at(routed_app, routed_settings, stations_url=url),
    ):
        call = asyncio.create_task(routed_app(scope, receive, send))
        try:
            await asyncio.wait_for(first_body.wait(), 5)
            # Let the service write all it can; it stops once the gateway stops reading.
            before = -1
            while sent != before:
                before = sent
                await asyncio.sleep(0.3)
            assert messages[0]["status"] == 200
            assert sent < 64 * 1024 * 1024, f"{sent} bytes read by the gateway for a stalled caller"
        finally:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call


def _scope(method: str, path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway", 80),
    }


async def test_an_answer_cut_off_mid_body_is_not_passed_on_as_whole(
    routed_app: FastAPI, routed_settings: GatewaySettings
) -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    token = token_for(routed_settings, Role.member, member_no="5309212026000001")
    messages: list[dict[str, Any]] = []

    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the caller stays until the answer ends
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    before = _failed("training")
    scope = _scope("GET", "/v1/training/export", token)
    async with (
        misbehaving(cut_short) as url,
        services_at(routed_app, routed_settings, training_url=url),
    ):
        # The status went out already: the gateway can only break the answer off in turn,
        # so its server drops the connection instead of ending the body.
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the server is given
            await routed_app(scope, receive, send)
    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 200
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert all(m.get("more_body") for m in bodies), "the cut-off answer must not end cleanly"
    assert b"".join(m.get("body", b"") for m in bodies) in (b"", b"only part")
    assert _failed("training") == before  # the call itself was answered (a 200)


async def _gibberish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    await writer.drain()
    writer.close()


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


@pytest.mark.parametrize("handler", [_gibberish, _hang_up], ids=["not-http", "hung-up"])
async def test_an_answer_that_is_not_http_or_never_comes_is_a_502(
    gateway: httpx.AsyncClient,
    routed_app: FastAPI,
    routed_settings: GatewaySettings,
    handler: Handler,
) -> None:
    before = _failed("stations")
    async with (
        misbehaving(handler) as url,
        services_at(routed_app, routed_settings, stations_url=url),
    ):
        response = await gateway.get("/v1/stations/stations", headers=member(routed_settings))
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_failed" and error["details"] == {"service": "stations"}
    assert error["message_zh"]
    assert _failed("stations") == before + 1


async def test_a_service_that_stops_reading_an_upload_is_a_504(
    gateway: httpx.AsyncClient, routed_app: FastAPI, routed_settings: GatewaySettings
) -> None:
    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)  # the head read, the body never

    size = 12 * 1024 * 1024
    headers = member(routed_settings) | {
        "content-type": "text/csv",
        "content-length": str(size),
    }
    async with (
        misbehaving(never_reads, receive_buffer=4096) as url,
        services_at(routed_app, routed_settings, membership_url=url),
    ):
        response = await gateway.post(
            "/v1/membership/rosters/import?org_id=o1", headers=headers, content=b"r" * size
        )
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
