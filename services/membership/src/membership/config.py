"""Membership settings: `MEMBERSHIP_*` for this service, `GONGHUI_*` for the platform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gonghui_shared.keys import ProductionKey
from gonghui_shared.settings import ServiceSettings


class MembershipSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEMBERSHIP_", extra="ignore", validate_by_name=True
    )

    service_name: ClassVar[str] = "membership"
    default_port: ClassVar[int] = 8001

    card_signing_key: str | None = Field(
        None, description="PEM of the Ed25519 'county seal' that signs member cards"
    )
    card_valid_days: int = Field(365, description="how long a card verifies offline")
    roster_max_bytes: int = Field(20 * 1024 * 1024, description="largest roster upload accepted")

    @classmethod
    def production_keys(cls) -> tuple[ProductionKey, ...]:
        return (
            *super().production_keys(),
            ProductionKey({"card_signing_key": "private_pem"}, "card_ed25519.pem"),
        )
