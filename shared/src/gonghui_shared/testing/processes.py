"""Services as real processes for end-to-end tests: start under uvicorn, wait until ready,
stop with SIGTERM and start again on the same port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def uvicorn_argv(app: str, port: int) -> list[str]:
    """The command line that serves `app` ("package.main:create_app") on loopback."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # The event loop and HTTP parser written in C, as in production (uvicorn[standard]).
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        # The app logs one JSON line per request itself; uvicorn's line would repeat it.
        "--no-access-log",
    ]


@dataclass
class ServiceProcess:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    # How it was started, so that `start` can start it again the same way.
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def launch(
        cls, name: str, app: str, port: int, env: dict[str, str], log: Path
    ) -> ServiceProcess:
        """Start `app` under uvicorn on 127.0.0.1:`port`, logging to `log` (not yet ready)."""
        argv = uvicorn_argv(app, port)
        service = cls(name, f"http://127.0.0.1:{port}", _spawn(argv, env, log, "w"), log, argv, env)
        return service

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.process.poll() is None, self.log_text()
                assert time.monotonic() < deadline, f"{self.name} did not become ready"
                await asyncio.sleep(0.2)

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait (bounded) for the exit; kill if it overstays. Returns the status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait(5)
                raise AssertionError(f"{self.name} did not stop within {timeout} s of SIGTERM")
            await asyncio.sleep(0.05)
        return self.process.returncode

    async def start(self, timeout: float = 30.0) -> None:
        """Start the stopped service again, same command, environment and port; wait ready."""
        assert self.argv, f"{self.name} was not started with `launch`; it cannot be restarted"
        assert self.process.poll() is not None, f"{self.name} is still running"
        self.process = _spawn(self.argv, self.env, self.log, "a")
        await self.wait_ready(timeout)

    def kill(self) -> None:
        """Stop at once (teardown): SIGKILL and reap."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _spawn(argv: list[str], env: dict[str, str], log: Path, mode: str) -> subprocess.Popen[bytes]:
    with log.open(mode) as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


@dataclass
class Platform:
    root: str
    data_dir: Path
    services: dict[str, ServiceProcess]
