"""`gonghui-gateway create-admin`: the first account, once, its generated password printed once."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import cli
from gateway.accounts.testing import Gateway
from gateway.config import GatewaySettings


@pytest.fixture
def cli_env(settings: GatewaySettings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment `make run` gives the command: the gateway's database and data dir."""
    env = {
        "GATEWAY_DATABASE_URL": settings.database_url,
        "GONGHUI_DATA_DIR": str(settings.data_dir),
        "GATEWAY_PASSWORD_SCRYPT_N": str(settings.password_scrypt_n),
    }
    monkeypatch.delenv("GONGHUI_ADMIN_PASSWORD", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command in-process (in a thread: it runs its own event loop)."""
    status = await asyncio.to_thread(cli.main, list(args))
    return status, capsys.readouterr().out


async def test_create_admin_prints_a_generated_password_once_and_is_idempotent(
    gw: Gateway, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = await run_cli(capsys, "create-admin")
    assert status == 0, out
    match = re.search(r"shown only now:\s+(\S+)", out)
    assert match, out
    password = match.group(1)
    assert len(password) >= 20
    token = await gw.login("admin", password)
    principal = gw.app.state.runtime.verifier.verify(token["access_token"])
    assert (principal.role, principal.org_path) == ("platform_admin", None)

    status, again = await run_cli(capsys, "create-admin")
    assert status == 0 and "exists; nothing changed" in again and password not in again
    # The installed entry point, as scripts/devrun.py runs it: still nothing changes.
    script = Path(sys.executable).parent / "gonghui-gateway"
    # In a thread: a blocked event loop would keep the in-process gateway's open SQLite
    # transaction (its relay, its consumers) holding the lock the command waits for.
    result = await asyncio.to_thread(
        subprocess.run,
        [str(script), "create-admin"],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stdout and password not in result.stdout + result.stderr
    await gw.login("admin", password)  # the first password still stands
    accounts = await gw.ok("GET", "/v1/accounts", token=token["access_token"])
    assert [a["username"] for a in accounts["items"]] == ["admin"]


async def test_create_admin_uses_the_configured_password_without_printing_it(
    gw: Gateway,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GONGHUI_ADMIN_PASSWORD", "a-configured-admin-password")
    status, out = await run_cli(capsys, "create-admin")
    assert status == 0 and "GONGHUI_ADMIN_PASSWORD" in out
    assert "a-configured-admin-password" not in out
    await gw.login("admin", "a-configured-admin-password")


async def test_create_admin_refuses_a_short_configured_password(
    gw: Gateway,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GONGHUI_ADMIN_PASSWORD", "short")
    status = await asyncio.to_thread(cli.main, ["create-admin"])
    assert status == 2 and "at least 10 characters" in capsys.readouterr().err
    data = {"grant_type": "password", "username": "admin", "password": "short"}
    await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=data)
