"""Gateway settings: `GATEWAY_*` for this service, `GONGHUI_*` for the platform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gonghui_shared.settings import ServiceSettings, platform_field


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", validate_by_name=True)

    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8000

    membership_url: str = Field("http://127.0.0.1:8001", description="membership's base URL")
    training_url: str = Field("http://127.0.0.1:8002", description="training's base URL")
    stations_url: str = Field("http://127.0.0.1:8003", description="stations' base URL")
    upstream_timeout_seconds: float = Field(
        10.0, description="longest wait for a service's answer before a 503/504"
    )
    upstream_connect_timeout_seconds: float = Field(
        2.0, description="longest wait to connect to a service before a 503"
    )
    admin_password: str | None = platform_field(
        "admin_password", None, "password of the first county admin `admin`; generated if unset"
    )
