"""Training settings: `TRAINING_*` for this service, `GONGHUI_*` for the platform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gonghui_shared.keys import ProductionKey
from gonghui_shared.settings import ServiceSettings


class TrainingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore", validate_by_name=True)

    service_name: ClassVar[str] = "training"
    default_port: ClassVar[int] = 8002

    qr_token_seconds: int = Field(120, description="how long a check-in QR token is valid")
    qr_signing_key: str | None = Field(
        None, description="secret that signs check-in QR tokens; dev key when unset"
    )

    @classmethod
    def production_keys(cls) -> tuple[ProductionKey, ...]:
        return (*super().production_keys(), ProductionKey({"qr_signing_key": "secret"}, "qr.key"))
