"""The local ceiling: a bare Starlette JSON endpoint, served exactly as the services are.

The harness starts it with the services' own uvicorn command line (one process, loopback)
and measures it with the same load generator; every other figure is read against it, so
the ratio says how much of what this machine can serve over HTTP a service keeps.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# About the size of a small API answer (a member's masked record is ~600 bytes).
_BODY = {"ok": True, "service": "bare", "items": [{"id": n, "name": f"item {n}"} for n in range(8)]}


async def json_endpoint(request: Request) -> JSONResponse:
    """A fixed JSON document: no database, no authentication, no middleware."""
    return JSONResponse(_BODY)


async def ready(request: Request) -> JSONResponse:
    """What `ServiceProcess.wait_ready` asks for."""
    return JSONResponse({"status": "ready"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/json", json_endpoint), Route("/readyz", ready)])
