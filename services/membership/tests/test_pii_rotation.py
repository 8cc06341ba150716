"""`gonghui-membership rotate-pii-keys`: rows written with key A read back with key B alone.

The app's cipher is swapped for one built from settings with the keys of each step, as a
restart with new GONGHUI_PII_KEYS would; the command runs in-process with the environment
an operator gives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PREFIX, PiiCipher
from gonghui_shared.pii_rotation import encrypted_tables, rotate_personal_data
from gonghui_shared.testing import use_pii_keys
from membership.cli import main
from membership.config import MembershipSettings
from membership.models import Base
from membership.testing import Api, applicant

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
HASH_1, HASH_2 = "hash-key-one-" + "1" * 40, "hash-key-two-" + "2" * 40


class Keys:
    """Restarts the app, as far as personal data goes, with other GONGHUI_PII_* values."""

    def __init__(self, app: FastAPI) -> None:
        self.runtime = app.state.runtime

    def use(self, pii_keys: str, hash_key: str = HASH_1) -> None:
        use_pii_keys(self.runtime, pii_keys, hash_key)


@pytest.fixture
def keys(app: FastAPI) -> Iterator[Keys]:
    before = app.state.runtime.pii
    yield Keys(app)
    app.state.runtime.pii = before


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, settings: MembershipSettings) -> Any:
    """The command's environment: the service's database and data dir, and `keys`."""
    monkeypatch.setenv("MEMBERSHIP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(settings.data_dir))

    def configure(pii_keys: str, hash_key: str = HASH_1) -> None:
        monkeypatch.setenv("GONGHUI_PII_KEYS", pii_keys)
        monkeypatch.setenv("GONGHUI_PII_HASH_KEY", hash_key)

    return configure


async def rotate(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    # main() runs its own event loop, so it gets a thread of its own.
    code = await asyncio.to_thread(main, ["rotate-pii-keys", *options])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def encrypted_values(app: FastAPI) -> list[str]:
    """Every encrypted value membership stores."""
    values = []
    async with app.state.runtime.db.transaction() as session:
        for spec in encrypted_tables(Base.metadata):
            for row in await session.execute(select(*spec.encrypted)):
                values += [v for v in row if v is not None]
    return values


async def personal_data(api: Api, member_nos: list[str], application_id: str) -> list[Any]:
    """ID numbers and phones in full, as the platform admin reads them."""
    members = [await api.ok("GET", f"/v1/members/{no}") for no in member_nos]
    application = await api.ok("GET", f"/v1/applications/{application_id}")
    return [(r["id_number"], r["phone"]) for r in [*members, application]]


async def test_rows_written_with_key_a_read_with_key_b_alone_after_rotation(
    api: Api,
    app: FastAPI,
    keys: Keys,
    operator_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys.use(KEY_A)
    county, _, village = await api.tree()
    people = [applicant() for _ in range(3)]
    member_nos = []
    for person in people[:2]:
        approved = await api.member(county, village, **person)
        member_nos.append(approved["member"]["member_no"])
    pending = await api.apply(village, **people[2])
    expected = [(p["id_number"], "+86" + p["phone"]) for p in people]
    assert await personal_data(api, member_nos, pending["id"]) == expected
    stored = await encrypted_values(app)
    assert len(stored) == 10  # 2 members and 3 applications, an ID number and a phone each

    keys.use(f"{KEY_B},{KEY_A}")  # the new key prepended, the services restarted
    operator_env(f"{KEY_B},{KEY_A}")
    code, output = await rotate(capsys, "--batch", "2")
    assert code == 0, output
    assert "members" in output and "2 / 2 rows (100%)" in output  # the progress lines
    assert "applications             read 3: re-encrypted 3, already current 0" in output
    assert "re-encrypted 5 rows of 5 in 2 tables" in output
    assert "the older keys may be removed" in output

    code, output = await rotate(capsys, "--quiet")  # a second run finds nothing to do
    assert code == 0 and "re-encrypted 0 rows of 5" in output and "rows (" not in output

    keys.use(KEY_B)  # the old key removed
    assert await personal_data(api, member_nos, pending["id"]) == expected
    only_a = PiiCipher([KEY_A.encode()], HASH_1.encode())
    for value in await encrypted_values(app):
        with pytest.raises(InvalidToken):
            only_a.decrypt(value)
    # The lookup hashes were left alone: the same person is still recognised.
    again = await api.client.post(
        "/v1/applications",
        headers=api.headers(Role.org_chair, village),
        json=applicant(id_number=people[0]["id_number"]) | {"org_id": village["id"]},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_member"


async def test_rehash_recomputes_lookup_hashes_with_the_new_hash_key(
    api: Api,
    keys: Keys,
    operator_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys.use(KEY_A, HASH_1)
    county, _, village = await api.tree()
    person = applicant()
    member_no = (await api.member(county, village, **person))["member"]["member_no"]
    pending = applicant()
    await api.apply(village, **pending)

    keys.use(f"{KEY_B},{KEY_A}", HASH_2)
    operator_env(f"{KEY_B},{KEY_A}", HASH_2)
    code, output = await rotate(capsys, "--rehash", "--quiet")
    assert code == 0, output
    assert "members                  read 1: re-encrypted 1, already current 0, " in output
    assert "lookup hashes recomputed 1, unreadable 0" in output

    keys.use(KEY_B, HASH_2)
    gateway = api.headers(Role.platform_admin, subject="gateway", scopes=[Action.members_lookup])
    found = await api.ok("POST", "/v1/members/lookup", as_=gateway, json={"phone": person["phone"]})
    assert [m["member_no"] for m in found["members"]] == [member_no]
    for who, error in ((person, "already_member"), (pending, "duplicate_application")):
        again = await api.client.post(
            "/v1/applications",
            headers=api.headers(Role.org_chair, village),
            json=applicant(id_number=who["id_number"]) | {"org_id": village["id"]},
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == error

    code, output = await rotate(capsys, "--rehash", "--quiet")  # nothing left to change
    assert code == 0 and "re-encrypted 0 rows" in output and "recomputed 1" not in output


async def test_an_interrupted_rotation_resumes_and_unreadable_rows_are_named(
    api: Api,
    app: FastAPI,
    keys: Keys,
    operator_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys.use(KEY_A)
    county, _, village = await api.tree()
    for _ in range(4):
        await api.apply(village)
    keys.use(KEY_C)  # a key nobody configures any more
    lost = await api.apply(village)

    class Interrupted(Exception):
        pass

    def stop_after_two(report: Any) -> None:
        if report.read >= 2:
            raise Interrupted

    rotating = PiiCipher([KEY_B.encode(), KEY_A.encode()], HASH_1.encode())
    with pytest.raises(Interrupted):
        await rotate_personal_data(
            app.state.runtime.db, Base.metadata, rotating, batch=2, progress=stop_after_two
        )
    current = [rotating.is_current(v) for v in await encrypted_values(app)]
    assert current.count(True) == 4  # the first batch of two, committed

    operator_env(f"{KEY_B},{KEY_A}")
    code, output = await rotate(capsys, "--quiet")
    assert code == 1, output
    assert "applications             read 5: re-encrypted 2, already current 2, " in output
    assert f"1 rows open with none of the configured keys (applications/{lost['id']})" in output
    assert "keep the old keys" in output


async def test_values_stored_as_fernet_tokens_are_rewritten_with_aes_gcm_under_the_same_key(
    api: Api,
    app: FastAPI,
    keys: Keys,
    operator_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys.use(KEY_A)
    county, _, village = await api.tree()
    person = applicant()
    member_no = (await api.member(county, village, **person))["member"]["member_no"]
    # The rows as a release before AES-GCM wrote them: every value a Fernet token of key A.
    cipher, legacy = app.state.runtime.pii, Fernet(KEY_A.encode())
    async with app.state.runtime.db.transaction() as session:
        for spec in encrypted_tables(Base.metadata):
            for row in (await session.execute(select(spec.table))).all():
                old = {c.name: getattr(row, c.name) for c in spec.encrypted}
                await session.execute(
                    spec.table.update()
                    .where(spec.key == getattr(row, spec.key.name))
                    .values(
                        {
                            name: legacy.encrypt(cipher.decrypt(value).encode()).decode()
                            for name, value in old.items()
                            if value is not None
                        }
                    )
                )
    assert not any(v.startswith(PREFIX) for v in await encrypted_values(app))
    member = await api.ok("GET", f"/v1/members/{member_no}")  # still read as they are
    assert (member["id_number"], member["phone"]) == (person["id_number"], "+86" + person["phone"])

    operator_env(KEY_A)  # no new key: the rotation rewrites the old form alone
    code, output = await rotate(capsys, "--quiet")
    assert code == 0, output
    assert "re-encrypted 2 rows of 2" in output  # the member and its application
    stored = await encrypted_values(app)
    assert len(stored) == 4 and all(cipher.is_current(v) for v in stored)
    member = await api.ok("GET", f"/v1/members/{member_no}")
    assert (member["id_number"], member["phone"]) == (person["id_number"], "+86" + person["phone"])
