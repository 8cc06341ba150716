"""The JSON log line: every field a reader expects, the request id, the time to the millisecond."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from io import StringIO

import pytest

from gonghui_shared.logging import (
    ACCESS_LOGGER,
    BatchedLines,
    JsonFormatter,
    configure_logging,
    log_access,
    request_id_var,
)

ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "gonghui_shared.app", "levelno": logging.INFO, "levelname": "INFO"}
    )
    record.msg, record.args = "%s %s %d", ("GET", "/v1/members/5309212026000001", 200)
    record.created = created
    record.__dict__.update(extra)
    return record


def test_a_record_is_one_json_object_with_its_extra_fields_and_request_id() -> None:
    formatter = JsonFormatter("membership")
    token = request_id_var.set("0123456789abcdef")
    try:
        line = formatter.format(_record(1_790_000_000.25, status=200, ms=1.2, route="/v1/会员"))
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2026-09-21T14:13:20.250+00:00",
        "level": "info",
        "service": "membership",
        "logger": "gonghui_shared.app",
        "msg": "GET /v1/members/5309212026000001 200",
        "request_id": "0123456789abcdef",
        "status": 200,
        "ms": 1.2,
        "route": "/v1/会员",
    }
    assert "会员" in line  # written as text, not \\u escapes


def test_timestamps_are_utc_iso_times_cut_to_the_millisecond() -> None:
    formatter = JsonFormatter("gateway")
    rnd = random.Random(3)
    for created in sorted(1_790_000_000 + rnd.uniform(0, 5) for _ in range(2000)):
        text = json.loads(formatter.format(_record(created)))["ts"]
        assert ISO_MILLIS.fullmatch(text), text
        shown = datetime.fromisoformat(text)
        assert shown.utcoffset() == timedelta(0)
        assert 0 <= created - shown.timestamp() < 0.001 + 1e-6, (created, text)


def test_threads_never_get_another_seconds_text() -> None:
    formatter = JsonFormatter("training")
    wrong: list[tuple[float, str]] = []

    def write(start: float) -> None:
        for n in range(3000):
            created = start + n * 0.37
            shown = json.loads(formatter.format(_record(created)))["ts"]
            if datetime.fromisoformat(shown).timestamp() // 1 != created // 1:
                wrong.append((created, shown))

    threads = [threading.Thread(target=write, args=(1_790_000_000 + i * 0.5,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_uvicorn_writes_no_access_line_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn logs its access line when its logger has a handler, an ancestor's included: the
    app's own line per request must be the only one."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.handlers[:], access.propagate
    # A uvicorn server started earlier in the session (log_level="warning") leaves its level.
    error = logging.getLogger("uvicorn.error")
    saved_error_level = error.level
    error.setLevel(logging.NOTSET)
    try:
        configure_logging("membership", "INFO")
        assert not access.hasHandlers()  # what uvicorn's HTTP protocol asks
        assert logging.getLogger("uvicorn.error").hasHandlers()  # its other lines: ours
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info('%s - "%s %s" %d', "1.2.3.4", "GET", "/x", 200)
        root.handlers[0].flush()  # INFO lines wait for their batch
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [line["msg"] for line in lines] == ["Started server process"]
        assert lines[0]["logger"] == "uvicorn.error" and lines[0]["service"] == "membership"
    finally:
        root.handlers[0].close()
        root.handlers[:], level = saved
        root.setLevel(level)
        access.handlers[:], access.propagate = saved_access
        error.setLevel(saved_error_level)


def test_a_number_orjson_refuses_is_still_written() -> None:
    line = JsonFormatter("stations").format(_record(1_790_000_000.0, big=2**70, keys={1: "a"}))
    entry = json.loads(line)
    assert entry["big"] == 2**70 and entry["keys"] == {"1": "a"}


@contextmanager
def _batched() -> Iterator[tuple[logging.Logger, logging.Logger, StringIO]]:
    """The access logger and another one, writing through one `BatchedLines` (closed after)."""
    stream = StringIO()
    handler = BatchedLines(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    loggers = [logging.getLogger(ACCESS_LOGGER), logging.getLogger("gonghui_shared.runtime")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.handlers[:], logger.propagate = [handler], False
        logger.setLevel(logging.INFO)
    try:
        yield loggers[0], loggers[1], stream
    finally:
        handler.close()
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)


def _messages(stream: StringIO) -> list[str]:
    return [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]


def test_access_lines_wait_and_any_other_line_writes_them_all_in_order() -> None:
    with _batched() as (access, other, stream):
        access.info("GET /v1/dashboard/overview 200")
        access.info("GET /v1/members/5309212026000001 200")
        assert stream.getvalue() == ""
        other.info("stopped cleanly")
        assert _messages(stream) == [
            "GET /v1/dashboard/overview 200",
            "GET /v1/members/5309212026000001 200",
            "stopped cleanly",
        ]
        access.warning("GET /v1/orgs 500")  # worse than INFO: at once too
        assert _messages(stream)[-1] == "GET /v1/orgs 500"


def test_waiting_lines_are_written_within_the_flush_interval_and_at_close() -> None:
    with _batched() as (access, _, stream):
        access.info("first")
        deadline = time.monotonic() + 10 * BatchedLines.FLUSH_SECONDS
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _messages(stream) == ["first"]
        access.info("last")
    assert _messages(stream) == ["first", "last"]  # written at close


def test_a_full_batch_is_written_without_waiting() -> None:
    with _batched() as (access, _, stream):
        for n in range(BatchedLines.BATCH_CHARS // 1000 + 1):
            access.info("%d %s", n, "x" * 1000)
        written = _messages(stream)  # whole lines, in order, long before the interval
        assert written and written == [f"{n} {'x' * 1000}" for n in range(len(written))]


def test_an_access_line_made_without_a_record_is_the_line_a_record_makes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`log_access` writes, under `configure_logging`'s handler alone, what the access
    logger's record would have written; with anything else set up (here a capture, as a
    test's caplog) it logs the record, which that sees."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    fields: dict[str, object] = {"status": 404, "ms": 0.7, "route": "/v1/members/{member_no}"}
    token = request_id_var.set("00000000000000aa")
    try:
        configure_logging("membership", "INFO")
        handler = root.handlers[0]
        log_access("GET /v1/members/5309212026000001 404", fields)
        logging.getLogger(ACCESS_LOGGER).info(
            "%s %s %d", "GET", "/v1/members/5309212026000001", 404, extra=fields
        )
        assert capsys.readouterr().err == ""  # both batched
        handler.flush()
        made, logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert ISO_MILLIS.fullmatch(str(made.pop("ts"))) and logged.pop("ts")
        assert made == logged
        assert made["logger"] == ACCESS_LOGGER and made["request_id"] == "00000000000000aa"

        captured: list[logging.LogRecord] = []
        capture = logging.Handler()
        capture.emit = captured.append  # type: ignore[method-assign]
        root.addHandler(capture)
        log_access("GET /v1/orgs 200", {"status": 200, "ms": 1.0, "route": "/v1/orgs"})
        root.removeHandler(capture)
        assert [(r.name, r.getMessage(), r.__dict__["route"]) for r in captured] == [
            (ACCESS_LOGGER, "GET /v1/orgs 200", "/v1/orgs")
        ]
    finally:
        request_id_var.reset(token)
        root.handlers[0].close()
        root.handlers[:], level = saved
        root.setLevel(level)
