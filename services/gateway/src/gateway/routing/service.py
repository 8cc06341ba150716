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
# The same as bytes, as the ASGI scope and the relay have header names.
_FORWARDED_REQUEST_HEADERS = frozenset(h.encode() for h in FORWARDED_REQUEST_HEADERS)
_DROPPED_RESPONSE_HEADERS = frozenset(h.encode() for h in HOP_BY_HOP | _SET_BY_GATEWAY)


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
    value = _forwarded_for(request)
    return {"x-forwarded-for": value.decode("latin-1")} if value is not None else {}


def _forwarded_for(request: Request) -> bytes | None:
    client = request.scope.get("client")
    if not client:
        return None
    peer = str(client[0])
    if not _peer_is_trusted(peer, request.app.state.runtime.settings.trusted_proxies):
        return peer.encode("latin-1")
    received = [
        hop.strip()
        for name, value in request.scope["headers"]
        if name == b"x-forwarded-for"
        for hop in value.split(b",")
        if hop.strip()
    ]
    return b", ".join([*received, peer.encode("latin-1")])


@functools.lru_cache(maxsize=1024)
def _peer_is_trusted(peer: str, trusted_proxies: str) -> bool:
    # Callers' addresses repeat (keep-alive, NAT): parsing each one once is enough.
    return _is_trusted(peer, _networks(trusted_proxies))


def request_headers(request: Request, token: str | None) -> list[tuple[bytes, bytes]]:
    """What the service sees: the allowed caller headers, then where the call came from, who
    is asking and which request."""
    accept_encoding = b"identity"
    headers: list[tuple[bytes, bytes]] = []
    for name, value in request.scope["headers"]:
        if name in _FORWARDED_REQUEST_HEADERS:
            headers.append((name, value))
        elif name == b"accept-encoding":
            accept_encoding = value
    # Offered only as the caller offered it: the caller must never get a body encoded in
    # a way it did not ask for.
    headers.append((b"accept-encoding", accept_encoding))
    forwarded = _forwarded_for(request)
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded))
    headers.extend(
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in identity_headers(token).items()
    )
    return headers


def response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The service's response headers without hop-by-hop ones and those the gateway sets."""
    lowered = [(name.lower(), name, value) for name, value in headers]
    dropped = _DROPPED_RESPONSE_HEADERS
    named = [value for lower, _, value in lowered if lower == b"connection"]
    if named:
        dropped = dropped | {n.strip().lower() for value in named for n in value.split(b",")}
    return [(name, value) for lower, name, value in lowered if lower not in dropped]


def _has_body(request: Request) -> bool:
    # `getlist`, not `get` or `in`: on a missing header, as on every GET, those raise and
    # catch a KeyError inside Starlette, twice per forwarded read.
    lengths = request.headers.getlist("content-length")
    if lengths:
        return lengths[0].strip() not in ("", "0")
    return bool(request.headers.getlist("transfer-encoding"))


async def forward(
    request: Request, upstream: Upstream, raw_path: bytes, token: str | None
) -> Response:
    """Send the caller's request to the service and stream its answer back."""
    query: bytes = request.scope.get("query_string", b"")
    has_body = _has_body(request)
    try:
        answer = await upstream.relay(
            request.method,
            raw_path + b"?" + query if query else raw_path,
            request_headers(request, token),
            request.stream() if has_body else None,
            # A body the caller sent without a length goes on the same way, chunked.
            chunked=has_body and not request.headers.getlist("content-length"),
        )
    except ClientDisconnect:
        # The caller hung up mid-upload: nobody will read this answer, but it is no 500.
        raise ClientGone() from None
    # The service answered, so its audit log has the call (with the caller's address and
    # this request id): the gateway records only what it answered itself (a 401, a 503 …).
    mark_audited_upstream()
    status = answer.status
    headers = response_headers(list(answer.raw_headers))
    if answer.content.is_eof():
        # A small answer is usually whole by the time its headers are read: no streaming
        # machinery for it, and the connection is free for the next call at once.
        try:
            body = await answer.read()  # already here: no waiting
        finally:
            upstream.done(answer)
        whole = Response(body, status_code=status)
        may_have_body = status >= 200 and status not in (204, 304)
        if may_have_body and not any(name.lower() == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        whole.raw_headers = headers
        return whole

    async def release() -> None:
        # Also when the body was never read (the caller left first): the connection must
        # go back to the pool (or be closed) either way.
        upstream.done(answer)

    relayed = StreamingResponse(
        upstream.body(answer), status_code=status, background=BackgroundTask(release)
    )
    relayed.raw_headers = headers
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
