"""Member cards over HTTP: offline verification with the public key, live checks, access."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import update

from gonghui_shared import keys
from gonghui_shared.permissions import Role
from membership.cards.service import CardSeal, issue_card
from membership.members.models import Member
from membership.testing import Api, valid_id_number


async def _verify(api: Api, token: str) -> dict[str, Any]:
    response = await api.client.post("/v1/cards/verify", json={"token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"valid", "member_no", "status", "reason", "checked_at"}
    return body


async def _jwks_key(api: Api) -> jwt.PyJWK:
    response = await api.client.get("/v1/cards/public-key")  # no token: stations fetch it freely
    assert response.status_code == 200, response.text
    jwks = response.json()
    (jwk,) = jwks["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert len(base64.urlsafe_b64decode(jwk["x"] + "==")) == 32
    assert keys.load_public_key(jwks["pem"])  # the PEM is the same key, for non-JOSE tools
    return jwt.PyJWK(jwk)


async def test_card_verifies_offline_with_the_published_key(api: Api) -> None:
    county, _, village = await api.tree()
    id_number = valid_id_number(17, birth="19880715")
    admitted = await api.member(county, village, id_number=id_number, phone="13800138000")
    member_no = admitted["member"]["member_no"]
    key = await _jwks_key(api)

    token = admitted["card"]["token"]
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer="gonghui-membership")
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    assert claims["sub"] == member_no and claims["county"] == "530921"
    assert claims["org"] == village["name"] and claims["category"] == "migrant_worker"
    assert claims["joined"] == admitted["member"]["joined_on"] and claims["exp"] > claims["iat"]
    assert set(claims) == {
        "iss",
        "sub",
        "name",
        "org",
        "county",
        "category",
        "joined",
        "iat",
        "exp",
    }
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
    assert id_number not in payload and "13800138000" not in payload

    fetched = await api.ok(
        "GET", f"/v1/members/{member_no}/card", as_=api.headers(Role.county_admin, county)
    )
    assert fetched["member_no"] == member_no and fetched["public_key_url"] == "/v1/cards/public-key"
    assert jwt.decode(fetched["token"], key.key, algorithms=["EdDSA"])["sub"] == member_no
    live = await _verify(api, fetched["token"])
    assert live["valid"] is True and live["reason"] == "ok" and live["status"] == "active"
    assert live["member_no"] == member_no


async def test_tampered_or_foreign_token_has_a_bad_signature(api: Api) -> None:
    county, _, village = await api.tree()
    token = (await api.member(county, village))["card"]["token"]
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "5309212026999999"}).encode())
        .rstrip(b"=")
        .decode()
    )
    tampered = f"{header}.{forged_payload}.{signature}"

    key = await _jwks_key(api)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key.key, algorithms=["EdDSA"])
    for bad in (tampered, token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"), "not-a-token"):
        result = await _verify(api, bad)
        assert result == {**result, "valid": False, "reason": "bad_signature", "member_no": None}
        assert result["status"] is None

    stranger = CardSeal.from_private_key(Ed25519PrivateKey.generate())
    member = Member(member_no=claims["sub"], name="x", category="employee", joined_on=date.today())
    foreign, _ = issue_card(stranger, member, "某工会", 30)
    assert (await _verify(api, foreign))["reason"] == "bad_signature"
    # An algorithm the seal never uses is refused even if the rest looks right.
    none_alg = jwt.encode(claims, None, algorithm="none")
    assert (await _verify(api, none_alg))["reason"] == "bad_signature"


async def test_expired_and_unknown_cards(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    admitted = await api.member(county, village)
    seal: CardSeal = app.state.card_seal
    member = Member(
        member_no=admitted["member"]["member_no"],
        name="x",
        category="employee",
        joined_on=date.today(),
    )
    expired, expires_at = issue_card(seal, member, village["name"], -1)
    key = await _jwks_key(api)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, key.key, algorithms=["EdDSA"])
    result = await _verify(api, expired)
    assert (result["valid"], result["reason"]) == (False, "expired")
    assert result["member_no"] == member.member_no and result["status"] == "active"

    ghost = Member(
        member_no="5309212026777777", name="x", category="employee", joined_on=date.today()
    )
    unknown, _ = issue_card(seal, ghost, village["name"], 30)
    result = await _verify(api, unknown)
    assert (result["valid"], result["reason"], result["status"]) == (False, "unknown_member", None)

    empty = await api.client.post("/v1/cards/verify", json={"token": ""})
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["field"] == "token"


async def test_card_stops_verifying_when_membership_ends(api: Api, app: FastAPI) -> None:
    county, _, village = await api.tree()
    admitted = await api.member(county, village)
    member_no = admitted["member"]["member_no"]
    token = admitted["card"]["token"]
    assert (await _verify(api, token))["valid"] is True

    async with app.state.runtime.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.member_no == member_no).values(status="withdrawn")
        )
    result = await _verify(api, token)
    assert (result["valid"], result["reason"], result["status"]) == (
        False,
        "membership_ended",
        "withdrawn",
    )
    # Still genuine offline: the signature cannot know; that is what the live check is for.
    jwt.decode(token, (await _jwks_key(api)).key, algorithms=["EdDSA"])
    refused = await api.client.get(
        f"/v1/members/{member_no}/card", headers=api.headers(Role.county_admin, county)
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "membership_not_active"


async def test_who_may_fetch_a_card(api: Api) -> None:
    county, township, village = await api.tree()
    other_village = await api.child(township, "village_union", "新华村工会委员会", "530921101202")
    member_no = (await api.member(county, village))["member"]["member_no"]
    other_no = (await api.member(county, other_village))["member"]["member_no"]
    path = f"/v1/members/{member_no}/card"

    own = await api.client.get(path, headers=api.headers(Role.member, village, member_no=member_no))
    assert own.status_code == 200 and own.json()["member_no"] == member_no
    someone_else = await api.client.get(
        path, headers=api.headers(Role.member, village, member_no=other_no)
    )
    assert someone_else.status_code == 403 and someone_else.json()["error"]["code"] == "forbidden"
    chair = await api.client.get(path, headers=api.headers(Role.org_chair, village))
    assert chair.status_code == 200
    other_chair = await api.client.get(path, headers=api.headers(Role.org_chair, other_village))
    assert other_chair.status_code == 403
    assert other_chair.json()["error"]["code"] == "out_of_scope"
    station = await api.client.get(path, headers=api.headers(Role.station_operator, village))
    assert station.status_code == 403 and station.json()["error"]["code"] == "forbidden"
    anonymous = await api.client.get(path)
    assert anonymous.status_code == 401
    missing = await api.client.get(
        "/v1/members/5309212026888888/card", headers=api.headers(Role.county_admin, county)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "member_not_found"
