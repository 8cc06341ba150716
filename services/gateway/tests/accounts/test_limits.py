"""Rate limits at the gateway: sign-in and one-time codes strictly, other calls per principal."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from gateway.accounts.testing import ADMIN_PASSWORD, Gateway
from gateway.limits import RateLimited, SlidingWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The limits' clock, moved by hand: no test sleeps through a window."""
    fake = FakeClock()
    monkeypatch.setattr(app.state.limits, "clock", fake)
    return fake


def _attempt(username: str, password: str = "wrong-password") -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def test_the_token_endpoint_refuses_the_attempt_past_the_limit_until_the_window_passes(
    gw: Gateway, app: FastAPI, clock: FakeClock
) -> None:
    await gw.admin()  # one sign-in as admin already counts
    settings = app.state.runtime.settings
    limit, window = settings.rate_limit_token_per_user_ip, settings.rate_limit_window_seconds
    assert limit == 10 and window == 60
    for _ in range(limit - 1):
        await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=_attempt("admin"))
    clock.now += window / 2
    response = await gw.client.post("/v1/auth/token", data=_attempt("admin", ADMIN_PASSWORD))
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and error["message"] and error["message_zh"]
    # The first attempt leaves the window 30 s from now.
    assert response.headers["retry-after"] == "30"
    assert error["details"] == {"retry_after_seconds": 30}
    # Another username from the same address is not held back by admin's count.
    await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=_attempt("nobody"))
    clock.now += window / 2
    token = await gw.login("admin", ADMIN_PASSWORD)
    assert token["access_token"]


async def test_one_time_codes_are_limited_per_phone(
    gw: Gateway, app: FastAPI, clock: FakeClock
) -> None:
    limit = app.state.runtime.settings.rate_limit_otp_per_phone
    for _ in range(limit):
        await gw.ok("POST", "/v1/auth/otp", json={"phone": "13700137000"}, expect=202)
    error = await gw.error(
        "POST", "/v1/auth/otp", 429, "rate_limited", json={"phone": "137 0013 7000"}
    )
    assert error["details"]["retry_after_seconds"] == 60
    verify = {"phone": "13700137000", "code": "000000"}
    await gw.error("POST", "/v1/auth/otp/verify", 429, "rate_limited", json=verify)
    await gw.ok("POST", "/v1/auth/otp", json={"phone": "13600136000"}, expect=202)


async def test_authenticated_calls_are_limited_per_principal(
    gw: Gateway, app: FastAPI, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await gw.admin()
    monkeypatch.setattr(app.state.limits.principal, "limit", 3)
    for _ in range(3):
        await gw.ok("GET", "/v1/accounts", token=token)
    await gw.error(
        "GET", "/v1/accounts", 429, "rate_limited", headers={"Authorization": f"Bearer {token}"}
    )
    clock.now += 60
    await gw.ok("GET", "/v1/accounts", token=token)


def test_a_refused_hit_is_not_counted() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, 10, clock)
    window.hit("k")
    clock.now += 5
    window.hit("k")
    for _ in range(3):
        with pytest.raises(RateLimited) as refused:
            window.hit("k")
    assert refused.value.retry_after == 5
    clock.now += 5  # the first hit leaves; the refusals never entered
    window.hit("k")
    with pytest.raises(RateLimited):
        window.hit("k")
