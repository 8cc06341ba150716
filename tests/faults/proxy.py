"""A TCP proxy on loopback in front of PostgreSQL, so an outage can be staged without
touching the server itself (others share it).

It runs as a process of its own (every query of every service passes through it, and the
runner's event loop is busy with the load): SIGUSR1 severs it (stops listening and resets
every connection through it), SIGUSR2 listens again on the same port.

    python tests/faults/proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys

_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        """Listen on 127.0.0.1:`port` (again, after `sever`)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def sever(self) -> None:
        """The outage: refuse new connections and reset every open one, both ways."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server goes away, not a clean FIN
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        if self._server is None:  # severed while we connected
            client_w.transport.abort()
            server_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        pumps = [
            asyncio.create_task(_pump(client_r, server_w)),
            asyncio.create_task(_pump(server_r, client_w)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for writer in (client_w, server_w):
                self._writers.discard(writer)
                writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()


async def serve(port: int, host: str, target_port: int) -> None:
    """Proxy until killed; say `listening` or `severed` on stdout after each change."""
    proxy = TcpProxy(host, target_port, port)
    loop = asyncio.get_running_loop()

    async def change(to: str) -> None:
        await (proxy.open() if to == "listening" else proxy.sever())
        print(to, flush=True)

    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(change("severed")))
    loop.add_signal_handler(signal.SIGUSR2, lambda: loop.create_task(change("listening")))
    await change("listening")
    await asyncio.Event().wait()


class ProxyProcess:
    """The proxy process, seen from the runner."""

    def __init__(self, port: int, target_host: str, target_port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-P", __file__, str(port), target_host, str(target_port)],
            stdout=subprocess.PIPE,
            text=True,
        )

    async def _told(self, state: str) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 10)
        assert line.strip() == state, f"the database proxy said {line!r}, not {state!r}"

    async def ready(self) -> None:
        await self._told("listening")

    async def sever(self) -> None:
        self.process.send_signal(signal.SIGUSR1)
        await self._told("severed")

    async def open(self) -> None:
        self.process.send_signal(signal.SIGUSR2)
        await self._told("listening")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


if __name__ == "__main__":
    listen, host, target = sys.argv[1:4]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(listen), host, int(target)))
