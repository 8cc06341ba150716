"""Mobile login by phone and one-time code, with the development LogSender."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from gateway.accounts.models import OtpCode
from gateway.accounts.testing import FakeMembership, Gateway
from gateway.base import utcnow
from gateway.config import GatewaySettings
from gonghui_shared.permissions import Action, Role

PHONE = "13800138000"
SENDER = "gateway.accounts.otp"


@pytest.fixture
def codes(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def sent_codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The codes the LogSender wrote, oldest first."""
    found = []
    for record in caplog.records:
        if record.name == SENDER and (match := re.search(r": (\d{6}) ", record.getMessage())):
            found.append(match.group(1))
    return found


async def request_code(gw: Gateway, phone: str = PHONE) -> Any:
    return await gw.ok("POST", "/v1/auth/otp", json={"phone": phone}, expect=202)


async def verify(gw: Gateway, code: str, phone: str = PHONE, **extra: str) -> Any:
    body = {"phone": phone, "code": code} | extra
    return await gw.client.post("/v1/auth/otp/verify", json=body)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_a_member_signs_in_with_the_code_from_the_log(
    gw: Gateway, app: FastAPI, membership: FakeMembership, codes: pytest.LogCaptureFixture
) -> None:
    membership.add_member("+86 138 0013 8000", "5309212026000001")
    assert await request_code(gw) == {"expires_in": 300}
    [code] = sent_codes(codes)
    response = await verify(gw, code, phone="+8613800138000")  # any spelling of the number
    assert response.status_code == 200, response.text
    tokens = response.json()
    principal = app.state.runtime.verifier.verify(tokens["access_token"])
    assert (principal.role, principal.member_no, principal.org_path) == (
        Role.member,
        "5309212026000001",
        None,
    )
    # Membership was asked with the gateway's own narrow token, the phone in the body only.
    [lookup] = [r for r in membership.requests if r.url.path == "/v1/members/lookup"]
    assert "138" not in str(lookup.url) and json.loads(lookup.content) == {
        "phone": "+8613800138000"
    }
    asker = app.state.runtime.verifier.verify(lookup.headers["authorization"].split()[1])
    assert (asker.subject, asker.role, asker.scopes) == (
        "gateway",
        Role.platform_admin,
        [Action.members_lookup],
    )
    # Used up; the refresh token works; the code appears in no other log line.
    assert (await verify(gw, code)).json()["error"]["code"] == "invalid_code"
    await gw.refresh(tokens["refresh_token"])
    others = [r.getMessage() for r in codes.records if r.name != SENDER]
    assert others and not any(code in line for line in others)


async def test_a_phone_of_no_member_signs_in_as_an_applicant_and_keeps_its_account(
    gw: Gateway, app: FastAPI, codes: pytest.LogCaptureFixture
) -> None:
    await request_code(gw, "13900139000")
    response = await verify(gw, sent_codes(codes)[-1], phone="13900139000")
    assert response.status_code == 200, response.text
    first = app.state.runtime.verifier.verify(response.json()["access_token"])
    assert (first.role, first.member_no) == (Role.member, None)

    codes.clear()
    await request_code(gw, "13900139000")  # the last code was used: a new one is sent
    again = await verify(gw, sent_codes(codes)[-1], phone="13900139000")
    assert app.state.runtime.verifier.verify(again.json()["access_token"]).subject == first.subject


async def test_the_answer_to_a_code_request_never_tells_members_apart(
    gw: Gateway, membership: FakeMembership, codes: pytest.LogCaptureFixture
) -> None:
    membership.add_member(PHONE, "5309212026000001")
    member = await gw.client.post("/v1/auth/otp", json={"phone": PHONE})
    stranger = await gw.client.post("/v1/auth/otp", json={"phone": "13700137000"})
    assert (member.status_code, member.json()) == (stranger.status_code, stranger.json())
    assert len(sent_codes(codes)) == 2  # both phones get a code; membership is asked at login
    assert not [r for r in membership.requests if r.url.path == "/v1/members/lookup"]
    bad = await gw.client.post("/v1/auth/otp", json={"phone": "12345"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_phone"


async def test_five_wrong_guesses_use_the_code_up(
    gw: Gateway, codes: pytest.LogCaptureFixture
) -> None:
    await request_code(gw)
    [code] = sent_codes(codes)
    for _ in range(5):
        response = await verify(gw, wrong(code))
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_code"
    response = await verify(gw, code)  # right, but too late
    assert response.status_code == 429 and response.json()["error"]["code"] == "too_many_attempts"


async def test_an_expired_code_is_refused(
    gw: Gateway, app: FastAPI, codes: pytest.LogCaptureFixture
) -> None:
    await request_code(gw)
    [code] = sent_codes(codes)
    async with app.state.runtime.db.transaction() as session:
        await session.execute(update(OtpCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await verify(gw, code)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_code"


async def test_a_new_code_waits_a_minute_and_then_replaces_the_old_one(
    gw: Gateway,
    settings: GatewaySettings,
    codes: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await request_code(gw)
    await request_code(gw)  # within a minute: the first code stands, nothing is sent
    [first] = sent_codes(codes)
    monkeypatch.setattr(settings, "otp_resend_seconds", 0)
    await request_code(gw)
    [_, second] = sent_codes(codes)
    if first != second:  # six random digits: equal once in a million runs
        assert (await verify(gw, first)).status_code == 401
    assert (await verify(gw, second)).status_code == 200


async def test_a_shared_phone_asks_which_member(
    gw: Gateway, app: FastAPI, membership: FakeMembership, codes: pytest.LogCaptureFixture
) -> None:
    membership.add_member(PHONE, "5309212026000001")
    membership.add_member(PHONE, "5309212026000002")
    await request_code(gw)
    [code] = sent_codes(codes)
    response = await verify(gw, code)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "member_choice_required"
    assert error["details"] == {"member_nos": ["5309212026000001", "5309212026000002"]}
    chosen = await verify(gw, code, member_no="5309212026000002")
    assert chosen.status_code == 200, chosen.text
    principal = app.state.runtime.verifier.verify(chosen.json()["access_token"])
    assert principal.member_no == "5309212026000002"


async def test_membership_down_is_a_clear_503_and_the_code_survives(
    gw: Gateway, membership: FakeMembership, codes: pytest.LogCaptureFixture
) -> None:
    membership.add_member(PHONE, "5309212026000001")
    await request_code(gw)
    [code] = sent_codes(codes)
    membership.down = True
    response = await verify(gw, code)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "membership_unavailable"
    membership.down = False
    assert (await verify(gw, code)).status_code == 200
