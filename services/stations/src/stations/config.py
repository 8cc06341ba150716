"""Stations settings: `STATIONS_*` for this service, `GONGHUI_*` for the platform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gonghui_shared.keys import ProductionKey
from gonghui_shared.settings import ServiceSettings


class StationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATIONS_", extra="ignore", validate_by_name=True)

    service_name: ClassVar[str] = "stations"
    default_port: ClassVar[int] = 8003

    walking_speed_kmh: float = Field(
        4.5, description="walking speed used to turn minutes into distance (15 min = 1.125 km)"
    )
    card_public_key: str | None = Field(
        None,
        description="PEM of membership's card seal public key, to verify member cards offline; "
        "the shared dev key when unset",
    )
    village_point_subsidy_fen: int = Field(
        10000, description="default monthly subsidy of a village service point (100 yuan)"
    )

    @classmethod
    def production_keys(cls) -> tuple[ProductionKey, ...]:
        return (
            *super().production_keys(),
            ProductionKey({"card_public_key": "public_pem"}, "card_ed25519.pem"),
        )
