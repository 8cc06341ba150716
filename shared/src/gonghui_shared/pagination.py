"""Cursor pagination on UUIDv7 ids: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute

from gonghui_shared.errors import BadRequest

T = TypeVar("T")
SelectT = TypeVar("SelectT", bound=Select)


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The cursor is not one this endpoint returned"
    message_zh = "分页游标无效"


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = Field(None, description="null on the last page")


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor() from exc
    if not value or not value.isprintable():
        raise InvalidCursor()
    return value


def paginate(
    query: SelectT,
    id_column: InstrumentedAttribute[str] | ColumnElement[str],
    cursor: str | None,
    limit: int,
) -> SelectT:
    """Order by id and fetch one extra row, which tells whether another page exists."""
    if cursor:
        query = query.where(id_column > decode_cursor(cursor))
    return query.order_by(id_column).limit(limit + 1)


def page_of(
    rows: Sequence[Any], limit: int, id_of: Any = lambda r: r.id
) -> tuple[list[Any], str | None]:
    """Split the fetched rows into this page and the next cursor."""
    if len(rows) > limit:
        page = list(rows[:limit])
        return page, encode_cursor(id_of(page[-1]))
    return list(rows), None
