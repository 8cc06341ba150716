"""Production mode never runs on generated dev keys, in every service.

A service started with GONGHUI_ENVIRONMENT=production exits at once, naming each key
that is missing or is a copy of a generated dev key by its environment variable. The
list of keys the check knows is kept honest by starting each service in development on
an empty data dir: the dev keys it generates are exactly those the check refuses.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.config import GatewaySettings
from gonghui_shared import keys
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import migrate
from gonghui_shared.testing.nats_server import free_port
from gonghui_shared.testing.processes import uvicorn_argv
from membership.config import MembershipSettings
from stations.config import StationsSettings
from training.config import TrainingSettings

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "membership": MembershipSettings,
    "training": TrainingSettings,
    "stations": StationsSettings,
    "gateway": GatewaySettings,
}
SERVICE_PREFIXES = tuple(f"{name.upper()}_" for name in SETTINGS)
DEV_KEY_MAKERS = {
    "jwt_ed25519.pem": keys.new_ed25519_pem,
    "card_ed25519.pem": keys.new_ed25519_pem,
    "pii.key": keys.new_fernet_key,
    "pii-hash.key": keys.new_secret,
    "qr.key": keys.new_secret,
}

# What each service's production check names when nothing is configured.
MISSING = {
    "membership": ["GONGHUI_JWKS_URL or GONGHUI_JWT_PUBLIC_KEY", "MEMBERSHIP_CARD_SIGNING_KEY"],
    "training": ["GONGHUI_JWKS_URL or GONGHUI_JWT_PUBLIC_KEY", "TRAINING_QR_SIGNING_KEY"],
    "stations": ["GONGHUI_JWKS_URL or GONGHUI_JWT_PUBLIC_KEY", "STATIONS_CARD_PUBLIC_KEY"],
    "gateway": ["GONGHUI_JWT_PRIVATE_KEY is not set"],
}


def clean_environment(**values: str) -> dict[str, str]:
    """The test run's environment without any Gonghui setting, plus `values`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GONGHUI_", *SERVICE_PREFIXES))
    }
    return kept | values


async def start_and_wait_for_exit(service: str, env: dict[str, str]) -> tuple[int, str]:
    """Start the service as `make run` would; it must exit by itself (it may not serve)."""
    process = await asyncio.create_subprocess_exec(
        *uvicorn_argv(f"{service}.main:create_app", free_port()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{service} started in production mode without its keys") from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def own_keys(service: str) -> dict[str, str]:
    """Keys of its own (never a dev key) for everything `service` needs in production."""
    signing = keys.new_ed25519_pem().decode()
    values = {
        "pii_keys": Fernet.generate_key().decode(),
        "pii_hash_key": keys.new_secret().decode(),
        "jwt_private_key" if service == "gateway" else "jwt_public_key": (
            signing if service == "gateway" else keys.public_pem(keys.load_private_key(signing))
        ),
    }
    card_seal = keys.new_ed25519_pem().decode()
    values |= {
        "membership": {"card_signing_key": card_seal},
        "training": {"qr_signing_key": keys.new_secret().decode()},
        "stations": {"card_public_key": keys.public_pem(keys.load_private_key(card_seal))},
        "gateway": {},
    }[service]
    return values


def as_environment(service: str, values: dict[str, str]) -> dict[str, str]:
    settings = SETTINGS[service]
    return {settings.env_name(name): value for name, value in values.items()}


@pytest.mark.parametrize("service", list(SETTINGS))
async def test_production_start_up_fails_fast_naming_missing_and_dev_keys(
    service: str, tmp_path: Path
) -> None:
    base = {"GONGHUI_ENVIRONMENT": "production", "GONGHUI_DATA_DIR": str(tmp_path)}
    code, output = await start_and_wait_for_exit(service, clean_environment(**base))
    assert code != 0, output
    assert f"{service} cannot run in production mode" in output
    for missing in ["GONGHUI_PII_KEYS is not set", "GONGHUI_PII_HASH_KEY is not set"]:
        assert missing in output, output
    for missing in MISSING[service]:
        assert missing in output, output

    # Each dev key a development run on this data dir would generate, copied into the
    # environment (a public key as the public half of the dev key).
    copied = {}
    for needed in SETTINGS[service].production_keys():
        dev = keys.dev_key(
            tmp_path, needed.dev_file, DEV_KEY_MAKERS[needed.dev_file], production=False
        ).decode()
        for name, kind in needed.fields.items():
            if kind == "public_pem":
                copied[name] = keys.public_pem(keys.load_private_key(dev))
            elif kind != "url":
                copied[name] = dev
    env = clean_environment(**base, **as_environment(service, copied))
    code, output = await start_and_wait_for_exit(service, env)
    assert code != 0, output
    for name in copied:
        assert f"{SETTINGS[service].env_name(name)} is the generated dev key" in output, output
    assert "is not set" not in output
    for value in copied.values():  # the refusal quotes no key
        assert max(value.splitlines(), key=len) not in output


@pytest.mark.parametrize("service", list(SETTINGS))
async def test_the_check_knows_every_dev_key_a_service_generates(
    service: str, tmp_path: Path, nats_url: str, subject_root: str
) -> None:
    """Development on an empty data dir generates exactly the keys production refuses, and
    production with keys of its own starts without generating or reading any."""
    settings_class = SETTINGS[service]
    module = __import__(f"{service}.main", fromlist=["create_app"])
    url = f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}"
    await migrate(REPO / "services" / service / "alembic.ini", url)
    common: dict[str, Any] = {
        "database_url": url,
        "nats_url": nats_url,
        "subject_root": f"{subject_root}keys",
    }

    development = settings_class(data_dir=tmp_path / "dev", environment="development", **common)
    app = module.create_app(development)
    async with app.router.lifespan_context(app):
        pass
    generated = {p.name for p in (tmp_path / "dev" / "dev-keys").iterdir() if p.is_file()}
    assert generated == {k.dev_file for k in settings_class.production_keys()}

    production = settings_class(
        data_dir=tmp_path / "prod", environment="production", **common, **own_keys(service)
    )
    app = module.create_app(production)
    async with app.router.lifespan_context(app):
        pass
    assert not (tmp_path / "prod" / "dev-keys").exists()
