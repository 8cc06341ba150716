"""The services behind the gateway: pooled connections to each, and what a failed call means.

Each service has two clients, made when the gateway starts and closed when it stops
(`app.state.upstreams`): `session`, an aiohttp session, relays the routed calls, the
gateway's bulk, byte for byte and streamed both ways; `client`, an httpx client, makes the
gateway's own whole calls (the me-endpoints, the services' API documents), where a parsed
`httpx.Response` is what the code wants. aiohttp relays because httpx (through httpcore)
cost 6 to 9 ms of CPU per relayed call here with 32 callers at once.
A call that cannot reach its service becomes a 503 naming the service, one that waits too
long a 504, and one the service breaks off a 502: all in the house error shape, never a hang.
Every call is counted and timed per service (`gonghui_upstream_*` metrics) and, with tracing
on, made in a CLIENT span whose `traceparent` goes with it, so the service's span joins the trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Annotated, Any

import aiohttp
import httpx
from fastapi import Depends, Request
from multidict import CIMultiDict
from opentelemetry.trace import SpanKind
from yarl import URL

from gateway.config import GatewaySettings
from gonghui_shared import metrics
from gonghui_shared.errors import AppError, ServiceUnavailable
from gonghui_shared.logging import request_id_var
from gonghui_shared.tracing import Tracing, mark_failed

log = logging.getLogger(__name__)

SERVICES = ("membership", "training", "stations")
SERVICE_NAMES_ZH = {"membership": "会员服务", "training": "培训服务", "stations": "驿站服务"}

MAX_CONNECTIONS = 100
# Below uvicorn's 5 s keep-alive: we drop an idle connection before the service does, so a
# call never goes out on a socket the service is closing at that moment.
KEEPALIVE_EXPIRY_SECONDS = 4.0


class UpstreamUnavailable(ServiceUnavailable):
    """The service refused the connection, or did not accept it in time."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"The {service} service is unavailable; try again shortly",
            f"{SERVICE_NAMES_ZH.get(service, service)}暂时不可用，请稍后再试",
            details={"service": service},
        )


class UpstreamTimeout(AppError):
    status_code = 504
    code = "upstream_timeout"
    message = "The service did not answer in time"
    message_zh = "服务响应超时"

    def __init__(self, service: str) -> None:
        super().__init__(
            f"The {service} service did not answer in time",
            f"{SERVICE_NAMES_ZH.get(service, service)}响应超时",
            details={"service": service},
        )


class UpstreamFailed(AppError):
    status_code = 502
    code = "upstream_failed"
    message = "The service broke off the call"
    message_zh = "服务中断了请求"

    def __init__(self, service: str) -> None:
        super().__init__(
            f"The {service} service broke off the call",
            f"{SERVICE_NAMES_ZH.get(service, service)}中断了请求",
            details={"service": service},
        )


# Request headers aiohttp would add of its own: the relay sends only what the caller's
# request and the gateway put there (the gateway always sets accept-encoding, see
# `service.request_headers`), and a bodyless call goes without a made-up content-length.
_NOT_ADDED_BY_AIOHTTP = (
    "accept",
    "accept-encoding",
    "user-agent",
    "content-type",
    "content-length",
)

# aiohttp's failures, most specific first: a timeout while connecting (or waiting for a free
# connection) is "unavailable", not "timed out".
_UNAVAILABLE = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_TIMED_OUT = (aiohttp.ServerTimeoutError, TimeoutError)


class _Upload:
    """The caller's request body on its way to the service, watched.

    aiohttp bounds the wait for the answer (`sock_read`, started once the body is sent) but
    not the writing: a service that stops reading an upload would hold the call, and the
    caller, forever. Each chunk must be taken by the service (written and drained) within
    the read timeout, or the call is given up as timed out. Whatever the caller's body
    raised (it hung up; it was too large) is kept, so it is raised instead of the transport
    failure aiohttp turns it into.
    """

    def __init__(self, body: AsyncIterable[bytes], timeout: float) -> None:
        self._body = body
        self._timeout = timeout
        self._call: asyncio.Task[Any] | None = asyncio.current_task()
        self.stalled = False
        self.failure: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self._body:
                if not chunk:
                    continue
                # aiohttp asks for the next chunk once this one is written and drained.
                watch = loop.call_later(self._timeout, self._stall)
                try:
                    yield chunk
                finally:
                    watch.cancel()
        except Exception as exc:
            self.failure = exc
            raise

    def _stall(self) -> None:
        if self._call is not None:
            self.stalled = True
            self._call.cancel()

    def answered(self) -> None:
        """The service answered (or the call failed): no cancelling the caller's task after."""
        self._call = None


