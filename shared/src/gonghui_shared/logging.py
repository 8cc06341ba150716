"""Structured JSON logs, one object a line, each carrying the request id.

No log line may hold an ID number, a phone or a token (tests/e2e/test_logs_hold_no_personal_data.py
checks it at DEBUG): the libraries that would write one are held back here.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import httpx

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record. It formats the access line of every request, so the
    encoder is made once (`json.dumps` with options builds one per call) and a second's
    timestamp text is reused by the records written within it."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        # (second, its text), replaced whole: records may come from several threads.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        whole = int(created)
        second, text = self._second
        if second != whole:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (whole, text)
        return f"{text}.{int((created - whole) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encode(entry)


class HideQueryStrings(logging.Filter):
    """Writes `?…` for the query string of each URL a record's arguments hold.

    uvicorn's access line and httpx's request line print whole URLs, and a query may
    carry a phone or an ID number (a search for a member) or a token. Paths are kept:
    they hold ids and member numbers only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(value: object) -> object:
    if isinstance(value, httpx.URL):
        return str(value.copy_with(query=None)) + "?…" if value.query else value
    if isinstance(value, str) and "?" in value and not value.startswith("?"):
        return value.split("?", 1)[0] + "?…"
    return value


_hide_query_strings = HideQueryStrings()
_URL_LOGGERS = ("uvicorn.access", "httpx")
# Libraries that print each SQL statement with its parameters below these levels
# (aiosqlite at DEBUG; SQLAlchemy at INFO, WARNING being its own default): a DEBUG root
# must not turn them on.
_LEAST_LEVELS = {"aiosqlite": logging.INFO, "sqlalchemy": logging.WARNING}


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger, uvicorn's included, through one JSON handler on stderr; uvicorn's
    access line is off (the app's own line has the request id, route and time)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    # What each record would gather and no line shows: its caller's file, function and
    # line, its thread and process (the logging HOWTO's "Optimization"). Finding the
    # caller alone was a sixtieth of a cached dashboard answer's CPU time, for its access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The app writes one line per request itself (`app.RequestContextMiddleware`). uvicorn
    # writes its own access line whenever its logger has a handler, its ancestors' included
    # (`hasHandlers`, asked per connection): propagating to the root would log every request
    # twice, whatever `--no-access-log` said.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    for name in _URL_LOGGERS:
        logging.getLogger(name).addFilter(_hide_query_strings)
    for name, least in _LEAST_LEVELS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), least))
