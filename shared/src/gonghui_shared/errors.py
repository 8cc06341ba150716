"""One error shape for every service.

Every 4xx/5xx body is `{"error": {code, message, message_zh, details, request_id}}`:
`code` is stable and machine-readable, the messages are for people. Expected
business failures are `AppError` subclasses that declare their status, code and
both messages once, next to the code that raises them.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from gonghui_shared.logging import request_id_var

log = logging.getLogger(__name__)


class AppError(Exception):
    """A failure the client can understand and act on."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "The request cannot be processed"
    message_zh: ClassVar[str] = "请求无法处理"

    def __init__(
        self,
        message: str | None = None,
        message_zh: str | None = None,
        *,
        details: dict[str, Any] | list[Any] | None = None,
    ) -> None:
        self.text = message or self.message
        self.text_zh = message_zh or self.message_zh
        self.details = details
        super().__init__(self.text)


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    message = "A valid bearer token is required"
    message_zh = "需要有效的访问令牌"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "Your role may not do this"
    message_zh = "您的角色无权执行此操作"


class OutOfScope(Forbidden):
    code = "out_of_scope"
    message = "This organisation is outside your scope"
    message_zh = "该组织不在您的管辖范围内"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found"
    message_zh = "未找到"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state"
    message_zh = "请求与当前状态冲突"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"
    message = "Some fields are invalid"
    message_zh = "部分字段无效"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The upload is too large"
    message_zh = "上传内容过大"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable"
    message_zh = "服务暂时不可用"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    message = "The database cannot be reached right now; try again shortly"
    message_zh = "数据库暂时无法访问，请稍后重试"


class ErrorBody(BaseModel):
    code: str = Field(examples=["member_not_found"])
    message: str = Field(examples=["Member not found"])
    message_zh: str = Field(examples=["会员不存在"])
    details: dict[str, Any] | list[Any] | None = None
    request_id: str | None = Field(None, examples=["3f2c7a0e9b1d4e55"])


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def error_response(
    status: int, code: str, message: str, message_zh: str, details: Any = None
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            code=code,
            message=message,
            message_zh=message_zh,
            details=details,
            request_id=request_id_var.get(),
        )
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "id_number") -> "id_number"; ("query", "limit") -> "limit"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.code, exc.text, exc.text_zh, exc.details)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {
            "field": _field_name(tuple(err.get("loc", ()))),
            "location": str(err.get("loc", ("body",))[0]),
            "type": err.get("type"),
            "message": err.get("msg"),
        }
        for err in exc.errors()
    ]
    names = ", ".join(sorted({f["field"] for f in fields}))
    return error_response(
        422,
        "validation_error",
        f"Invalid fields: {names}",
        f"以下字段无效：{names}",
        fields,
    )


_HTTP_CODES = {
    404: ("not_found", "Not found", "未找到"),
    405: ("method_not_allowed", "Method not allowed", "不支持该请求方法"),
    400: ("bad_request", "Bad request", "请求格式错误"),
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, message, message_zh = _HTTP_CODES.get(
        exc.status_code, ("http_error", str(exc.detail), str(exc.detail))
    )
    return error_response(exc.status_code, code, message, message_zh)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "Internal error", "服务器内部错误")


# PostgreSQL SQLSTATE classes that mean "the server cannot serve us now": connection
# exceptions, insufficient resources (too many connections), operator intervention
# (shutting down, starting up).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
_OUTAGE_SQLITE_MESSAGES = ("database is locked", "unable to open database", "disk i/o error")
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
}


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached or cannot take us now.

    Requests never call another service synchronously (the gateway's upstream calls
    answer their own 503), so a connection error reaching the error handlers is the
    database's: asyncpg raises the socket's own OSError when it cannot connect.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        if not isinstance(exc, sa_exc.OperationalError):
            return False
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", ""))
        if sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
        text = str(exc.orig).lower()
        if any(m in text for m in _OUTAGE_SQLITE_MESSAGES):
            return True
        return exc.orig is not None and is_database_outage(exc.orig)
    if isinstance(exc, OSError):
        return (
            isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
            or exc.errno in _NETWORK_ERRNOS
            # asyncio's create_connection, having tried every address of a host name
            or str(exc).startswith("Multiple exceptions")
        )
    return False


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 `database_unavailable` for an outage (the client may retry); anything else goes
    on as the unexpected error it is, so the exception is counted and logged like any other."""
    if not is_database_outage(exc):
        raise exc
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    error = DatabaseUnavailable()
    response = error_response(error.status_code, error.code, error.text, error.text_zh)
    response.headers["Retry-After"] = "5"
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# Declared on routes so OpenAPI documents the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        401: "Missing or invalid token",
        403: "Role or scope does not allow this",
        404: "Not found",
        409: "Conflicts with the current state",
        422: "Invalid input; `details` names each field",
        503: "The database cannot be reached right now (`database_unavailable`); retry",
    }.items()
}
