"""Settings every service shares.

A service subclasses `ServiceSettings` with its own env prefix (`MEMBERSHIP_`, …).
Platform-wide values use the `GONGHUI_` prefix whatever the service, so one
`GONGHUI_NATS_URL` serves them all. Every default works on the embedded setup
(SQLite under `.data/`, a NATS on loopback); production mode refuses dev keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def platform_field(name: str, default: Any, description: str) -> Any:
    """A field read from `GONGHUI_<NAME>` (or passed by its own name)."""
    return Field(
        default,
        validation_alias=AliasChoices(f"GONGHUI_{name.upper()}", name),
        description=description,
    )


class ServiceSettings(BaseSettings):
    """What every service needs to run; subclasses set `service_name` and the env prefix."""

    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True)

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000
    # The service holding the private key (the gateway) verifies with it, never with a JWKS.
    issues_tokens: ClassVar[bool] = False

    environment: Literal["development", "test", "production"] = platform_field(
        "environment", "development", "production refuses generated dev keys"
    )
    data_dir: Path = platform_field(
        "data_dir", Path(".data"), "where the embedded setup keeps databases and dev keys"
    )
    nats_url: str = platform_field(
        "nats_url", "nats://127.0.0.1:4222", "NATS servers, comma separated"
    )
    subject_root: str = platform_field(
        "subject_root",
        "gonghui",
        "first token of every subject; lets several deployments share a NATS",
    )
    stream_replicas: int = platform_field(
        "stream_replicas", 1, "JetStream replicas (3 in production)"
    )
    log_level: str = platform_field("log_level", "INFO", "root log level")
    db_pool_size: int = platform_field(
        "db_pool_size", 10, "PostgreSQL connections each process keeps open (idle included)"
    )
    db_max_overflow: int = platform_field(
        "db_max_overflow", 10, "PostgreSQL connections each process may open beyond the pool"
    )
    jwt_public_key: str | None = platform_field(
        "jwt_public_key", None, "PEM of the Ed25519 key that verifies access tokens"
    )
    jwt_private_key: str | None = platform_field(
        "jwt_private_key", None, "PEM of the Ed25519 key that signs access tokens (issuers only)"
    )
    jwks_url: str | None = platform_field(
        "jwks_url",
        None,
        "the gateway's JWKS (…/.well-known/jwks.json), fetched at start-up to verify tokens; "
        "takes precedence over jwt_public_key; unset: the PEM, else the shared dev key",
    )
    jwks_wait_seconds: float = platform_field(
        "jwks_wait_seconds", 30.0, "how long start-up keeps retrying the JWKS before giving up"
    )
    trusted_proxies: str = platform_field(
        "trusted_proxies",
        "",
        "addresses or CIDR networks of our own proxies (the gateway), comma separated: only "
        "from them is X-Forwarded-For believed when the audit log records the client address",
    )
    pii_keys: str | None = platform_field(
        "pii_keys", None, "Fernet keys for personal data, newest first, comma separated"
    )
    pii_hash_key: str | None = platform_field(
        "pii_hash_key", None, "secret for the keyed hash used to look up ID numbers"
    )

    # Per-service values, read with the service's own prefix.
    database_url: str = Field("", description="SQLAlchemy async URL; default SQLite under data_dir")
    port: int = Field(0, description="HTTP port; 0 means the service's default")
    outbox_poll_seconds: float = Field(
        1.0, description="how often the relay looks for unsent events"
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        if not self.database_url:
            path = (self.data_dir / f"{self.service_name}.db").resolve()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        if not self.port:
            self.port = self.default_port
        return self

    @property
    def production(self) -> bool:
        return self.environment == "production"
