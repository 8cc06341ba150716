"""Request size limits at the gateway: refused with 413 before a byte reaches a service.

JSON and form bodies are small (`max_body_bytes`); a roster upload
(`POST /v1/membership/rosters/import`) and other binary uploads may be larger
(`max_upload_bytes`). A declared `Content-Length` is judged up front; a body sent
without one (chunked) is read up to the limit and refused once it passes it.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import GatewaySettings
from gonghui_shared.app import RequestContextMiddleware
from gonghui_shared.errors import PayloadTooLarge, error_response

ROSTER_IMPORT = "/v1/membership/rosters/import"
_SMALL_TYPES = (b"application/json", b"application/x-www-form-urlencoded")
# Methods whose requests carry no body unless they declare one.
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyTooLarge(PayloadTooLarge):
    message = "The request body is too large"
    message_zh = "请求内容过大"


class BodySizeLimit:
    """Refuses a request whose body is larger than its kind allows."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes

    def limit(self, scope: Scope) -> int:
        content_type = next(
            (value for name, value in scope.get("headers") or [] if name == b"content-type"), b""
        )
        return self._limit(scope["path"], content_type)

    def _limit(self, path: str, content_type: bytes) -> int:
        if path == ROSTER_IMPORT or not content_type.lower().startswith(_SMALL_TYPES):
            return self.max_upload
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        content_type = b""
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        if declared is None and scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"], content_type)
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                await self._refuse(send, limit)
                return
            await self.app(scope, receive, send)
            return
        # No declared length: read the body (at most `limit` bytes are kept) and replay it.
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._refuse(send, limit)
                return
            more = message.get("more_body", False)

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        error = BodyTooLarge(
            f"The request body is larger than {limit} bytes",
            f"请求内容超过 {limit} 字节",
            details={"max_bytes": limit},
        )
        response = error_response(
            error.status_code, error.code, error.text, error.text_zh, error.details
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Inside the request id (so the 413 carries one), before any middleware reads a body."""
    position = next(
        (i + 1 for i, m in enumerate(app.user_middleware) if m.cls is RequestContextMiddleware),
        0,
    )
    app.user_middleware.insert(
        position,
        Middleware(
            BodySizeLimit,
            max_body_bytes=settings.max_body_bytes,
            max_upload_bytes=settings.max_upload_bytes,
        ),
    )
