"""The services behind the gateway: one pooled HTTP client each, and what a failed call means.

The clients are made when the gateway starts and closed when it stops (`app.state.upstreams`).
A call that cannot reach its service becomes a 503 naming the service, one that waits too
long a 504, and one the service breaks off a 502: all in the house error shape, never a hang.
Every call is counted and timed per service (`gonghui_upstream_*` metrics) and, with tracing
on, made in a CLIENT span whose `traceparent` goes with it, so the service's span joins the trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from opentelemetry.trace import SpanKind

from gateway.config import GatewaySettings
from gonghui_shared import metrics
from gonghui_shared.errors import AppError, ServiceUnavailable
from gonghui_shared.logging import request_id_var
from gonghui_shared.tracing import Tracing, mark_failed

log = logging.getLogger(__name__)

SERVICES = ("membership", "training", "stations")
SERVICE_NAMES_ZH = {"membership": "会员服务", "training": "培训服务", "stations": "驿站服务"}

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


@dataclass
class Upstream:
    """One service: its base URL and the pooled client that calls it."""

    name: str
    base_url: str
    client: httpx.AsyncClient
    tracing: Tracing = field(default_factory=Tracing)

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


def get_upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]
