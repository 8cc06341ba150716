"""Routing to the services: the path rule, identity and request ids, headers, bodies, failures.

The services here are fakes on real loopback sockets (see conftest): a stopped one refuses
connections, a full backlog never accepts, a slow one sleeps, exactly as over a network.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from gateway.config import GatewaySettings
from gateway.routing.service import PUBLIC_ROUTES
from gateway.routing.testing import Fake, refused_port, services_at, unaccepting_port
from gateway.routing.upstreams import SERVICES, Upstreams
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for


def member(settings: GatewaySettings, **claims: Any) -> dict[str, str]:
    return auth_header(token_for(settings, Role.member, member_no="5309212026000001", **claims))


def header(call: dict[str, Any], name: str) -> list[str]:
    """Every value of one request header, as the service received it."""
    return [v for k, v in call["headers"] if k == name]


def only_call(fakes: dict[str, Fake], service: str) -> dict[str, Any]:
    """The one call `service` received; the other services received none."""
    for name, fake in fakes.items():
        assert len(fake.echo.calls) == (1 if name == service else 0), (name, fake.echo.calls)
    return fakes[service].echo.calls[0]


@pytest.mark.parametrize(
    ("url", "service", "path", "query"),
    [
        (
            "/v1/membership/members/5309212026000001?x=1&x=2&q=%E5%BC%A0",
            "membership",
            "/v1/members/5309212026000001",
            "x=1&x=2&q=%E5%BC%A0",
        ),
        ("/v1/membership/members/a%2Fb/card", "membership", "/v1/members/a%2Fb/card", ""),
        ("/v1/training/sessions/s1/enrolments", "training", "/v1/sessions/s1/enrolments", ""),
        ("/v1/training/reports/summary?org_id=o1", "training", "/v1/reports/summary", "org_id=o1"),
        ("/v1/stations/stations/nearby?lon=99.9&lat=24.6", "stations", "/v1/stations/nearby", ""),
        ("/v1/stations/subsidies/totals", "stations", "/v1/subsidies/totals", ""),
    ],
)
async def test_the_path_rule_reaches_each_service(
    gateway: httpx.AsyncClient,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
    url: str,
    service: str,
    path: str,
    query: str,
) -> None:
    response = await gateway.get(url, headers=member(routed_settings))
    assert response.status_code == 200, response.text
    assert response.headers["x-upstream"] == service
    call = only_call(fakes, service)
    assert call["method"] == "GET"
    # The raw path, percent-encoding kept: an encoded slash stays one segment.
    assert call["raw_path"] == path
    expected_query = query or url.partition("?")[2]
    assert call["query"] == expected_query
    assert response.json() == call


async def test_identity_and_request_id_reach_the_service(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    token = token_for(routed_settings, Role.county_admin, org_id="o1", org_path="/o1/")
    response = await gateway.get(
        "/v1/training/sessions",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-4711"},
    )
    assert response.status_code == 200
    call = only_call(fakes, "training")
    assert header(call, "authorization") == [f"Bearer {token}"]
    assert header(call, "x-request-id") == ["req-4711"]
    # One request id in the answer: the gateway's, which the service was given.
    assert response.headers.get_list("x-request-id") == ["req-4711"]

    # Without one, the gateway makes one up and hands the same to the service.
    fakes["training"].echo.calls.clear()
    response = await gateway.get("/v1/training/sessions", headers=member(routed_settings))
    made_up = response.headers["x-request-id"]
    assert made_up and header(only_call(fakes, "training"), "x-request-id") == [made_up]


async def test_relevant_headers_pass_and_hop_by_hop_ones_do_not(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    sent = {
        "content-type": "application/json",
        "accept": "application/json",
        "accept-language": "zh-CN",
        "idempotency-key": "k-1",
        "if-none-match": '"v1"',
        "user-agent": "gonghui-app/1.0",
        "accept-encoding": "gzip",
        "cookie": "session=secret",
        "connection": "keep-alive, x-secret",
        "x-secret": "1",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        "upgrade": "websocket",
        "x-forwarded-host": "evil.example",
    } | member(routed_settings)
    response = await gateway.post("/v1/membership/rosters", headers=sent, content=b'{"a": 1}')
    assert response.status_code == 200
    call = only_call(fakes, "membership")
    received = {k for k, _ in call["headers"]}
    for name in (
        "content-type",
        "accept",
        "accept-language",
        "idempotency-key",
        "if-none-match",
        "user-agent",
    ):
        assert header(call, name) == [sent[name]], name
    for name in (
        "cookie",
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
        "x-forwarded-host",
    ):
        assert name not in received, name
    assert header(call, "accept-encoding") == [sent["accept-encoding"]]
    assert call["body_bytes"] == 8 and header(call, "content-length") == ["8"]

    # On the way back: hop-by-hop headers dropped, repeated ones kept.
    assert response.headers["x-upstream"] == "membership"
    assert "keep-alive" not in response.headers and "proxy-authenticate" not in response.headers
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    # The request id is the gateway's (the one the service was given), not the service's own.
    assert response.headers.get_list("x-request-id") == header(call, "x-request-id")


async def test_no_compression_unless_asked_and_no_cookies_between_callers(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    del gateway.headers["accept-encoding"]
    headers = member(routed_settings)
    for _ in range(2):
        # Each answer sets cookies; the gateway keeps none for the next caller's call.
        gateway.cookies.clear()
        response = await gateway.get("/v1/stations/stations", headers=headers)
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    for call in fakes["stations"].echo.calls:
        assert header(call, "accept-encoding") == ["identity"]
        assert header(call, "cookie") == []
    assert len(fakes["stations"].echo.calls) == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_every_method_and_its_body_reach_the_service(
    gateway: httpx.AsyncClient,
    fakes: dict[str, Fake],
    routed_settings: GatewaySettings,
    method: str,
) -> None:
    body = b'{"name": "\xe6\x9d\x8e\xe6\x98\xa5\xe5\x8d\x8e"}'
    response = await gateway.request(
        method,
        "/v1/stations/stations/s1",
        headers=member(routed_settings) | {"content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 200
    call = only_call(fakes, "stations")
    assert (call["method"], call["path"]) == (method, "/v1/stations/s1")
    assert call["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_anonymous_and_invalid_callers_get_401_and_the_service_is_not_called(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake]
) -> None:
    for service in SERVICES:
        for method in ("GET", "POST", "DELETE"):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = await gateway.request(method, f"/v1/{service}/x", headers=headers)
                assert response.status_code == 401, response.text
                error = response.json()["error"]
                assert error["code"] == "unauthorized" and error["message_zh"]
    assert all(not fake.echo.calls for fake in fakes.values())


async def test_public_routes_need_no_token_and_get_none(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    for method, url, service, path in (
        ("GET", "/v1/membership/cards/public-key", "membership", "/v1/cards/public-key"),
        ("POST", "/v1/membership/cards/verify", "membership", "/v1/cards/verify"),
        (
            "GET",
            "/v1/training/certificates/530921-2026-000001-X/verify",
            "training",
            "/v1/certificates/530921-2026-000001-X/verify",
        ),
        ("GET", "/v1/stations/amenities", "stations", "/v1/amenities"),
    ):
        for headers in ({}, member(routed_settings)):
            response = await gateway.request(method, url, headers=headers, json={"token": "t"})
            assert response.status_code == 200, response.text
            call = fakes[service].echo.calls.pop()
            assert (call["method"], call["path"]) == (method, path)
            # A public route is called anonymously even when the caller sent a token.
            assert header(call, "authorization") == []
    # The same paths with another method are not public.
    response = await gateway.delete("/v1/stations/amenities")
    assert response.status_code == 401 and not fakes["stations"].echo.calls


async def test_dot_segments_are_refused_not_forwarded(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    for url in (
        "/v1/membership/%2e%2e/metrics",
        "/v1/membership/members/%2E%2E/%2e%2e/readyz",
        "/v1/training/%2e/sessions",
    ):
        response = await gateway.get(httpx.URL(url), headers=member(routed_settings))
        assert response.status_code == 404, (url, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert all(not fake.echo.calls for fake in fakes.values())


async def test_an_upload_streams_to_the_service_as_it_arrives(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    size, chunk = 8 * 1024 * 1024, 64 * 1024
    block = bytes(range(256)) * (chunk // 256)
    started = fakes["membership"].echo.body_started

    async def upload() -> AsyncIterator[bytes]:
        for sent in range(0, size, chunk):
            if sent == size // 2:
                # Half-way, the service must already be reading: a gateway that buffered
                # the whole body first would only start sending after this generator ends.
                await asyncio.wait_for(started.wait(), 5)
            yield block

    response = await gateway.post(
        "/v1/membership/rosters/import?org_id=o1",
        headers=member(routed_settings)
        | {"content-type": "application/octet-stream", "content-length": str(size)},
        content=upload(),
    )
    assert response.status_code == 200, response.text
    call = only_call(fakes, "membership")
    assert call["body_bytes"] == size
    assert call["body_sha256"] == hashlib.sha256(block * (size // chunk)).hexdigest()
    assert call["body_chunks"] > 1 and header(call, "content-length") == [str(size)]


async def test_a_download_streams_back_whole(
    gateway: httpx.AsyncClient, routed_settings: GatewaySettings
) -> None:
    size = 5 * 1024 * 1024 + 7
    response = await gateway.get(
        f"/v1/membership/download?bytes={size}", headers=member(routed_settings)
    )
    assert response.status_code == 200
    expected = (bytes(range(256)) * 256 * (size // 65536 + 1))[:size]
    assert len(response.content) == size and response.content == expected


async def test_a_service_answer_of_any_status_is_handed_back(
    gateway: httpx.AsyncClient, routed_settings: GatewaySettings
) -> None:
    for status in (201, 204, 404, 409, 422, 500):
        response = await gateway.get(
            f"/v1/training/status/{status}", headers=member(routed_settings)
        )
        assert response.status_code == status
        if status != 204:
            assert response.json()["path"] == f"/v1/status/{status}"


def _sample(service: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "gonghui_upstream_requests_total",
        {"service": service, "method": method, "status": status},
    )
    return value or 0.0


def _latency_count(service: str) -> float:
    value = REGISTRY.get_sample_value(
        "gonghui_upstream_request_seconds_count", {"service": service}
    )
    return value or 0.0


async def test_a_stopped_service_is_a_prompt_503_naming_it_and_recovers(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = member(routed_settings)
    assert (await gateway.get("/v1/membership/members/1", headers=headers)).status_code == 200
    before = _sample("membership", "GET", "unavailable"), _latency_count("membership")
    server = fakes["membership"].server
    await server.stop()
    try:
        started = time.perf_counter()
        response = await gateway.get("/v1/membership/members/1", headers=headers)
        elapsed = time.perf_counter() - started
    finally:
        await server.start()
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"service": "membership"}
    assert "membership" in error["message"] and "会员服务" in error["message_zh"]
    assert error["request_id"] == response.headers["x-request-id"]
    # Refused at once: no waiting for a timeout of any kind.
    assert elapsed < routed_settings.upstream_connect_timeout_seconds + 0.5, elapsed
    assert _sample("membership", "GET", "unavailable") == before[0] + 1
    assert _latency_count("membership") == before[1] + 1
    # Back up on the same port: the pool reconnects.
    recovered = await gateway.get("/v1/membership/members/1", headers=headers)
    assert recovered.status_code == 200


async def test_a_service_that_never_accepts_is_a_503_after_the_connect_timeout(
    gateway: httpx.AsyncClient, routed_app: FastAPI, routed_settings: GatewaySettings
) -> None:
    connect = routed_settings.upstream_connect_timeout_seconds
    with unaccepting_port() as port:
        async with services_at(
            routed_app, routed_settings, training_url=f"http://127.0.0.1:{port}"
        ):
            started = time.perf_counter()
            response = await gateway.get("/v1/training/sessions", headers=member(routed_settings))
            elapsed = time.perf_counter() - started
    assert response.status_code == 503, response.text
    assert response.json()["error"]["details"] == {"service": "training"}
    # It waited for the connect timeout (not failing at once), and not much longer.
    assert connect * 0.9 <= elapsed < connect + 2.0, elapsed


async def test_a_service_never_started_is_a_503(
    gateway: httpx.AsyncClient, routed_app: FastAPI, routed_settings: GatewaySettings
) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    async with services_at(routed_app, routed_settings, stations_url=url):
        response = await gateway.get("/v1/stations/amenities")  # public: no token needed either
    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"service": "stations"}


async def test_a_slow_service_is_a_504_after_the_read_timeout(
    gateway: httpx.AsyncClient, routed_settings: GatewaySettings
) -> None:
    before = _sample("stations", "GET", "timeout")
    started = time.perf_counter()
    response = await gateway.get(
        f"/v1/stations/slow?seconds={routed_settings.upstream_timeout_seconds * 3}",
        headers=member(routed_settings),
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout" and error["details"] == {"service": "stations"}
    read = routed_settings.upstream_timeout_seconds
    assert read * 0.9 <= elapsed < read + 1.5, elapsed
    assert _sample("stations", "GET", "timeout") == before + 1
    # An answer within the timeout is handed back.
    quick = await gateway.get(
        f"/v1/stations/slow?seconds={routed_settings.upstream_timeout_seconds / 4}",
        headers=member(routed_settings),
    )
    assert quick.status_code == 200


async def test_concurrent_calls_share_the_pool(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    headers = member(routed_settings)
    before = _sample("training", "GET", "200")
    responses = await asyncio.gather(
        *(gateway.get(f"/v1/training/sessions/{i}", headers=headers) for i in range(60))
    )
    assert [r.status_code for r in responses] == [200] * 60
    assert sorted(c["path"] for c in fakes["training"].echo.calls) == sorted(
        f"/v1/sessions/{i}" for i in range(60)
    )
    assert _sample("training", "GET", "200") == before + 60


async def test_the_public_route_table_is_the_services_own() -> None:
    """Every route a service serves without a token, and only those, is public here."""
    from membership.main import create_app as membership_app
    from stations.main import create_app as stations_app
    from training.main import create_app as training_app

    for name, factory in (
        ("membership", membership_app),
        ("training", training_app),
        ("stations", stations_app),
    ):
        document = factory().openapi()
        public = {
            (method.upper(), path[len("/v1") :])
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if path.startswith("/v1/") and not operation.get("security")
        }
        assert public == set(PUBLIC_ROUTES[name]), name


async def test_the_gateway_documents_its_routes_and_links_the_services(
    gateway: httpx.AsyncClient, fakes: dict[str, Fake]
) -> None:
    document = (await gateway.get("/openapi.json")).json()
    description = document["info"]["description"]
    for service in SERVICES:
        assert f"/v1/{service}/docs" in description
        assert f"/v1/{service}/openapi.json" in description
        assert f"/v1/{service}/{{path}}" in document["paths"]
        assert f"/v1/{service}/openapi.json" in document["paths"]
    assert "`/v1/<service>/<rest>`" in description and "`/v1/<rest>`" in description
    for path in ("/v1/me", "/v1/me/card", "/v1/me/card.png", "/v1/me/trainings", "/v1/me/apply"):
        assert path in document["paths"], path
    routed = document["paths"]["/v1/membership/{path}"]
    assert set(routed) == {"get", "post", "put", "patch", "delete"}
    assert {p["name"] for p in routed["get"]["parameters"]} == {"path"}
    assert {"401", "503", "504"} <= set(routed["get"]["responses"])
    # Documented as needing a caller, by the same schemes as every route that takes one.
    schemes = set(document["components"]["securitySchemes"])
    for operation in routed.values():
        assert {name for option in operation["security"] for name in option} == schemes

    page = await gateway.get("/v1/training/docs")
    assert page.status_code == 200 and "/v1/training/openapi.json" in page.text
    # The service's document comes from the service's root, /openapi.json.
    proxied = await gateway.get("/v1/training/openapi.json")
    assert proxied.status_code == 200
    assert only_call(fakes, "training")["path"] == "/openapi.json"


async def test_one_pooled_client_per_service_made_at_startup_closed_at_shutdown(
    app: FastAPI, settings: GatewaySettings
) -> None:
    from gateway.main import _on_shutdown

    upstreams = app.state.upstreams  # as the session's gateway made them when it started
    assert {u.name: u.base_url for u in upstreams} == {
        "membership": settings.membership_url,
        "training": settings.training_url,
        "stations": settings.stations_url,
    }
    for upstream in upstreams:
        assert not upstream.client.is_closed
        assert not upstream.session.closed
        assert upstream.connect_timeout == settings.upstream_connect_timeout_seconds
        assert upstream.read_timeout == settings.upstream_timeout_seconds
        timeout = upstream.client.timeout
        assert timeout.connect == settings.upstream_connect_timeout_seconds
        assert timeout.read == settings.upstream_timeout_seconds
    # One session per service, each with its own pool of connections.
    assert len({id(upstream.session) for upstream in upstreams}) == len(SERVICES)
    # The shutdown hook closes every client (here on a stand-in holding fresh ones).
    stand_in = FastAPI()
    stand_in.state.upstreams = Upstreams.from_settings(settings)
    await _on_shutdown(stand_in)
    assert all(upstream.client.is_closed for upstream in stand_in.state.upstreams)
    assert all(upstream.session.closed for upstream in stand_in.state.upstreams)


async def test_a_caller_hanging_up_mid_upload_is_no_500(
    routed_app: FastAPI, fakes: dict[str, Fake], routed_settings: GatewaySettings
) -> None:
    token = token_for(routed_settings, Role.member, member_no="5309212026000001")
    incoming = [
        {"type": "http.request", "body": b"x" * 65536, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/membership/rosters/import",
        "raw_path": b"/v1/membership/rosters/import",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"text/csv"),
            (b"content-length", b"1000000"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway", 80),
    }
    await routed_app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b'"client_disconnected"' in body
