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

from gonghui_shared.keys import ProductionKey, production_key_problems


def platform_field(name: str, default: Any, description: str, **constraints: Any) -> Any:
    """A field read from `GONGHUI_<NAME>` (or passed by its own name)."""
    return Field(
        default,
        validation_alias=AliasChoices(f"GONGHUI_{name.upper()}", name),
        description=description,
        **constraints,
    )


class ServiceSettings(BaseSettings):
    """What every service needs to run; subclasses set `service_name` and the env prefix."""

    # Errors never quote the input: it holds the keys.
    model_config = SettingsConfigDict(
        extra="ignore", validate_by_name=True, hide_input_in_errors=True
    )

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
    # Unlimited by default: the gateway rebuilds its dashboards by replaying whole streams,
    # and a stream with byte or message limits reserves that space in the account up front.
    stream_max_age_seconds: float = platform_field(
        "stream_max_age_seconds", 0.0, "how long a stream keeps events; 0 = forever"
    )
    stream_max_bytes: int = platform_field(
        "stream_max_bytes", -1, "largest size of each service's stream; -1 = unlimited"
    )
    stream_max_msgs: int = platform_field(
        "stream_max_msgs", -1, "most events in each service's stream; -1 = unlimited"
    )
    nats_connect_timeout: float = platform_field(
        "nats_connect_timeout", 2.0, "seconds to wait for each NATS connection attempt"
    )
    nats_request_timeout: float = platform_field(
        "nats_request_timeout",
        5.0,
        "seconds to wait for a JetStream answer: a publish ack, a stream or consumer request",
    )
    log_level: str = platform_field("log_level", "INFO", "root log level")
    otel_enabled: bool = platform_field(
        "otel_enabled",
        False,
        "OpenTelemetry tracing, exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    db_pool_size: int = platform_field(
        "db_pool_size", 10, "PostgreSQL connections each process keeps open (idle included)"
    )
    db_max_overflow: int = platform_field(
        "db_max_overflow", 10, "PostgreSQL connections each process may open beyond the pool"
    )
    db_read_pool_size: int = platform_field(
        "db_read_pool_size",
        4,
        "PostgreSQL connections each process may open, on demand, for its hottest reads "
        "(the member lookup, the nearby search, the dashboards' version) and its audit "
        "rows: asyncpg directly",
    )
    db_pool_timeout: float = platform_field(
        "db_pool_timeout",
        10.0,
        "seconds a request waits for a free PostgreSQL connection before it is answered 503",
    )
    db_connect_timeout: float = platform_field(
        "db_connect_timeout", 5.0, "seconds to wait for a new PostgreSQL connection"
    )
    jwt_public_key: str | None = platform_field(
        "jwt_public_key",
        None,
        "PEM of the Ed25519 key that verifies access tokens (several PEM blocks: any of them)",
    )
    jwt_private_key: str | None = platform_field(
        "jwt_private_key", None, "PEM of the Ed25519 key that signs access tokens (issuers only)"
    )
    jwt_accepted_public_keys: str | None = platform_field(
        "jwt_accepted_public_keys",
        None,
        "issuers only: PEM blocks of other Ed25519 keys whose tokens are accepted and "
        "published in the JWKS beside the signing key's (the next key before a rotation, "
        "the previous one after it)",
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
    jwks_refresh_seconds: float = platform_field(
        "jwks_refresh_seconds",
        300.0,
        "how often the JWKS is fetched again (a token of a key not yet known fetches it at "
        "once, at most every 10 s)",
        gt=0,
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

    @model_validator(mode="after")
    def _refuse_dev_keys_in_production(self) -> ServiceSettings:
        """Production fails at start-up, naming every missing or dev key, not at first use."""
        if not self.production:
            return self
        values = {name: getattr(self, name) for name in type(self).model_fields}
        env_names = {name: self.env_name(name) for name in type(self).model_fields}
        problems = production_key_problems(values, self.production_keys(), env_names, self.data_dir)
        if problems:
            raise ValueError(
                f"{self.service_name} cannot run in production mode (GONGHUI_ENVIRONMENT="
                f"production) without keys of its own: {'; '.join(problems)}"
            )
        return self

    @classmethod
    def production_keys(cls) -> tuple[ProductionKey, ...]:
        """The keys this service needs in production; a service adds its own to these."""
        tokens: tuple[ProductionKey, ...]
        if cls.issues_tokens:
            tokens = (
                ProductionKey({"jwt_private_key": "private_pem"}, "jwt_ed25519.pem"),
                ProductionKey(
                    {"jwt_accepted_public_keys": "public_pem"}, "jwt_ed25519.pem", required=False
                ),
            )
        else:
            # Any one the runtime can verify with (`build_verifier`); each set one is checked.
            tokens = (
                ProductionKey(
                    {
                        "jwks_url": "url",
                        "jwt_public_key": "public_pem",
                        "jwt_private_key": "private_pem",
                    },
                    "jwt_ed25519.pem",
                ),
            )
        return (
            *tokens,
            ProductionKey({"pii_keys": "fernet_list"}, "pii.key"),
            ProductionKey({"pii_hash_key": "secret"}, "pii-hash.key"),
        )

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The environment variable a field is read from (`GONGHUI_…` or the service's)."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return f"{cls.model_config.get('env_prefix', '')}{field_name}".upper()

    @property
    def production(self) -> bool:
        return self.environment == "production"
