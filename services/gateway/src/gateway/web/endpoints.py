"""The dashboard page (数据看板) for county officials: static files under `/dashboard/`.

The page is plain HTML, CSS and ES modules with no build step and nothing fetched from
another origin, so it works offline. It calls the gateway's own API (`/v1/auth/token`,
`/v1/dashboard/…`) with the token the official logs in for.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"

# No inline script or style anywhere on the page, nothing from another origin, and the page
# may not be framed (clickjacking). `img-src data:` is not needed: the charts and the map
# are SVG elements built by the page's own scripts.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Revalidate every time (the ETag makes that cheap), so a new release is seen at once.
    "Cache-Control": "no-cache",
}


class DashboardFiles(StaticFiles):
    """StaticFiles that sends the page's security headers with every file."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def dashboard_redirect() -> RedirectResponse:
    """The dashboard page lives at `/dashboard/`: its scripts are found relative to it."""
    return RedirectResponse("/dashboard/", status_code=308, headers=SECURITY_HEADERS)


router.mount("/dashboard", DashboardFiles(directory=STATIC_DIR, html=True), name="dashboard")
