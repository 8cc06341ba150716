"""Rate limits at the gateway: sliding windows kept in this process's memory.

Signing in and one-time codes are limited strictly (per username and address, per
phone, per address) so that passwords and six-digit codes cannot be guessed at
speed; every other authenticated call is limited generously per principal. The
counts live in this process: with several gateway processes each enforces its own
limits, which still bounds guessing to a known multiple.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.config import GatewaySettings
from gonghui_shared.audit.middleware import client_address, parse_networks
from gonghui_shared.errors import AppError, error_response

Clock = Callable[[], float]


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests; try again later"
    message_zh = "请求过于频繁，请稍后再试"

    def __init__(self, retry_after: int) -> None:
        super().__init__(details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after


async def rate_limited_response(_: Request, exc: Exception) -> JSONResponse:
    """The house error shape with `Retry-After` (RFC 9110 §10.2.3), in whole seconds."""
    assert isinstance(exc, RateLimited)
    response = error_response(exc.status_code, exc.code, exc.text, exc.text_zh, exc.details)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


class SlidingWindow:
    """At most `limit` hits per key within any `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = float("-inf")

    def hit(self, key: str) -> None:
        """Count one hit for `key`, or raise RateLimited (without counting it)."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise RateLimited(max(1, math.ceil(hits[0] + self.window - now)))
        hits.append(now)
        if len(self._hits) > 10_000 and now >= self._next_sweep:
            # At most once a window: with more callers than that all active, sweeping on
            # every hit would cost a pass over every key for each call.
            self._forget_idle(now)
            self._next_sweep = now + self.window

    def clear(self) -> None:
        self._hits.clear()

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


class RateLimits:
    """The gateway's limits; `clock` is replaceable so tests need not sleep."""

    def __init__(self, settings: GatewaySettings, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._trusted = parse_networks(settings.trusted_proxies)
        window = settings.rate_limit_window_seconds

        def now() -> float:
            return self.clock()

        self.token_user_ip = SlidingWindow(settings.rate_limit_token_per_user_ip, window, now)
        self.token_ip = SlidingWindow(settings.rate_limit_token_per_ip, window, now)
        self.otp_phone = SlidingWindow(settings.rate_limit_otp_per_phone, window, now)
        self.otp_ip = SlidingWindow(settings.rate_limit_otp_per_ip, window, now)
        self.principal = SlidingWindow(settings.rate_limit_per_principal, window, now)

    def reset(self) -> None:
        """Forget every count (tests start from a clean slate)."""
        for limiter in (
            self.token_user_ip,
            self.token_ip,
            self.otp_phone,
            self.otp_ip,
            self.principal,
        ):
            limiter.clear()

    def address(self, request: Request) -> str:
        return client_address(request.scope, self._trusted) or "unknown"

    def token(self, request: Request, username: str | None) -> None:
        """A `POST /v1/auth/token`: per address, and per username from that address."""
        ip = self.address(request)
        self.token_ip.hit(ip)
        if username:
            self.token_user_ip.hit(f"{username.lower()}\x1f{ip}")

    def otp(self, request: Request, phone: str) -> None:
        """A one-time code sent or tried: per address and per phone."""
        self.otp_ip.hit(self.address(request))
        # Digits only, so `+86 138-0013-8000` and `13800138000` count as one phone.
        self.otp_phone.hit("".join(ch for ch in phone if ch.isdigit())[-11:] or phone)

    def caller(self, subject: str) -> None:
        """Any other authenticated call, per principal."""
        self.principal.hit(subject)


def get_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.limits
    return limits


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Create the limits and render their 429 with Retry-After."""
    app.state.limits = RateLimits(settings)
    app.add_exception_handler(RateLimited, rate_limited_response)
