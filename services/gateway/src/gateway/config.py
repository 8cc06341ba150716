"""Gateway settings: `GATEWAY_*` for this service, `GONGHUI_*` for the platform."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from gonghui_shared.settings import ServiceSettings, platform_field


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", validate_by_name=True)

    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8000
    # The gateway holds the private key: it verifies with it, never with GONGHUI_JWKS_URL.
    issues_tokens: ClassVar[bool] = True

    membership_url: str = Field("http://127.0.0.1:8001", description="membership's base URL")
    training_url: str = Field("http://127.0.0.1:8002", description="training's base URL")
    stations_url: str = Field("http://127.0.0.1:8003", description="stations' base URL")
    walking_speed_kmh: float = Field(
        4.5,
        gt=0,
        description="dashboards' 15-minute circle: keep equal to STATIONS_WALKING_SPEED_KMH "
        "(15 min at 4.5 km/h = 1125 m)",
    )
    upstream_timeout_seconds: float = Field(
        10.0, description="longest wait for a service's answer before a 503/504"
    )
    upstream_connect_timeout_seconds: float = Field(
        2.0, description="longest wait to connect to a service before a 503"
    )
    admin_password: str | None = platform_field(
        "admin_password",
        None,
        "password of the first admin `admin` (a platform admin, see gateway/cli.py); "
        "generated and printed once if unset",
    )

    # Accounts and tokens (gateway/accounts/).
    access_token_ttl_seconds: int = Field(
        900, gt=0, description="lifetime of an access token issued to a person (15 minutes)"
    )
    refresh_token_ttl_seconds: int = Field(
        14 * 24 * 3600,
        gt=0,
        description="a refresh token expires unless used within this time (each use rotates it)",
    )
    upstream_token_ttl_seconds: int = Field(
        60,
        gt=0,
        description="lifetime of the tokens the gateway mints for the services: for an API "
        "key's call, and its own membership lookups",
    )
    revocation_cache_seconds: float = Field(
        2.0,
        ge=0,
        description="how long the in-memory set of revoked token ids (and API keys looked up) "
        "is trusted before reloading; 0 reads the table on every request. Revocations made "
        "by this process apply at once, those of other gateway processes within this time",
    )
    password_scrypt_n: int = Field(
        2**14,
        ge=2**10,
        description="scrypt cost N (a power of two, r=8, p=1) for new password hashes",
    )
    otp_ttl_seconds: int = Field(300, gt=0, description="a one-time login code expires after this")
    otp_max_attempts: int = Field(5, gt=0, description="wrong guesses allowed per one-time code")
    otp_resend_seconds: int = Field(
        60, ge=0, description="no new code is sent to a phone within this time of the last one"
    )
    otp_sender: str = Field(
        "log",
        description="how one-time codes reach phones: `log` (development: writes the code to "
        "the log) or `package.module:factory`, a callable taking the settings and returning "
        "an object with `async send(phone, code)`",
    )

    # Rate limits (gateway/limits.py): hits allowed per sliding window, in this process.
    rate_limit_window_seconds: float = Field(
        60.0, gt=0, description="the sliding window every rate limit counts within"
    )
    rate_limit_token_per_user_ip: int = Field(
        10, gt=0, description="POST /v1/auth/token per username from one address, per window"
    )
    rate_limit_token_per_ip: int = Field(
        60, gt=0, description="POST /v1/auth/token from one address (any username), per window"
    )
    rate_limit_otp_per_phone: int = Field(
        10,
        gt=0,
        description="one-time codes sent or tried (/v1/auth/otp, /verify) per phone, per window",
    )
    rate_limit_otp_per_ip: int = Field(
        30, gt=0, description="one-time codes sent or tried from one address, per window"
    )
    rate_limit_per_principal: int = Field(
        600,
        gt=0,
        description="other authenticated calls per principal (token subject or "
        "API key), per window",
    )

    # Request size limits (gateway/sizes.py).
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="largest JSON or form request body (1 MB), else 413"
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024,
        gt=0,
        description="largest roster upload (POST /v1/membership/rosters/import) or other "
        "binary body (20 MB), else 413",
    )

    cors_origins: str = Field(
        "",
        description="browser origins allowed to call the gateway (CORS), comma separated, "
        "e.g. `https://app.example.cn`; empty allows none",
    )

    # Idempotency keys on POST (gateway/idempotency/).
    idempotency_ttl_seconds: int = Field(
        24 * 3600,
        gt=0,
        description="how long the first answer to an Idempotency-Key is replayed to retries",
    )
    idempotency_in_flight_seconds: int = Field(
        300,
        gt=0,
        description="a request still unanswered after this long is taken as abandoned (its "
        "process died) and its Idempotency-Key may be claimed again",
    )

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("password_scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("scrypt's N must be a power of two")
        return value
