"""Services as real processes for end-to-end tests: start under uvicorn, wait until ready."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class ServiceProcess:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path

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


@dataclass
class Platform:
    root: str
    data_dir: Path
    services: dict[str, ServiceProcess]
