"""API keys for government systems: named scopes, the secret shown once, revocation that bites."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select

from gateway.accounts.caller import CallerDep, _api_key, _api_key_of
from gateway.accounts.models import ApiKey
from gateway.accounts.testing import COUNTY_A, COUNTY_B, VILLAGE_A, Gateway
from gonghui_shared.errors import install_error_handlers
from gonghui_shared.permissions import Action, Role


def probe(app: FastAPI) -> httpx.AsyncClient:
    """Endpoints shaped like the services', behind the gateway's own CallerDep and state."""
    service = FastAPI()
    install_error_handlers(service)
    service.state.accounts = app.state.accounts
    service.state.runtime = app.state.runtime
    service.state.limits = app.state.limits

    @service.post("/rosters/import")
    async def import_roster(caller: CallerDep) -> dict[str, str]:
        caller.principal.require(Action.rosters_import, VILLAGE_A["path"])
        return {"upstream_token": caller.upstream_token}

    @service.get("/members")
    async def list_members(caller: CallerDep) -> dict[str, str]:
        caller.principal.require(Action.members_read, VILLAGE_A["path"])
        return {"upstream_token": caller.upstream_token}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=service), base_url="http://svc")


async def new_key(gw: Gateway, token: str, *scopes: str, **extra: str) -> dict[str, str]:
    body = {"name": "县人社局数据共享平台", "scopes": list(scopes)} | extra
    return dict(await gw.ok("POST", "/v1/api-keys", token=token, json=body, expect=201))


async def test_a_masked_members_key_reads_members_but_may_not_import_rosters(
    gw: Gateway, app: FastAPI
) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    key = await new_key(gw, county_a, "members:read_masked")
    assert key["secret"].startswith("ghk_") and key["prefix"] == key["secret"][:12]
    assert (key["org_id"], key["org_path"], key["scopes"]) == (
        COUNTY_A["id"],
        COUNTY_A["path"],
        ["members:read_masked"],
    )
    headers = {"X-API-Key": key["secret"]}
    async with probe(app) as service:
        allowed = await service.get("/members", headers=headers)
        assert allowed.status_code == 200, allowed.text
        denied = await service.post("/rosters/import", headers=headers)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        assert "scopes" in denied.json()["error"]["message"]

    # What the services receive: gov_system, the key's org, the scopes' actions, a minute long.
    token = app.state.runtime.verifier.decode(allowed.json()["upstream_token"])
    principal = token.principal
    assert (principal.role, principal.org_path) == (Role.gov_system, COUNTY_A["path"])
    assert principal.scopes == [Action.members_read, Action.orgs_read]
    assert not principal.may(Action.rosters_import)
    assert not principal.may(Action.members_read_personal)
    assert token.expires_at - token.claims["iat"] == 60
    # A key manages nothing at the gateway either.
    await gw.error("GET", "/v1/accounts", 403, "forbidden", headers=headers)


async def test_an_import_key_imports_only_inside_its_org(gw: Gateway, app: FastAPI) -> None:
    admin = await gw.admin()
    importer = await new_key(gw, admin, "rosters:import", org_id=COUNTY_A["id"])
    elsewhere = await new_key(gw, admin, "rosters:import", "dashboards:read", org_id=COUNTY_B["id"])
    assert elsewhere["scopes"] == ["dashboards:read", "rosters:import"]
    async with probe(app) as service:
        ok = await service.post("/rosters/import", headers={"X-API-Key": importer["secret"]})
        assert ok.status_code == 200, ok.text
        outside = await service.post("/rosters/import", headers={"X-API-Key": elsewhere["secret"]})
        assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
        reading = await service.get("/members", headers={"X-API-Key": importer["secret"]})
        assert reading.status_code == 403


async def test_the_secret_is_shown_once_and_stored_only_as_a_hash(
    gw: Gateway, app: FastAPI
) -> None:
    admin = await gw.admin()
    key = await new_key(gw, admin, "dashboards:read", org_id=COUNTY_A["id"])
    listed = await gw.ok("GET", "/v1/api-keys", token=admin)
    assert [k["id"] for k in listed["items"]] == [key["id"]]
    assert "secret" not in listed["items"][0]
    async with app.state.runtime.db.sessions() as session:
        stored = await session.scalar(select(ApiKey))
    assert stored is not None and key["secret"] not in (stored.secret_hash, stored.prefix)
    assert len(stored.secret_hash) == 64


async def test_a_revoked_key_is_refused_at_once(gw: Gateway, app: FastAPI) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    key = await new_key(gw, county_a, "members:read_masked")
    headers = {"X-API-Key": key["secret"]}
    async with probe(app) as service:
        assert (await service.get("/members", headers=headers)).status_code == 200  # now cached
        revoked = await gw.ok("POST", f"/v1/api-keys/{key['id']}/revoke", token=county_a)
        assert revoked["revoked_at"] and revoked["revoked_by"]
        again = await service.get("/members", headers=headers)
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_api_key"
    # Revoking twice changes nothing; the list tells usable from revoked keys.
    twice = await gw.ok("POST", f"/v1/api-keys/{key['id']}/revoke", token=county_a)
    assert twice["revoked_at"] == revoked["revoked_at"]
    gone = await gw.ok("GET", "/v1/api-keys", token=county_a, params={"revoked": True})
    assert [k["id"] for k in gone["items"]] == [key["id"]]
    assert (await gw.ok("GET", "/v1/api-keys", token=county_a, params={"revoked": False}))[
        "items"
    ] == []
    await gw.error("GET", "/v1/accounts", 401, "invalid_api_key", headers={"X-API-Key": "ghk_x"})


async def test_county_admins_manage_keys_of_their_county_only(gw: Gateway) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    chair = await gw.staff(admin, "chair", "org_chair", VILLAGE_A)
    b_key = await new_key(gw, admin, "dashboards:read", org_id=COUNTY_B["id"])
    body = {"name": "x", "scopes": ["dashboards:read"]}
    await gw.error(
        "POST",
        "/v1/api-keys",
        403,
        "out_of_scope",
        token=county_a,
        json=body | {"org_id": COUNTY_B["id"]},
    )
    await gw.error("POST", "/v1/api-keys", 403, "forbidden", token=chair, json=body)
    await gw.error(
        "POST", f"/v1/api-keys/{b_key['id']}/revoke", 403, "out_of_scope", token=county_a
    )
    assert (await gw.ok("GET", "/v1/api-keys", token=county_a))["items"] == []
    await gw.error(
        "POST", "/v1/api-keys", 422, "validation_error", token=county_a, json=body | {"scopes": []}
    )
    await gw.error(
        "POST",
        "/v1/api-keys",
        422,
        "validation_error",
        token=county_a,
        json=body | {"scopes": ["members:read_personal"]},
    )
    await gw.error("POST", "/v1/api-keys", 422, "org_required", token=admin, json=body)


async def test_a_bearer_token_and_an_api_key_together_are_refused(gw: Gateway) -> None:
    admin = await gw.admin()
    key = await new_key(gw, admin, "dashboards:read", org_id=COUNTY_A["id"])
    await gw.error(
        "GET",
        "/v1/accounts",
        401,
        "ambiguous_credentials",
        token=admin,
        headers={"X-API-Key": key["secret"]},
    )


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"x-api-key", b"")],
        [(b"x-api-key", b"gk_one")],
        [(b"x-api-key", b"gk_one"), (b"x-api-key", b"gk_two")],
        [(b"authorization", b"Bearer t"), (b"x-api-key", b"gk_one")],
    ],
)
async def test_the_quick_api_key_read_is_fastapis(headers: list[tuple[bytes, bytes]]) -> None:
    """`caller_of` reads the key without FastAPI's dependency; it must read what it reads."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers})
    assert _api_key_of(request) == await _api_key(request)
