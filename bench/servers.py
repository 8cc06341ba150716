"""The ASGI servers: what uvicorn runs the services with, and granian beside it.

Issue 8: "Measure the same services under granian as well as uvicorn and switch only if
it pays (15% or more on the member lookup)". The comparison serves membership a second
time, under granian (ASGI interface, which runs the app's lifespan; one worker; loopback;
the same app factory and environment), on its own port while the uvicorn process keeps
running, and measures the member lookup against it exactly as against uvicorn. The two
processes share the database and NATS as two replicas of the service would: its relay
leads in one of them at a time, its consumers share their durable.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.stack import Say, Stack
from gonghui_shared.testing.nats_server import free_port
from gonghui_shared.testing.processes import ServiceProcess


def _option(argv: list[str], name: str) -> str | None:
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_settings(argv: list[str]) -> dict[str, Any]:
    """The event loop and HTTP implementation a uvicorn command line gets.

    Read from the command line the harness started (gonghui_shared's `uvicorn_argv`);
    "auto", or nothing given, is resolved as uvicorn resolves it: uvloop and httptools
    when they are installed.
    """
    loop = _option(argv, "--loop") or "auto"
    http = _option(argv, "--http") or "auto"
    if loop == "auto":
        loop = "uvloop (auto)" if _importable("uvloop") else "asyncio (auto)"
    if http == "auto":
        http = "httptools (auto)" if _importable("httptools") else "h11 (auto)"
    return {
        "server": f"uvicorn {_version('uvicorn')}",
        "loop": loop,
        "http": http,
        "workers": int(_option(argv, "--workers") or 1),
        "access_log": "--no-access-log" not in argv,
        "command": " ".join(["python", *argv[1:]]),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def granian_available() -> bool:
    return _importable("granian")


def granian_argv(app: str, port: int) -> list[str]:
    """membership's app under granian, set up as the services' uvicorn is: one worker, the
    uvloop event loop, HTTP/1.1, no access log, no websockets (no service has one)."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",  # `asginl` would skip the lifespan; the services need theirs
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--no-ws",
        "--no-access-log",
        "--log-level",
        "warning",
        app,
    ]


def granian_settings(argv: list[str]) -> dict[str, Any]:
    return {
        "server": f"granian {_version('granian')}",
        "interface": _option(argv, "--interface"),
        "loop": _option(argv, "--loop"),
        "http": _option(argv, "--http"),
        "workers": int(_option(argv, "--workers") or 1),
        "command": " ".join(["python", *argv[1:]]),
    }


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Started in a session of its own: granian's worker is a child process, and the whole
    group must go if the parent does not stop on SIGTERM."""
    with log.open("w") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@asynccontextmanager
async def under_granian(stack: Stack, service: str, key: str, say: Say) -> AsyncIterator[str]:
    """`service` served by granian as `stack.processes[key]` for the block; yields `key`."""
    argv = granian_argv(f"{service}.main:create_app", free_port())
    port = argv[argv.index("--port") + 1]
    env = stack.base_env | stack.settings_env(service)
    log = stack.folder / f"{key}.log"
    process = _spawn(argv, env, log)
    served = ServiceProcess(key, f"http://127.0.0.1:{port}", process, log, argv, env)
    stack.processes[key] = served
    try:
        await served.wait_ready(90)
        say(f"{service} under granian: {served.base} ({' '.join(argv[3:-1])})")
        yield key
    finally:
        del stack.processes[key]
        try:
            await served.stop(20)
        except AssertionError:
            say(f"granian ({key}) did not stop on SIGTERM; killed")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
