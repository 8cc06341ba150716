"""Signing in and out: the password grant, refresh rotation, revocation, expiry, the JWKS."""

from __future__ import annotations

import logging
import uuid

import httpx
import jwt
import pytest
from fastapi import FastAPI

from gateway.accounts.deps import RevocationCache
from gateway.accounts.testing import ADMIN_PASSWORD, COUNTY_A, Gateway
from gateway.config import GatewaySettings
from gateway.main import create_app
from gonghui_shared.auth import Principal, TokenIssuer, TokenVerifier
from gonghui_shared.keys import (
    key_id,
    keys_from_jwks,
    load_private_key,
    new_ed25519_pem,
    public_pem,
)
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import fetch_jwks, load_jwt_private_key


async def test_the_password_grant_answers_per_rfc_6749(gw: Gateway, app: FastAPI) -> None:
    await gw.admin()
    data = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
    response = await gw.client.post("/v1/auth/token", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    token = app.state.runtime.verifier.decode(body["access_token"])
    assert token.principal.role is Role.platform_admin and token.principal.org_path is None
    assert token.jti and token.expires_at - token.claims["iat"] == 900
    # The token works at the gateway's own endpoints.
    listing = await gw.ok("GET", "/v1/accounts", token=body["access_token"])
    assert [a["username"] for a in listing["items"]] == ["admin"]


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(gw: Gateway) -> None:
    await gw.admin()
    answers = []
    for username, password in (("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)):
        data = {"grant_type": "password", "username": username, "password": password}
        error = await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=data)
        error.pop("request_id")
        answers.append(error)
    assert answers[0] == answers[1]
    assert answers[0]["details"] == {"oauth_error": "invalid_grant"}


async def test_malformed_token_requests_are_refused_in_the_house_shape(gw: Gateway) -> None:
    await gw.error(
        "POST", "/v1/auth/token", 400, "unsupported_grant_type", data={"grant_type": "implicit"}
    )
    await gw.error(
        "POST",
        "/v1/auth/token",
        400,
        "invalid_request",
        data={"grant_type": "password", "username": "admin"},
    )
    await gw.error("POST", "/v1/auth/token", 422, "validation_error", data={"username": "x"})


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(gw: Gateway) -> None:
    await gw.admin()
    first = await gw.login("admin", ADMIN_PASSWORD)
    second = await gw.refresh(first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    await gw.ok("GET", "/v1/accounts", token=second["access_token"])

    # The first refresh token again: someone copied it. Everything of this login goes.
    reused = await gw.refresh(first["refresh_token"], expect=401)
    assert reused["error"]["code"] == "invalid_refresh_token"
    assert (await gw.refresh(second["refresh_token"], expect=401))["error"]["code"] == (
        "invalid_refresh_token"
    )
    for token in (first["access_token"], second["access_token"]):
        await gw.error("GET", "/v1/accounts", 401, "token_revoked", token=token)
    # Another login is another family, untouched.
    third = await gw.login("admin", ADMIN_PASSWORD)
    await gw.ok("GET", "/v1/accounts", token=third["access_token"])
    await gw.refresh(third["refresh_token"])


async def test_an_unknown_refresh_token_is_refused(gw: Gateway) -> None:
    body = await gw.refresh("ghr_not-a-token", expect=401)
    assert body["error"]["details"] == {"oauth_error": "invalid_grant"}


async def test_sign_out_revokes_the_access_token_and_the_refresh_family(
    gw: Gateway, app: FastAPI
) -> None:
    await gw.admin()
    session = await gw.login("admin", ADMIN_PASSWORD)
    other = await gw.login("admin", ADMIN_PASSWORD)
    access = session["access_token"]
    await gw.ok("POST", "/v1/auth/revoke", token=access, expect=204)

    await gw.error("GET", "/v1/accounts", 401, "token_revoked", token=access)
    await gw.refresh(session["refresh_token"], expect=401)
    await gw.ok("GET", "/v1/accounts", token=other["access_token"])  # another login stays

    # Another gateway process sees it from the table: through its own cache, or without one.
    jti = app.state.runtime.verifier.decode(access).jti
    for ttl in (60.0, 0.0):
        assert await RevocationCache(app.state.runtime.db, ttl).is_revoked(jti)
        assert not await RevocationCache(app.state.runtime.db, ttl).is_revoked("not-revoked")


async def test_sign_out_with_a_refresh_token_of_another_login_revokes_that_one_too(
    gw: Gateway,
) -> None:
    await gw.admin()
    phone, laptop = await gw.login("admin", ADMIN_PASSWORD), await gw.login("admin", ADMIN_PASSWORD)
    data = {"refresh_token": laptop["refresh_token"]}
    await gw.ok("POST", "/v1/auth/revoke", token=phone["access_token"], data=data, expect=204)
    await gw.error("GET", "/v1/accounts", 401, "token_revoked", token=laptop["access_token"])
    await gw.refresh(laptop["refresh_token"], expect=401)


async def test_an_expired_or_foreign_token_is_refused(
    gw: Gateway, settings: GatewaySettings
) -> None:
    issuer = TokenIssuer(load_jwt_private_key(settings))
    admin = Principal(subject="a", role=Role.platform_admin)
    expired = issuer.issue(admin, ttl_seconds=-5)
    error = await gw.error("GET", "/v1/accounts", 401, "unauthorized", token=expired)
    assert "expired" in error["message"]
    stranger = TokenIssuer(load_private_key(new_ed25519_pem()))
    await gw.error("GET", "/v1/accounts", 401, "unauthorized", token=stranger.issue(admin))
    await gw.error("GET", "/v1/accounts", 401, "unauthorized")


async def test_the_jwks_publishes_the_key_that_verifies_access_tokens(
    gw: Gateway, app: FastAPI
) -> None:
    await gw.admin()
    access = (await gw.login("admin", ADMIN_PASSWORD))["access_token"]
    jwks = await gw.ok("GET", "/.well-known/jwks.json")
    [jwk] = jwks["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in jwk  # the public half only
    assert jwt.get_unverified_header(access)["kid"] == jwk["kid"]
    assert TokenVerifier(keys_from_jwks(jwks)).verify(access).role is Role.platform_admin
    # As a service does at start-up, over HTTP (here in-process).
    transport = httpx.ASGITransport(app=app)
    url = "http://gateway/.well-known/jwks.json"
    fetched = await fetch_jwks(url, wait_seconds=1, transport=transport)
    assert TokenVerifier(fetched).verify(access).subject


async def test_while_the_signing_key_rotates_both_keys_are_published_and_accepted(
    settings: GatewaySettings, client: httpx.AsyncClient
) -> None:
    old = load_jwt_private_key(settings)  # the session's key: the one before the rotation
    new_pem = new_ed25519_pem()
    new = load_private_key(new_pem)
    rotated = settings.model_copy(
        update={
            "jwt_private_key": new_pem.decode(),
            "jwt_accepted_public_keys": public_pem(old),
            "subject_root": f"{settings.subject_root}rot{uuid.uuid4().hex[:6]}",
        }
    )
    app = create_app(rotated)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as rotating:
            jwks = (await rotating.get("/.well-known/jwks.json")).json()
            # The signing key first: a JWKS reader that takes one key takes that.
            assert [jwk["kid"] for jwk in jwks["keys"]] == [
                key_id(new.public_key()),
                key_id(old.public_key()),
            ]
            assert app.state.accounts.issuer.kid == key_id(new.public_key())
            admin = Principal(subject="a", role=Role.platform_admin)
            for key in (old, new):
                token = TokenIssuer(key).issue(admin)
                answer = await rotating.get("/v1/accounts", headers=bearer(token))
                assert answer.status_code == 200, answer.text
            stranger = TokenIssuer(load_private_key(new_ed25519_pem())).issue(admin)
            answer = await rotating.get("/v1/accounts", headers=bearer(stranger))
            assert answer.status_code == 401
    # The gateway without the setting accepts its own key's tokens alone.
    answer = await client.get("/v1/accounts", headers=bearer(TokenIssuer(new).issue(admin)))
    assert answer.status_code == 401


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_deactivation_signs_the_account_out_everywhere(gw: Gateway) -> None:
    admin = await gw.admin()
    account = await gw.account(admin, "county_a", "county_admin", COUNTY_A)
    session = await gw.login("county_a", "county_a-password")
    await gw.ok("GET", "/v1/accounts", token=session["access_token"])

    await gw.ok("PATCH", f"/v1/accounts/{account['id']}", token=admin, json={"active": False})
    await gw.error("GET", "/v1/accounts", 401, "token_revoked", token=session["access_token"])
    await gw.refresh(session["refresh_token"], expect=401)
    data = {"grant_type": "password", "username": "county_a", "password": "county_a-password"}
    await gw.error("POST", "/v1/auth/token", 403, "account_disabled", data=data)
    # A wrong password still reads as one: deactivation is told only to who knows the password.
    data["password"] = "not-the-password"
    await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=data)

    await gw.ok("PATCH", f"/v1/accounts/{account['id']}", token=admin, json={"active": True})
    await gw.login("county_a", "county_a-password")


async def test_passwords_never_reach_the_logs_or_the_database(
    gw: Gateway, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await gw.admin()
    await gw.account(admin, "county_a", "county_admin", COUNTY_A)
    await gw.login("county_a", "county_a-password")
    await gw.ok(
        "POST",
        "/v1/auth/token",
        expect=401,
        data={
            "grant_type": "password",
            "username": "county_a",
            "password": "a-wrong-guess-123",
        },
    )
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for secret in ("county_a-password", ADMIN_PASSWORD, "a-wrong-guess-123"):
        assert secret not in caplog.text
    async with app.state.runtime.db.sessions() as session:
        from sqlalchemy import text

        rows = (await session.execute(text("SELECT username, password_hash FROM accounts"))).all()
    assert {r.username for r in rows} == {"admin", "county_a"}
    for row in rows:
        assert row.password_hash.startswith("scrypt$1024$8$1$")
        assert "password" not in row.password_hash
