"""`gonghui-gateway rotate-pii-keys`: the accounts' phones move to the new key, and with
`--rehash` a member signing in by phone after a hash-key change is still the same account."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway import cli
from gateway.accounts.models import Account
from gateway.accounts.testing import COUNTY_A, FakeMembership, Gateway
from gateway.config import GatewaySettings
from gonghui_shared.pii import PiiCipher
from gonghui_shared.testing import use_pii_keys

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
HASH_1, HASH_2 = "gateway-hash-one-" + "4" * 40, "gateway-hash-two-" + "5" * 40
PHONE = "13800138077"


@pytest.fixture
def use_keys(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Restart the gateway, as far as personal data goes, with other GONGHUI_PII_* values."""
    before = app.state.runtime.pii

    def use(pii_keys: str, hash_key: str) -> None:
        use_pii_keys(app.state.runtime, pii_keys, hash_key)
        monkeypatch.setattr(app.state.accounts, "pii", app.state.runtime.pii)

    yield use
    app.state.runtime.pii = before


async def sign_in_by_phone(gw: Gateway, caplog: pytest.LogCaptureFixture) -> str:
    """A one-time code to PHONE, taken from the LogSender's line; returns the account id."""
    caplog.clear()
    await gw.ok("POST", "/v1/auth/otp", json={"phone": PHONE}, expect=202)
    [code] = [
        match.group(1)
        for record in caplog.records
        if (match := re.search(r": (\d{6}) ", record.getMessage()))
    ]
    tokens = await gw.ok("POST", "/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    return str(gw.app.state.runtime.verifier.verify(tokens["access_token"]).subject)


async def test_phones_are_re_encrypted_and_rehashed(
    gw: Gateway,
    app: FastAPI,
    membership: FakeMembership,
    use_keys: Any,
    settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.accounts.otp")
    use_keys(KEY_A, HASH_1)
    admin = await gw.admin()
    await gw.account(admin, "county_a", "county_admin", COUNTY_A, phone="13800138066")
    membership.add_member(PHONE, "5309212026000077")
    mobile = await sign_in_by_phone(gw, caplog)

    use_keys(f"{KEY_B},{KEY_A}", HASH_2)
    for name, value in {
        "GATEWAY_DATABASE_URL": settings.database_url,
        "GONGHUI_DATA_DIR": str(settings.data_dir),
        "GONGHUI_PII_KEYS": f"{KEY_B},{KEY_A}",
        "GONGHUI_PII_HASH_KEY": HASH_2,
    }.items():
        monkeypatch.setenv(name, value)
    code = await asyncio.to_thread(cli.main, ["rotate-pii-keys", "--rehash", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "accounts                 read 3: re-encrypted 2, already current 1, " in out
    assert "lookup hashes recomputed 2" in out

    use_keys(KEY_B, HASH_2)
    assert await sign_in_by_phone(gw, caplog) == mobile  # found by the new hash, not a new one
    async with app.state.runtime.db.transaction() as session:
        phones = list(await session.scalars(select(Account.phone_encrypted)))
        accounts = await session.scalar(select(func.count()).select_from(Account))
    assert accounts == 3  # admin, the county admin, the member
    only_b = PiiCipher([KEY_B.encode()], HASH_2.encode())
    only_a = PiiCipher([KEY_A.encode()], HASH_1.encode())
    assert sorted(only_b.decrypt(p) for p in phones if p) == ["+8613800138066", "+8613800138077"]
    for phone in filter(None, phones):
        with pytest.raises(InvalidToken):
            only_a.decrypt(phone)
