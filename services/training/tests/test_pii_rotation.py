"""`gonghui-training rotate-pii-keys`: non-members' data written with key A read with key B.

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

from gonghui_shared.pii import PiiCipher
from gonghui_shared.pii_rotation import encrypted_tables
from gonghui_shared.testing import use_pii_keys
from gonghui_shared.testing.feed import MembershipFeed
from training.cli import main
from training.config import TrainingSettings
from training.models import Base
from training.testing import Api, non_member, open_session

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
HASH_KEY = "training-hash-key-" + "3" * 40


@pytest.fixture
def runtime(app: FastAPI) -> Iterator[Any]:
    """The app's runtime; its cipher is put back after the test."""
    before = app.state.runtime.pii
    yield app.state.runtime
    app.state.runtime.pii = before


async def encrypted_values(app: FastAPI) -> list[str]:
    values = []
    async with app.state.runtime.db.transaction() as session:
        for spec in encrypted_tables(Base.metadata):
            for row in await session.execute(select(*spec.encrypted)):
                values += [v for v in row if v is not None]
    return values


async def personal_data(api: Api, enrolment_ids: list[str], event_id: str) -> list[Any]:
    """ID numbers and phones in full, as the platform admin reads them."""
    enrolments = [await api.ok("GET", f"/v1/enrolments/{e}") for e in enrolment_ids]
    entries = await api.ok("GET", f"/v1/competition-events/{event_id}/entries")
    return [(r["id_number"], r["phone"]) for r in [*enrolments, *entries]]


async def test_non_members_written_with_key_a_read_with_key_b_alone_after_rotation(
    api: Api,
    app: FastAPI,
    feed: MembershipFeed,
    runtime: Any,
    settings: TrainingSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_pii_keys(runtime, KEY_A, HASH_KEY)
    county, _, village = await feed.tree()
    ts = await open_session(api, county)
    people = [non_member() for _ in range(3)]
    enrolments = [
        await api.ok("POST", f"/v1/sessions/{ts['id']}/enrolments", expect=201, json=person)
        for person in people[:2]
    ]
    member_no = await feed.member(village, name="李明")  # a member: nothing encrypted
    await api.ok(
        "POST", f"/v1/sessions/{ts['id']}/enrolments", expect=201, json={"member_no": member_no}
    )
    contest = await api.ok(
        "POST",
        "/v1/competitions",
        expect=201,
        json={
            "title": "2026年凤庆县职工职业技能大赛",
            "starts_on": "2026-10-16",
            "ends_on": "2026-10-18",
            "host_org_id": county["id"],
        },
    )
    event = await api.ok(
        "POST", f"/v1/competitions/{contest['id']}/events", expect=201, json={"trade": "电焊工"}
    )
    await api.ok(
        "POST", f"/v1/competition-events/{event['id']}/entries", expect=201, json=people[2]
    )
    expected = [(p["id_number"], "+86" + p["phone"]) for p in people]
    ids = [e["id"] for e in enrolments]
    assert await personal_data(api, ids, event["id"]) == expected
    assert len(await encrypted_values(app)) == 6

    use_pii_keys(runtime, f"{KEY_B},{KEY_A}", HASH_KEY)  # prepended, restarted
    monkeypatch.setenv("TRAINING_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GONGHUI_PII_KEYS", f"{KEY_B},{KEY_A}")
    monkeypatch.setenv("GONGHUI_PII_HASH_KEY", HASH_KEY)
    code = await asyncio.to_thread(main, ["rotate-pii-keys", "--batch", "1"])
    output = capsys.readouterr()
    assert code == 0, output.err
    assert "enrolments" in output.err and "3 / 3 rows (100%)" in output.err
    assert "enrolments               read 3: re-encrypted 2, already current 1" in output.out
    assert "competition_entries      read 1: re-encrypted 1, already current 0" in output.out
    assert "the older keys may be removed" in output.out

    assert await asyncio.to_thread(main, ["rotate-pii-keys", "--quiet"]) == 0
    assert "re-encrypted 0 rows of 4" in capsys.readouterr().out

    use_pii_keys(runtime, KEY_B, HASH_KEY)  # the old key removed
    assert await personal_data(api, ids, event["id"]) == expected
    only_a = PiiCipher([KEY_A.encode()], HASH_KEY.encode())
    for value in await encrypted_values(app):
        with pytest.raises(InvalidToken):
            only_a.decrypt(value)
