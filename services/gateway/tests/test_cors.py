"""CORS from settings: a preflight from a listed origin is allowed, any other is not."""

from __future__ import annotations

import httpx

from gateway.config import GatewaySettings
from gateway.main import create_app

ALLOWED = "https://app.example.cn"


async def preflight(settings: GatewaySettings, origin: str) -> httpx.Response:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.options(
            "/v1/auth/token",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, idempotency-key",
            },
        )


async def test_a_preflight_from_an_allowed_origin_is_answered(settings: GatewaySettings) -> None:
    configured = settings.model_copy(update={"cors_origins": f"{ALLOWED}, https://b.example.cn"})
    response = await preflight(configured, ALLOWED)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "idempotency-key" in response.headers["access-control-allow-headers"].lower()


async def test_a_preflight_from_another_origin_is_refused(settings: GatewaySettings) -> None:
    configured = settings.model_copy(update={"cors_origins": ALLOWED})
    response = await preflight(configured, "https://evil.example.com")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(settings: GatewaySettings) -> None:
    assert settings.cors_origins == ""
    response = await preflight(settings, ALLOWED)
    assert "access-control-allow-origin" not in response.headers
