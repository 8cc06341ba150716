"""The JSON log line: every field a reader expects, the request id, the time to the millisecond."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from datetime import datetime, timedelta

import pytest

from gonghui_shared.logging import JsonFormatter, configure_logging, request_id_var

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
    try:
        configure_logging("membership", "INFO")
        assert not access.hasHandlers()  # what uvicorn's HTTP protocol asks
        assert logging.getLogger("uvicorn.error").hasHandlers()  # its other lines: ours
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info('%s - "%s %s" %d', "1.2.3.4", "GET", "/x", 200)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [line["msg"] for line in lines] == ["Started server process"]
        assert lines[0]["logger"] == "uvicorn.error" and lines[0]["service"] == "membership"
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        access.handlers[:], access.propagate = saved_access
