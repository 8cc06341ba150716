"""Every role, inside and outside its scope, against every gateway endpoint.

The expected answer comes from the permission table: a role holding the action, acting
inside its org subtree, is let through ("let through" is anything but 401/403: a
business rule may still say no); anyone else gets 403. The gateway's own endpoints
(accounts, API keys, dashboards, audit) are checked by the gateway; its routes to the
services go through it into real membership, training and stations, which check the
same table themselves (the gateway only requires a caller). The `/v1/me` endpoints are
for members alone, whatever else a role may do. `EXEMPT` says why the rest have no
role-based check, and `test_the_matrix_reaches_every_endpoint` keeps that list honest.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.base import inbox, utcnow
from gateway.config import GatewaySettings
from gateway.dashboards.models import DashOrg
from gateway.routing.testing import services_at
from gonghui_shared.bus.consumer import ConsumerTables
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.scope import (
    AUDIT_CASE,
    Case,
    check_matrix,
    expected_allowed,
    uncovered_routes,
)
from membership.testing import Api as MembershipApi
from membership.testing import applicant
from stations.replicas.models import OrgReplica as StationsOrg
from stations.testing import Api as StationsApi
from stations.testing import open_station
from training.replicas.models import MemberReplica as TrainingMember
from training.replicas.models import OrgReplica as TrainingOrg
from training.testing import Api as TrainingApi
from training.testing import valid_id_number

MakeTree = Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]


def _account_body(w: dict[str, Any]) -> dict[str, Any]:
    name = f"chair_{uuid.uuid4().hex[:10]}"
    return {"username": name, "password": f"{name}-password", "role": "org_chair"} | {
        "org_id": w["village"]
    }


def _key_body(w: dict[str, Any]) -> dict[str, Any]:
    return {"name": "县人社局数据共享平台", "scopes": ["dashboards:read"], "org_id": w["county"]}


CASES = [
    # -- accounts and API keys (the gateway's own)
    Case(
        "create account",
        Action.accounts_write,
        lambda w: ("POST", "/v1/accounts", _account_body(w)),
    ),
    Case(
        "list accounts",
        Action.accounts_write,
        lambda w: ("GET", "/v1/accounts", None),
        scoped=False,
    ),
    Case(
        "change account",
        Action.accounts_write,
        lambda w: ("PATCH", f"/v1/accounts/{w['account']}", {"active": True}),
    ),
    Case("create API key", Action.api_keys_write, lambda w: ("POST", "/v1/api-keys", _key_body(w))),
    Case(
        "list API keys",
        Action.api_keys_write,
        lambda w: ("GET", "/v1/api-keys", None),
        scoped=False,
    ),
    Case(
        "revoke API key",
        Action.api_keys_write,
        lambda w: ("POST", f"/v1/api-keys/{w['api_key']}/revoke", None),
    ),
    # -- dashboards (the gateway's read models)
    Case(
        "dashboard overview",
        Action.dashboards_read,
        lambda w: ("GET", f"/v1/dashboard/overview?org_id={w['village']}", None),
    ),
    Case(
        "dashboard children",
        Action.dashboards_read,
        lambda w: ("GET", f"/v1/dashboard/children?org_id={w['village']}", None),
    ),
    Case(
        "dashboard timeseries",
        Action.dashboards_read,
        lambda w: (
            "GET",
            f"/v1/dashboard/timeseries?org_id={w['village']}&metric=new_members",
            None,
        ),
    ),
    Case(
        "dashboard map",
        Action.dashboards_read,
        lambda w: ("GET", f"/v1/dashboard/map?org_id={w['village']}", None),
    ),
    # -- the gateway's audit log and dead letters (its dashboards' consumers)
    AUDIT_CASE,
    Case(
        "list dead letters",
        Action.bus_admin,
        lambda w: ("GET", "/v1/dead-letters?limit=5", None),
        scoped=False,
    ),
    Case(
        "replay dead letter",  # its consumer is not running here: 409, past the checks
        Action.bus_admin,
        lambda w: ("POST", f"/v1/dead-letters/{w['dead_letter']}/replay", None),
    ),
    # -- through the gateway into the services: each method a service has an endpoint for
    Case(
        "membership: read org",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/membership/orgs/{w['village']}", None),
    ),
    Case(
        "membership: submit application",
        Action.applications_submit,
        lambda w: ("POST", "/v1/membership/applications", applicant() | {"org_id": w["village"]}),
    ),
    Case(
        "membership: update org",
        Action.orgs_write,
        lambda w: ("PATCH", f"/v1/membership/orgs/{w['village']}", {"chair_name": "杨定忠"}),
    ),
    Case(
        "training: summary report",
        Action.reports_read,
        lambda w: ("GET", f"/v1/training/reports/summary?org_id={w['village']}", None),
    ),
    Case(
        "training: create course",
        Action.courses_write,
        lambda w: (
            "POST",
            "/v1/training/courses",
            {
                "owner_org_id": w["village"],
                "title": "茶叶种植管理",
                "category": "planting_breeding",
                "hours": 16,
            },
        ),
    ),
    Case(
        "training: change course",
        Action.courses_write,
        lambda w: ("PATCH", f"/v1/training/courses/{w['course']}", {"hours": 20}),
    ),
    Case(
        "training: score an entry",
        Action.competitions_write,
        lambda w: (
            "PUT",
            f"/v1/training/competition-entries/{w['entry']}/score",
            {"score": "88.50"},
        ),
    ),
    Case(
        "stations: coverage",
        Action.stations_read,
        lambda w: ("GET", f"/v1/stations/coverage?org_id={w['village']}", None),
    ),
    Case(
        "stations: record visit",
        Action.visits_write,
        lambda w: (
            "POST",
            f"/v1/stations/stations/{w['station']}/visits",
            {"services": ["drinking_water"]},
        ),
    ),
    Case(
        "stations: update station",
        Action.stations_write,
        lambda w: ("PATCH", f"/v1/stations/stations/{w['station']}", {"contact_name": "李站长"}),
    ),
]


def _apply_body(w: dict[str, Any]) -> dict[str, Any]:
    body = applicant() | {"org_id": w["village"]}
    del body["form_ref"]
    return body


# The mobile self-service endpoints: a member (or applicant) for themself, nobody else. The
# action is what the member needs of the service behind; `scoped=False`: there is no target.
ME_CASES = [
    Case(
        "my membership",
        Action.members_read,
        lambda w: ("GET", "/v1/me", None),
        member_action=Action.members_read,
        scoped=False,
    ),
    Case(
        "my card",
        Action.cards_read,
        lambda w: ("GET", "/v1/me/card", None),
        member_action=Action.cards_read,
        scoped=False,
    ),
    Case(
        "my card as QR",
        Action.cards_read,
        lambda w: ("GET", "/v1/me/card.png", None),
        member_action=Action.cards_read,
        scoped=False,
    ),
    Case(
        "my trainings",
        Action.sessions_read,
        lambda w: ("GET", "/v1/me/trainings", None),
        member_action=Action.sessions_read,
        scoped=False,
    ),
    Case(
        "stations near me",
        Action.stations_read,
        lambda w: ("GET", "/v1/me/stations/nearby?lon=99.93&lat=24.58", None),
        member_action=Action.stations_read,
        scoped=False,
    ),
    Case(
        "apply to join",  # a member already: 409, past the role check
        Action.applications_apply_self,
        lambda w: ("POST", "/v1/me/apply", _apply_body(w)),
        member_action=Action.applications_apply_self,
        scoped=False,
    ),
]

_NO_ENDPOINT = (
    "no {service} endpoint takes {method}: the gateway forwards any caller's call (an "
    "anonymous one gets its 401, routing/test_proxy) and the service answers 405"
)
_PUBLIC = "public: {what}, no login (routing.service.PUBLIC_ROUTES)"

EXEMPT = {
    "GET /healthz": "liveness probe, no data",
    "GET /readyz": "readiness probe, no data",
    "POST /v1/auth/token": "signing in: the password or refresh token is the credential",
    "POST /v1/auth/otp": "asks for a login code: public, answers the same for any phone",
    "POST /v1/auth/otp/verify": "signing in: the one-time code is the credential",
    "POST /v1/auth/revoke": "signs the caller itself out: any valid token, no role or scope",
    "GET /.well-known/jwks.json": "the public key that verifies tokens: public by design",
    "GET /v1/membership/openapi.json": "membership's API document: public",
    "GET /v1/training/openapi.json": "training's API document: public",
    "GET /v1/stations/openapi.json": "stations' API document: public",
    "GET /v1/membership/cards/public-key": _PUBLIC.format(what="the card seal's public key"),
    "POST /v1/membership/cards/verify": _PUBLIC.format(what="a station verifies a member card"),
    "GET /v1/training/certificates/{number}/verify": _PUBLIC.format(
        what="anyone checks a certificate"
    ),
    "GET /v1/stations/amenities": _PUBLIC.format(what="the list of station amenities"),
    "PUT /v1/membership/{path:path}": _NO_ENDPOINT.format(service="membership", method="PUT"),
    "PUT /v1/stations/{path:path}": _NO_ENDPOINT.format(service="stations", method="PUT"),
    "DELETE /v1/membership/{path:path}": _NO_ENDPOINT.format(service="membership", method="DELETE"),
    "DELETE /v1/training/{path:path}": _NO_ENDPOINT.format(service="training", method="DELETE"),
    "DELETE /v1/stations/{path:path}": _NO_ENDPOINT.format(service="stations", method="DELETE"),
}


@dataclass
class World:
    inside: dict[str, Any]  # ids in county A, where the principals live
    outside: dict[str, Any]  # the same kinds of ids in county B
    principals: dict[Role, dict[str, str]]


@pytest.fixture
async def gateway(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: GatewaySettings,
    me_settings: GatewaySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    """The session's gateway (its tables emptied) routed to the real services, and asking the
    real membership where orgs are."""
    monkeypatch.setattr(settings, "password_scrypt_n", 2**10)  # cheap hashes for the world
    monkeypatch.setattr(app.state.accounts.directory, "base_url", me_settings.membership_url)
    async with services_at(app, me_settings):
        yield client


async def _county(
    gateway: httpx.AsyncClient,
    app: FastAPI,
    direct: dict[str, httpx.AsyncClient],
    services: dict[str, Any],
    settings: GatewaySettings,
    tree: MakeTree,
) -> dict[str, Any]:
    """A county of its own in every service, with something of each kind in its village."""
    county, _, village = await tree()
    platform = auth_header(token_for(settings, Role.platform_admin))
    for org in (county, village):
        await _dashboard_org(app, org)
    dead_letter = await _dead_letter(app, village)
    await services["training"].until(TrainingOrg, id=village["id"])
    await services["stations"].until(StationsOrg, id=village["id"])

    training = TrainingApi(direct["training"], settings)
    course = await training.course(village)
    competition = await training.ok(
        "POST",
        "/v1/competitions",
        expect=201,
        json={
            "title": "电焊技能比武",
            "host_org_id": village["id"],
            "starts_on": "2026-05-01",
            "ends_on": "2026-05-02",
        },
    )
    event = await training.ok(
        "POST", f"/v1/competitions/{competition['id']}/events", expect=201, json={"trade": "电焊工"}
    )
    entry = await training.ok(
        "POST",
        f"/v1/competition-events/{event['id']}/entries",
        expect=201,
        json={"name": "杨春花", "id_number": valid_id_number(), "phone": "13800138000"},
    )
    station = await open_station(StationsApi(direct["stations"], settings), village)

    account = await gateway.post(
        "/v1/accounts", json=_account_body({"village": village["id"]}), headers=platform
    )
    assert account.status_code == 201, account.text
    key = await gateway.post(
        "/v1/api-keys", json=_key_body({"county": county["id"]}), headers=platform
    )
    assert key.status_code == 201, key.text
    return {
        "county_org": county,
        "village_org": village,
        "county": county["id"],
        "village": village["id"],
        "course": course["id"],
        "entry": entry["id"],
        "station": station["id"],
        "account": account.json()["id"],
        "api_key": key.json()["id"],
        "dead_letter": dead_letter,
    }


async def _dashboard_org(app: FastAPI, org: dict[str, Any]) -> None:
    """The org in the dashboards' read model, as if membership's event had arrived (the
    gateway's consumers listen on another subject root than these services publish on)."""
    async with app.state.runtime.db.transaction() as session:
        session.add(
            DashOrg(
                id=org["id"],
                parent_id=org.get("parent_id"),
                path=org["path"],
                org_type=org["org_type"],
                name=org["name"],
                region_code=org["region_code"],
                status="active",
                last_event_at=utcnow(),
            )
        )


async def _dead_letter(app: FastAPI, org: dict[str, Any]) -> str:
    """An event about `org` that a consumer gave up on (one no longer running)."""
    dead_letters = ConsumerTables.beside(inbox).dead_letters
    dead_letter_id, now = new_id(), utcnow()
    async with app.state.runtime.db.transaction() as session:
        await session.execute(
            dead_letters.insert().values(
                id=dead_letter_id,
                consumer="gateway__retired_consumer",
                event_id=new_id(),
                event_type="membership.org.updated",
                aggregate_id=org["id"],
                org_path=org["path"],
                subject="gonghui.membership.org.updated.v1",
                payload="{}",
                error="handler failed",
                attempts=5,
                first_failed_at=now,
                last_failed_at=now,
            )
        )
    return dead_letter_id


async def build_world(
    gateway: httpx.AsyncClient,
    app: FastAPI,
    direct: dict[str, httpx.AsyncClient],
    services: dict[str, Any],
    settings: GatewaySettings,
    tree: MakeTree,
) -> World:
    inside = await _county(gateway, app, direct, services, settings, tree)
    outside = await _county(gateway, app, direct, services, settings, tree)
    membership = MembershipApi(direct["membership"], settings)
    admitted = await membership.member(inside["county_org"], inside["village_org"])
    member_no = admitted["member"]["member_no"]
    await services["training"].until(TrainingMember, member_no=member_no)

    def headers(role: Role, org: dict[str, Any] | None = None, **claims: Any) -> dict[str, str]:
        scope = {"org_id": org["id"], "org_path": org["path"]} if org else {}
        return auth_header(token_for(settings, role, **scope, **claims))

    county, village = inside["county_org"], inside["village_org"]
    principals = {
        Role.platform_admin: headers(Role.platform_admin),
        Role.county_admin: headers(Role.county_admin, county),
        Role.org_chair: headers(Role.org_chair, village),
        Role.station_operator: headers(Role.station_operator, village),
        Role.member: headers(Role.member, member_no=member_no, subject=f"phone:{member_no}"),
        Role.gov_system: headers(Role.gov_system, county),
    }
    return World(inside=inside, outside=outside, principals=principals)


async def members_only(
    client: httpx.AsyncClient,
    role: Role,
    headers: dict[str, str],
    cases: list[Case],
    world: dict[str, Any],
) -> list[tuple[str, int, str]]:
    """Run the `/v1/me` cases; a member is let through as the table says, anyone else not."""
    mismatches = []
    for case in cases:
        method, url, body = case.call(world)
        response = await client.request(method, url, headers=headers, json=body)
        assert response.status_code < 500, f"{case.name}: {response.text}"
        allowed = response.status_code not in (401, 403)
        expected = role is Role.member and expected_allowed(case, role, inside=True)
        if allowed != expected:
            mismatches.append((case.name, response.status_code, response.text[:160]))
    return mismatches


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(
    gateway: httpx.AsyncClient,
    app: FastAPI,
    direct: dict[str, httpx.AsyncClient],
    services: dict[str, Any],
    me_settings: GatewaySettings,
    tree: MakeTree,
    role: Role,
) -> None:
    world = await build_world(gateway, app, direct, services, me_settings, tree)
    headers = world.principals[role]
    assert await check_matrix(gateway, role, headers, CASES, world.inside, world.outside) == []
    assert await members_only(gateway, role, headers, ME_CASES, world.inside) == []


def test_the_matrix_reaches_every_endpoint(app: FastAPI) -> None:
    world = {
        key: f"{key}-id"
        for key in (
            "county",
            "village",
            "course",
            "entry",
            "station",
            "account",
            "api_key",
            "dead_letter",
        )
    }
    assert uncovered_routes(app, CASES + ME_CASES, world, EXEMPT) == []