def _text(raw: bytes) -> str:
    # aiohttp writes the request's head as UTF-8: decoding as UTF-8 gives the caller's bytes
    # back exactly (ASCII, the usual, included); other bytes cannot pass unchanged.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass
class Upstream:
    """One service: its base URL, the session that relays to it and the client that calls it."""

    name: str
    base_url: str
    client: httpx.AsyncClient
    session: aiohttp.ClientSession
    tracing: Tracing = field(default_factory=Tracing)
    connect_timeout: float = field(init=False)
    read_timeout: float = field(init=False)

    def __post_init__(self) -> None:
        self.connect_timeout = self.session.timeout.connect or 5.0
        self.read_timeout = self.session.timeout.sock_read or 30.0
        self._host = URL(self.base_url).host or ""

    def url(self, raw_path: bytes, query: bytes = b"") -> httpx.URL:
        """The service's URL for a raw (still percent-encoded) path and query string."""
        return httpx.URL(self.base_url).copy_with(
            raw_path=raw_path + (b"?" + query if query else b"")
        )

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send a request, turning transport failures into the house errors; counted, timed
        and traced."""
        if not self.tracing.enabled:
            return await self._send(request, stream=stream)
        with self.tracing.span(
            f"{request.method} {self.name}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "server.address": request.url.host,
                "gonghui.upstream": self.name,
            },
        ) as span:
            self.tracing.inject(request.headers)
            response = await self._send(request, stream=stream)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                mark_failed(span, description=f"HTTP {response.status_code}")
            return response

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self.client.send(request, stream=stream)
            outcome = str(response.status_code)
            return response
        # ConnectTimeout and PoolTimeout are timeouts too: catch them before TimeoutException.
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            outcome = "unavailable"
            log.warning(
                "service unavailable",
                extra={"upstream": self.name, "error": type(exc).__name__},
            )
            raise UpstreamUnavailable(self.name) from exc
        except httpx.TimeoutException as exc:
            outcome = "timeout"
            log.warning(
                "service timed out", extra={"upstream": self.name, "error": type(exc).__name__}
            )
            raise UpstreamTimeout(self.name) from exc
        except httpx.TransportError as exc:
            outcome = "failed"
            log.warning("service call failed", extra={"upstream": self.name, "error": repr(exc)})
            raise UpstreamFailed(self.name) from exc
        finally:
            metrics.UPSTREAM_REQUESTS.labels(self.name, request.method, outcome).inc()
            metrics.UPSTREAM_LATENCY.labels(self.name).observe(time.perf_counter() - started)

    async def relay(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes] | None,
        *,
        chunked: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send a request as it came (`target`: the service's raw path and query) and return
        the answer once its status and headers are in; the caller reads the body with `body`
        or hands the answer back with `done`. A body goes out as it arrives, with the length
        the caller declared in `headers`, else (`chunked`) chunked. Failures are the house
        errors; counted, timed and traced like every call."""
        if not self.tracing.enabled:
            return await self._relay(method, target, headers, body, chunked)
        with self.tracing.span(
            f"{method} {self.name}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "server.address": self._host,
                "gonghui.upstream": self.name,
            },
        ) as span:
            carrier: dict[str, str] = {}
            self.tracing.inject(carrier)
            headers = headers + [
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in carrier.items()
            ]
            response = await self._relay(method, target, headers, body, chunked)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                mark_failed(span, description=f"HTTP {response.status}")
            return response

    async def _relay(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterable[bytes] | None,
        chunked: bool,
    ) -> aiohttp.ClientResponse:
        # encoded=True: the path and query go out exactly as the caller sent them.
        url = URL(self.base_url + _text(target), encoded=True)
        sent = CIMultiDict((_text(name), _text(value)) for name, value in headers)
        upload = _Upload(body, self.read_timeout) if body is not None else None
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self.session.request(
                method,
                url,
                headers=sent,
                data=upload.chunks() if upload is not None else None,
                chunked=True if chunked else None,
                # A redirect is the caller's to follow.
                allow_redirects=False,
            )
            outcome = str(response.status)
            return response
        except asyncio.CancelledError as exc:
            if upload is None or not upload.stalled:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # our own cancel (`_Upload._stall`), not the caller's
            outcome = "timeout"
            log.warning(
                "service timed out", extra={"upstream": self.name, "error": "upload not read"}
            )
            raise UpstreamTimeout(self.name) from exc
        except aiohttp.ClientError as exc:
            if upload is not None and upload.failure is not None:
                # The caller's side failed (it hung up, its body was too large): not the
                # service's doing, so the caller's error it is.
                raise upload.failure from None
            outcome = self._failure(exc)
            raise self._error(outcome) from exc
        except TimeoutError as exc:
            outcome = self._failure(exc)
            raise self._error(outcome) from exc
        finally:
            if upload is not None:
                upload.answered()
            metrics.UPSTREAM_REQUESTS.labels(self.name, method, outcome).inc()
            metrics.UPSTREAM_LATENCY.labels(self.name).observe(time.perf_counter() - started)

    def _failure(self, exc: BaseException) -> str:
        """The outcome (metric label) for a failed relayed call, logged."""
        if isinstance(exc, _UNAVAILABLE):
            log.warning("service unavailable", extra={"upstream": self.name, "error": repr(exc)})
            return "unavailable"
        if isinstance(exc, _TIMED_OUT):
            log.warning("service timed out", extra={"upstream": self.name, "error": repr(exc)})
            return "timeout"
        log.warning("service call failed", extra={"upstream": self.name, "error": repr(exc)})
        return "failed"

    def _error(self, outcome: str) -> AppError:
        if outcome == "unavailable":
            return UpstreamUnavailable(self.name)
        if outcome == "timeout":
            return UpstreamTimeout(self.name)
        return UpstreamFailed(self.name)

    async def body(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The answer's body as the service sends it (aiohttp stops reading the socket while
        too much of it waits unread); the connection goes back afterwards, or is closed if
        the body broke off (then this raises: the caller's answer is cut off too)."""
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "service broke off a response body",
                extra={"upstream": self.name, "error": repr(exc)},
            )
            raise self._error("timeout" if isinstance(exc, _TIMED_OUT) else "failed") from exc
        finally:
            self.done(response)

    def done(self, response: aiohttp.ClientResponse) -> None:
        """The call is over (its body read, or given up on): a connection whose answer was
        read to its end goes back to the pool, any other is closed."""
        response.release()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A whole (not streamed) call as the caller, with the request id: for the me-endpoints."""
        sent = {"accept": "application/json", **(headers or {}), **identity_headers(token)}
        request = self.client.build_request(
            method, path, params=params, json=json, content=content, headers=sent
        )
        response = await self.send(request)
        return response


def identity_headers(token: str | None) -> dict[str, str]:
    """Who is asking (the caller's upstream token) and which request this is part of."""
    headers: dict[str, str] = {}
    if request_id := request_id_var.get():
        headers["x-request-id"] = request_id
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


class Upstreams:
    """The services by name."""

    def __init__(self, upstreams: Mapping[str, Upstream]) -> None:
        self._by_name = dict(upstreams)

    @classmethod
    def from_settings(cls, settings: GatewaySettings, tracing: Tracing | None = None) -> Upstreams:
        """The services' clients; made inside the running loop (the app's startup)."""
        timeout = httpx.Timeout(
            connect=settings.upstream_connect_timeout_seconds,
            read=settings.upstream_timeout_seconds,
            write=settings.upstream_timeout_seconds,
            # Waiting for a free pooled connection is like waiting to connect.
            pool=settings.upstream_connect_timeout_seconds,
        )
        limits = httpx.Limits(
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        bases = {
            "membership": settings.membership_url,
            "training": settings.training_url,
            "stations": settings.stations_url,
        }
        return cls(
            {
                name: Upstream(
                    name,
                    base.rstrip("/"),
                    httpx.AsyncClient(
                        base_url=base.rstrip("/"),
                        timeout=timeout,
                        limits=limits,
                        # Service calls never go through an environment's HTTP proxy.
                        trust_env=False,
                        # One client serves every caller: a cookie a service sets for one
                        # must never ride along on another's call.
                        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                        follow_redirects=False,
                    ),
                    relay_session(settings),
                    tracing or Tracing(),
                )
                for name, base in bases.items()
            }
        )

    def __getitem__(self, name: str) -> Upstream:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Upstream]:
        return iter(self._by_name.values())

    async def aclose(self) -> None:
        for upstream in self:
            await upstream.client.aclose()
            await upstream.session.close()


def relay_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The aiohttp session that relays the routed calls to one service."""
    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS,
        limit_per_host=MAX_CONNECTIONS,
        keepalive_timeout=KEEPALIVE_EXPIRY_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None,
            # Connecting, and waiting for a free connection when all are in use.
            connect=settings.upstream_connect_timeout_seconds,
            # Each wait for the answer's next bytes, from the request's end on.
            sock_read=settings.upstream_timeout_seconds,
        ),
        # Service calls never go through an environment's HTTP proxy.
        trust_env=False,
        # One session serves every caller: a cookie a service sets for one must never ride
        # along on another's call.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Bytes pass through as the service sent them (the caller asked for the encoding).
        auto_decompress=False,
        skip_auto_headers=_NOT_ADDED_BY_AIOHTTP,
        # The gateway checks nothing of the answer's status: every one is handed back.
        raise_for_status=False,
    )


async def get_upstreams(request: Request) -> Upstreams:
    # async: a plain `def` dependency would cost a hop to the thread pool on every call.
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]
