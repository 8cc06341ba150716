"""Forwarding a caller's request to a service, and the rule that maps the gateway's paths.

The rule, one for every service: the gateway's `/v1/<service>/<rest>` is the service's own
`/v1/<rest>`, query string unchanged. So `/v1/membership/members/5309212026000001` is
membership's `/v1/members/5309212026000001`, `/v1/training/sessions` is training's
`/v1/sessions`, and stations' own `/v1/stations/nearby` is `/v1/stations/stations/nearby`:
uniform beats pretty, and nothing needs a table to translate. Only `/v1/...` of a service
is reachable this way (not its `/metrics` or `/readyz`), and `.`/`..` path segments are
refused rather than handed on.

Bodies stream both ways: a 20 MB roster upload goes to the service as it arrives, and a
roster export comes back as the service sends it, so neither sits in the gateway's memory.

The service learns who is asking from the token and where from by `X-Forwarded-For`, to
which the gateway appends the address it received the call from (the client's own header
is kept only when that address is one of the gateway's GONGHUI_TRUSTED_PROXIES), and which
request by `X-Request-ID`. A forwarded call the service answered is in the service's audit
log with that address and request id, so the gateway's own log leaves it out.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from gateway.routing.upstreams import Upstream, identity_headers
from gonghui_shared.audit import mark_audited_upstream
from gonghui_shared.audit.middleware import Network, parse_networks
from gonghui_shared.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The services' routes that need no login, as (method, path after /v1). Everything else
# needs a caller, and an anonymous call gets its 401 from the gateway without reaching the
# service. A test compares this table with the services' own OpenAPI documents.
PUBLIC_ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "membership": (("GET", "/cards/public-key"), ("POST", "/cards/verify")),
    "training": (("GET", "/certificates/{number}/verify"),),
    "stations": (("GET", "/amenities"),),
}

# Request headers the services get from the caller; everything else (cookies, hop-by-hop
# headers, the caller's own Authorization) stays at the gateway.
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "content-length",
        "content-encoding",
        "idempotency-key",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "user-agent",
    }
)
# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# The gateway's own server writes these for the response it sends (the request id is the
# same one the gateway gave the service).
_SET_BY_GATEWAY = frozenset({"date", "server", "x-request-id"})


class ClientGone(BadRequest):
    code = "client_disconnected"
    message = "The request body ended before it was complete"
    message_zh = "请求内容未传输完整，连接已断开"


class NoSuchPath(NotFound):
    code = "not_found"
    message = "There is no such path"
    message_zh = "路径不存在"


def service_path(request: Request, service: str) -> bytes:
    """The service's raw path for this request: `/v1/<service>/<rest>` -> `/v1/<rest>`."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    # Some clients' ASGI adapters put the query string into raw_path as well.
    raw = raw.split(b"?", 1)[0]
    prefix = f"/v1/{service}".encode()
    if not raw.startswith(prefix + b"/"):
        raise NoSuchPath()
    rest = raw[len(prefix) :]
    segments = unquote(rest.decode("latin-1")).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise NoSuchPath()
    return b"/v1" + rest


@functools.lru_cache(maxsize=4)
def _networks(trusted_proxies: str) -> tuple[Network, ...]:
    return parse_networks(trusted_proxies)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_for(request: Request) -> dict[str, str]:
    """`X-Forwarded-For` for the service: the address the gateway got the call from, after
    the chain our own proxies in front of it built (a header from anyone else is dropped:
    a client may write any address there)."""
    client = request.scope.get("client")
    if not client:
        return {}
    peer = str(client[0])
    trusted = _networks(request.app.state.runtime.settings.trusted_proxies)
    received = [
        hop.strip()
        for value in request.headers.getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]
    chain = [*received, peer] if _is_trusted(peer, trusted) else [peer]
    return {"x-forwarded-for": ", ".join(chain)}


def request_headers(request: Request, token: str | None) -> list[tuple[str, str]]:
    """What the service sees: the allowed caller headers, then where the call came from, who
    is asking and which request."""
    headers = [(k, v) for k, v in request.headers.items() if k in FORWARDED_REQUEST_HEADERS]
    # httpx would otherwise offer gzip on the caller's behalf, and the caller would get
    # a body encoded in a way it never asked for.
    headers.append(("accept-encoding", request.headers.get("accept-encoding", "identity")))
    headers.extend(forwarded_for(request).items())
    headers.extend(identity_headers(token).items())
    return headers


def response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    """The service's response headers without hop-by-hop ones and those the gateway sets."""
    named = {
        name.strip().lower()
        for value in response.headers.get_list("connection")
        for name in value.split(",")
    }
    dropped = HOP_BY_HOP | _SET_BY_GATEWAY | named
    return [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.multi_items()
        if k.lower() not in dropped
    ]


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


async def _relay_body(upstream: Upstream, response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.TransportError as exc:
        # The status line is out already: all we can do is break the connection, so the
        # caller sees a failed download rather than a body cut short that looks complete.
        log.warning(
            "service broke off a response body",
            extra={"upstream": upstream.name, "error": repr(exc)},
        )
        raise


async def forward(
    request: Request, upstream: Upstream, raw_path: bytes, token: str | None
) -> Response:
    """Send the caller's request to the service and stream its answer back."""
    outgoing = upstream.client.build_request(
        request.method,
        upstream.url(raw_path, request.scope.get("query_string", b"")),
        headers=request_headers(request, token),
        content=request.stream() if _has_body(request) else None,
    )
    try:
        response = await upstream.send(outgoing, stream=True)
    except ClientDisconnect:
        # The caller hung up mid-upload: nobody will read this answer, but it is no 500.
        raise ClientGone() from None
    # The service answered, so its audit log has the call (with the caller's address and
    # this request id): the gateway records only what it answered itself (a 401, a 503 …).
    mark_audited_upstream()
    relayed = StreamingResponse(
        _relay_body(upstream, response),
        status_code=response.status_code,
        background=BackgroundTask(response.aclose),
    )
    relayed.raw_headers = response_headers(response)
    return relayed


def relay(response: httpx.Response) -> Response:
    """A whole (read) service response handed back as it came: status, body, content type."""
    return Response(
        response.content,
        status_code=response.status_code,
        media_type=response.headers.get("content-type"),
    )


# ---------------------------------------------------------------- the services' API documents


def rewrite_openapi(service: str, document: dict[str, Any]) -> dict[str, Any]:
    """A service's OpenAPI document with its paths as the gateway serves them.

    Paths outside `/v1/` (health, metrics) are dropped: the gateway does not route them.
    """
    paths = document.get("paths") or {}
    document["paths"] = {
        f"/v1/{service}{path[len('/v1') :]}": operations
        for path, operations in paths.items()
        if path.startswith("/v1/")
    }
    info = document.setdefault("info", {})
    note = (
        f"Served through the gateway: the service's `/v1/<rest>` is the gateway's "
        f"`/v1/{service}/<rest>`, and calls carry the gateway's bearer token."
    )
    info["description"] = f"{note}\n\n{info.get('description', '')}".strip()
    return document


_PATH_PARAMETER = re.compile(r"{([^}:]+)}")


def path_parameters(template: str) -> list[dict[str, Any]]:
    """OpenAPI parameter objects for the `{name}` segments of a route template."""
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(template)
    ]
