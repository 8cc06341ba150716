"""One-time login codes: how they are made and how they reach a phone.

The sender is pluggable (`GATEWAY_OTP_SENDER`): a deployment plugs in its SMS
provider; the embedded default `LogSender` writes the code to the gateway's log for
development. No other code path ever logs a code.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from typing import Protocol

from gateway.config import GatewaySettings
from gonghui_shared.pii import mask_phone

log = logging.getLogger(__name__)

CODE_DIGITS = 6


class OtpSender(Protocol):
    """Delivers a one-time code to a phone (an SMS gateway in production)."""

    async def send(self, phone: str, code: str) -> None:
        """Send `code` to `phone` (E.164); raise if it could not be handed over."""
        ...


class LogSender:
    """Development only: the code goes to the gateway's log instead of a phone."""

    async def send(self, phone: str, code: str) -> None:
        log.info(
            "one-time login code for %s: %s (LogSender, development only)",
            mask_phone(phone),
            code,
        )


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def load_sender(settings: GatewaySettings) -> OtpSender:
    """`log`, or the factory named `package.module:callable`, called with the settings."""
    if settings.otp_sender == "log":
        if settings.production:
            log.warning("GATEWAY_OTP_SENDER=log in production: one-time codes go to the log")
        return LogSender()
    module_name, _, attribute = settings.otp_sender.partition(":")
    if not module_name or not attribute:
        raise ValueError(
            f"GATEWAY_OTP_SENDER={settings.otp_sender!r}: use `log` or `package.module:factory`"
        )
    factory = getattr(importlib.import_module(module_name), attribute)
    sender: OtpSender = factory(settings)
    return sender
