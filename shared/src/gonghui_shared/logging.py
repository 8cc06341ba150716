"""Structured JSON logs, one object a line, each carrying the request id.

No log line may hold an ID number, a phone or a token (tests/e2e/test_logs_hold_no_personal_data.py
checks it at DEBUG): the libraries that would write one are held back here.

Every request writes a line (its access line), so the lines are cheap: encoded by orjson, and
the access lines written in batches (`BatchedLines`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

import httpx
import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, text as text (no \\u escapes). It formats the access line
    of every request, so it encodes with orjson (a tenth of the json module's time for an
    access line) and reuses a second's timestamp text for the records written within it."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
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
        entry = self._entry(
            record.created, record.levelname.lower(), record.name, record.getMessage()
        )
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encode(entry)

    def _entry(self, created: float, level: str, logger: str, msg: str) -> dict[str, object]:
        entry: dict[str, object] = {
            "ts": self._timestamp(created),
            "level": level,
            "service": self.service,
            "logger": logger,
            "msg": msg,
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        return entry

    def access_line(self, msg: str, fields: dict[str, object]) -> str:
        """The line `format` writes for an INFO record of the access logger with `fields`
        as its extra, made without the record (`log_access`)."""
        entry = self._entry(time.time(), "info", ACCESS_LOGGER, msg)
        entry.update(fields)
        return self._encode(entry)

    @staticmethod
    def _encode(entry: dict[str, object]) -> str:
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            # What orjson refuses and json writes: an int past 64 bits, a dict with keys
            # that are not text.
            return json.dumps(entry, ensure_ascii=False, default=str)


# The logger of the one line every request writes (`app.RequestContextMiddleware`).
ACCESS_LOGGER = "gonghui_shared.access"


class BatchedLines(logging.StreamHandler[TextIO]):
    """Writes the access lines in batches and every other line at once: an access line waits
    at most `FLUSH_SECONDS`, or until `BATCH_CHARS` are waiting, and any other record is
    written with every line waiting before it, so the order holds. A write and a flush a
    request (a system call each) were most of an access line's cost; nginx buffers its
    access log the same way. The access lines waiting are written when the handler is
    flushed or closed, or another line comes: the service's own shutdown lines, after its
    last request, write them. A process killed outright loses at most the last
    `FLUSH_SECONDS` of them."""

    FLUSH_SECONDS = 0.5
    BATCH_CHARS = 64 * 1024

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._waiting_chars = 0
        self._stop_flushing = threading.Event()
        self._flusher: threading.Thread | None = None
        _batching.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        # `Handler.handle` holds the handler's lock around this.
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)
            return
        batched = record.name == ACCESS_LOGGER and record.levelno <= logging.INFO
        self._add(line, batched, record)

    def add_access_line(self, line: str) -> None:
        """An access line made already (`log_access`): batched as `emit` batches it."""
        self.acquire()
        try:
            self._add(line, batched=True)
        finally:
            self.release()

    def _add(self, line: str, batched: bool, record: logging.LogRecord | None = None) -> None:
        # Called with the handler's lock held.
        self._waiting.append(line)
        self._waiting_chars += len(line)
        if not batched or self._waiting_chars >= self.BATCH_CHARS:
            self._write_waiting(record)
        elif self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_every_while_open, name="log-flusher", daemon=True
            )
            self._flusher.start()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_waiting()
        finally:
            self.release()

    def close(self) -> None:
        self._stop_flushing.set()
        self.flush()
        super().close()

    def _write_waiting(self, record: logging.LogRecord | None = None) -> None:
        if not self._waiting:
            return
        text = self.terminator.join(self._waiting) + self.terminator
        self._waiting.clear()
        self._waiting_chars = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - as StreamHandler: report, never raise
            if record is not None:
                self.handleError(record)

    def _flush_every_while_open(self) -> None:
        while not self._stop_flushing.wait(self.FLUSH_SECONDS):
            self.flush()

    def _forget_flusher(self) -> None:
        """In a forked child: the parent's flusher thread is not there."""
        self._flusher = None


_batching: weakref.WeakSet[BatchedLines] = weakref.WeakSet()
_access_logger = logging.getLogger(ACCESS_LOGGER)


def log_access(msg: str, fields: dict[str, object]) -> None:
    """Logs a request's access line, `_access_logger.info(msg, extra=fields)`, and when
    `configure_logging`'s handler alone would write it, as that handler would, with no
    record made: handling the record through `logging` was an eighth of a cached
    dashboard answer's CPU time in the gateway. Anything else set up (a test's capture,
    another handler, a filter, a level) gets the record as usual."""
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (
        type(handler) is BatchedLines
        and isinstance(formatter := handler.formatter, JsonFormatter)
        and not handler.filters
        and not logging.root.filters
        and not _access_logger.handlers
        and not _access_logger.filters
        and _access_logger.propagate
        and handler.level <= logging.INFO
        and _access_logger.isEnabledFor(logging.INFO)
    ):
        handler.add_access_line(formatter.access_line(msg, fields))
    else:
        _access_logger.info(msg, extra=fields)


def _after_fork_in_child() -> None:
    for handler in list(_batching):
        handler._forget_flusher()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
    handler = BatchedLines(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    # What each record would gather and no line shows: its caller's file, function and
    # line, its thread and process (the logging HOWTO's "Optimization"). Finding the
    # caller alone was a sixtieth of a cached dashboard answer's CPU time, for its access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for replaced in root.handlers:
        if isinstance(replaced, BatchedLines):
            replaced.close()  # its waiting lines written, its flusher stopped
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
