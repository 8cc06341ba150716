"""Every role, inside and outside its scope, against every membership endpoint.

The expected answer comes from the permission table itself: a role that holds
the action, acting inside its org subtree (or, for a member, on their own
membership), is let through; anyone else gets 403. Let through inside its
scope, a call must also succeed, so a wrong id or an invalid body cannot pass
for "allowed".

Each test builds its own world, and every case runs once in each county of it,
so a write that uses something up (approving an application, ending a
membership, deciding a transfer) gets a resource of its own there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gonghui_shared.clock import today_in_china
from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.scope import (
    AUDIT_CASE,
    Case,
    check_matrix,
    uncovered_routes,
)
from membership.rosters.template import write_roster_csv
from membership.testing import Api, applicant
from membership.units.statistical_codes import COUNTY, TOWNSHIP, VILLAGE, UnitRow, write_units_csv

DOC_NO = "凤工复〔2026〕12号"


@dataclass
class World:
    inside: dict[str, Any]  # ids in county A, where the principals live
    outside: dict[str, Any]  # the same kinds of ids in county B
    principals: dict[Role, dict[str, str]]


def units_file(county: str, name: str) -> bytes:
    """The county's own units: the codes its orgs below sit on."""
    return write_units_csv(
        [
            UnitRow(f"{county}000000", name, COUNTY, None),
            UnitRow(f"{county}101000", f"{name}一镇", TOWNSHIP, f"{county}000000"),
            UnitRow(f"{county}101201", f"{name}一村", VILLAGE, f"{county}101000"),
            UnitRow(f"{county}101202", f"{name}二村", VILLAGE, f"{county}101000"),
        ]
    )


def roster_file(people: int = 2) -> dict[str, Any]:
    """A valid roster upload of people never seen before (a fresh file on every call)."""
    rows = []
    for _ in range(people):
        person = applicant()
        rows.append(
            {
                "name": person["name"],
                "id_number": person["id_number"],
                "phone": person["phone"],
                "household_type": "农村",
                "category": "农民工",
                "employer": person["employer"],
                "form_ref": person["form_ref"],
            }
        )
    out = io.StringIO(newline="")
    write_roster_csv(rows, out)
    return {"file": ("花名册.csv", out.getvalue().encode("utf-8"), "text/csv")}


async def admit(api: Api, county: dict[str, Any], org: dict[str, Any], people: int) -> list[str]:
    """Admit `people` new members of `org` on one roster; their member numbers."""
    roster = await api.roster(org)
    for _ in range(people):
        await api.apply(org, roster)
    approved = await api.ok(
        "POST",
        f"/v1/rosters/{roster['id']}/approve",
        as_=api.headers(Role.county_admin, county),
        json={"approval_doc_no": DOC_NO},
    )
    member_nos: list[str] = approved["member_nos"]
    assert len(member_nos) == people
    return member_nos


async def county_ids(api: Api, code: str, name: str) -> dict[str, Any]:
    """One county's ids: its tree, and a resource of its own for every consuming case."""
    await api.ok(
        "POST", "/v1/units/import", files={"file": ("u.csv", units_file(code, name), "text/csv")}
    )
    county = await api.county(f"{code}000000", name)
    township = await api.child(county, "township_union", f"{name}一镇工会", f"{code}101000")
    village = await api.child(township, "village_union", f"{name}一村工会", f"{code}101201")
    other_village = await api.child(township, "village_union", f"{name}二村工会", f"{code}101202")

    roster = await api.roster(village)
    member_no = (await api.approve(county, await api.apply(village, roster)))["member"]["member_no"]
    pending = await api.apply(village, roster)
    to_approve = await api.apply(village, roster)
    submitted = await api.apply(village)  # not on a roster yet
    roster_to_approve = await api.roster(village, "2026年第二批入会名册")
    await api.apply(village, roster_to_approve)
    withdrawing, lapsing, expelled = await admit(api, county, village, 3)

    # Members of the other village asking to move into this one: the village decides.
    transfers = []
    for moving in await admit(api, county, other_village, 2):
        transfer = await api.ok(
            "POST",
            f"/v1/members/{moving}/transfer",
            expect=201,
            json={"to_org_id": village["id"], "reason": "到本村务工"},
        )
        transfers.append(transfer["id"])
    cadre = await api.ok(
        "POST",
        f"/v1/orgs/{village['id']}/cadres",
        expect=201,
        json={"member_no": member_no, "role": "chair", "appointed_on": "2025-01-01"},
    )
    return {
        "county": county,
        "village": village,
        "other_village": other_village,
        "units_file": units_file(code, name),
        "member_no": member_no,
        "application": pending,
        "application_to_approve": to_approve,
        "submitted_application": submitted,
        "roster": roster,
        "roster_to_approve": roster_to_approve,
        "withdrawing": withdrawing,
        "lapsing": lapsing,
        "expelled": expelled,
        "transfer_to_accept": transfers[0],
        "transfer_to_decline": transfers[1],
        "cadre": cadre["id"],
    }


async def build_world(api: Api) -> World:
    a = await county_ids(api, "530921", "凤庆县总工会")
    b = await county_ids(api, "530922", "云县总工会")
    principals = {
        Role.platform_admin: api.headers(Role.platform_admin),
        Role.county_admin: api.headers(Role.county_admin, a["county"]),
        Role.org_chair: api.headers(Role.org_chair, a["village"]),
        Role.station_operator: api.headers(Role.station_operator, a["village"]),
        Role.member: api.headers(Role.member, member_no=a["member_no"]),
        Role.gov_system: api.headers(Role.gov_system, a["county"]),
    }
    return World(inside=a, outside=b, principals=principals)


def _end_membership(how: str, key: str, reason: str) -> Case:
    return Case(
        f"{how} member",
        Action.members_end,
        lambda w: ("POST", f"/v1/members/{w[key]}/{how}", {"reason": reason}),
    )


ORG_CASES = [
    Case(
        "list orgs",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/orgs?within={w['village']['id']}", None),
    ),
    Case(
        "set up an org",
        Action.orgs_write,
        lambda w: (
            "POST",
            "/v1/orgs",
            {
                "parent_id": w["village"]["id"],
                "org_type": "enterprise_union",
                "name": f"{w['village']['name']}茶厂工会",
                "region_code": w["village"]["region_code"],
            },
        ),
    ),
    Case("read org", Action.orgs_read, lambda w: ("GET", f"/v1/orgs/{w['village']['id']}", None)),
    Case(
        "update org",
        Action.orgs_write,
        lambda w: ("PATCH", f"/v1/orgs/{w['village']['id']}", {"chair_name": "杨定忠"}),
    ),
    Case(
        "children",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/orgs/{w['village']['id']}/children", None),
    ),
    Case(
        "coverage",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/orgs/{w['village']['id']}/coverage", None),
    ),
    # A county imports only its own codes: the other county's file is out of its scope.
    Case(
        "import units",
        Action.units_write,
        lambda w: ("POST", "/v1/units/import", None),
        files=lambda w: {"file": ("units.csv", w["units_file"], "text/csv")},
    ),
    Case(
        "list units",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/units?parent_code={w['county']['region_code']}", None),
        scoped=False,
    ),
    Case(
        "read unit",
        Action.orgs_read,
        lambda w: ("GET", f"/v1/units/{w['village']['region_code']}", None),
        scoped=False,
    ),
]

# Any union, in any county, takes a person's own application. The member principal of the
# matrix already has a number, so once let through it is told so (409): the one case that
# cannot succeed, and so the one not held to `strict`.
APPLY_FOR_ONESELF = Case(
    "apply for oneself",
    Action.applications_apply_self,
    lambda w: (
        "POST",
        "/v1/applications/self",
        {k: v for k, v in applicant().items() if k != "form_ref"} | {"org_id": w["village"]["id"]},
    ),
    member_action=Action.applications_apply_self,
    scoped=False,
    members_only=True,
)

ADMISSION_CASES = [
    Case(
        "start roster",
        Action.applications_submit,
        lambda w: ("POST", "/v1/rosters", {"org_id": w["village"]["id"], "title": "补报名册"}),
    ),
    Case(
        "list rosters",
        Action.applications_read,
        lambda w: ("GET", f"/v1/rosters?org_id={w['village']['id']}", None),
    ),
    Case(
        "read roster",
        Action.applications_read,
        lambda w: ("GET", f"/v1/rosters/{w['roster']['id']}", None),
    ),
    Case(
        "put on roster",
        Action.applications_submit,
        lambda w: (
            "POST",
            f"/v1/rosters/{w['roster']['id']}/applications",
            {"application_ids": [w["submitted_application"]["id"]]},
        ),
    ),
    Case(
        "approve roster",
        Action.applications_decide,
        lambda w: (
            "POST",
            f"/v1/rosters/{w['roster_to_approve']['id']}/approve",
            {"approval_doc_no": DOC_NO},
        ),
    ),
    Case(
        "approve roster in batches",
        Action.applications_decide,
        lambda w: (
            "POST",
            f"/v1/rosters/{w['roster_to_approve']['id']}/approve-in-batches",
            {"approval_doc_no": DOC_NO},
        ),
    ),
    Case(
        "submit application",
        Action.applications_submit,
        lambda w: ("POST", "/v1/applications", applicant() | {"org_id": w["village"]["id"]}),
    ),
    APPLY_FOR_ONESELF,
    Case(
        "list applications",
        Action.applications_read,
        lambda w: ("GET", f"/v1/applications?org_id={w['village']['id']}", None),
    ),
    Case(
        "read application",
        Action.applications_read,
        lambda w: ("GET", f"/v1/applications/{w['application']['id']}", None),
    ),
    Case(
        "approve application",
        Action.applications_decide,
        lambda w: (
            "POST",
            f"/v1/applications/{w['application_to_approve']['id']}/approve",
            {"approval_doc_no": DOC_NO},
        ),
    ),
    Case(
        "reject application",
        Action.applications_decide,
        lambda w: (
            "POST",
            f"/v1/applications/{w['application']['id']}/reject",
            {"reason": "材料不全"},
        ),
    ),
]

MEMBER_CASES = [
    Case(
        "list members",
        Action.members_read,
        lambda w: ("GET", f"/v1/members?org_id={w['village']['id']}", None),
    ),
    Case(
        "lookup by phone",
        Action.members_lookup,
        lambda w: ("POST", "/v1/members/lookup", {"phone": "13800138000"}),
        scoped=False,
    ),
    Case(
        "read member",
        Action.members_read,
        lambda w: ("GET", f"/v1/members/{w['member_no']}", None),
        member_action=Action.members_read,
    ),
    Case(
        "member history",
        Action.members_read,
        lambda w: ("GET", f"/v1/members/{w['member_no']}/history", None),
        member_action=Action.members_read,
    ),
    Case(
        "member card",
        Action.cards_read,
        lambda w: ("GET", f"/v1/members/{w['member_no']}/card", None),
        member_action=Action.cards_read,
    ),
    Case(
        "request transfer",
        Action.members_transfer,
        lambda w: (
            "POST",
            f"/v1/members/{w['member_no']}/transfer",
            {"to_org_id": w["other_village"]["id"], "reason": "到邻村务工"},
        ),
        member_action=Action.members_transfer,
    ),
    # Lists the transfers into the caller's own subtree: nothing to be outside of.
    Case(
        "list transfers",
        Action.members_transfer,
        lambda w: ("GET", "/v1/transfers?direction=incoming", None),
        scoped=False,
    ),
    Case(
        "accept transfer",
        Action.members_transfer,
        lambda w: ("POST", f"/v1/transfers/{w['transfer_to_accept']}/accept", None),
    ),
    Case(
        "decline transfer",
        Action.members_transfer,
        lambda w: (
            "POST",
            f"/v1/transfers/{w['transfer_to_decline']}/decline",
            {"reason": "本单位无此人员"},
        ),
    ),
    _end_membership("withdraw", "withdrawing", "本人申请退会"),
    _end_membership("lapse", "lapsing", "连续六个月未缴纳会费"),
    _end_membership("expel", "expelled", "严重违反工会章程"),
]

CADRE_CASES = [
    Case(
        "list cadres",
        Action.cadres_read,
        lambda w: ("GET", f"/v1/cadres?org_id={w['village']['id']}", None),
    ),
    Case(
        "appoint cadre",
        Action.cadres_write,
        lambda w: (
            "POST",
            f"/v1/orgs/{w['village']['id']}/cadres",
            {"member_no": w["member_no"], "role": "committee_member", "appointed_on": "2026-01-01"},
        ),
    ),
    Case(
        "end cadre",
        Action.cadres_write,
        lambda w: (
            "POST",
            f"/v1/cadres/{w['cadre']}/end",
            {"ended_on": today_in_china().isoformat(), "reason": "换届选举，不再连任"},
        ),
    ),
]

# Template downloads are not about any org: whoever may import or export rosters may
# have them (the two actions go to the same roles).
ROSTER_FILE_CASES = [
    Case(
        "roster template",
        Action.rosters_export,
        lambda w: ("GET", "/v1/rosters/template", None),
        scoped=False,
    ),
    Case(
        "roster template (xlsx)",
        Action.rosters_export,
        lambda w: ("GET", "/v1/rosters/template.xlsx", None),
        scoped=False,
    ),
    Case(
        "roster template (csv)",
        Action.rosters_export,
        lambda w: ("GET", "/v1/rosters/template.csv", None),
        scoped=False,
    ),
    Case(
        "import roster (dry run)",
        Action.rosters_import,
        lambda w: ("POST", f"/v1/rosters/import?org_id={w['village']['id']}&dry_run=true", None),
        files=lambda w: roster_file(),
    ),
    Case(
        "import roster",
        Action.rosters_import,
        lambda w: ("POST", f"/v1/rosters/import?org_id={w['village']['id']}", None),
        files=lambda w: roster_file(),
    ),
    Case(
        "export roster",
        Action.rosters_export,
        lambda w: ("GET", f"/v1/rosters/export?org_id={w['village']['id']}&format=csv", None),
    ),
]

CASES = ORG_CASES + ADMISSION_CASES + MEMBER_CASES + CADRE_CASES + ROSTER_FILE_CASES + [AUDIT_CASE]

# Routes with no role check by design, and why.
EXEMPT = {
    "GET /healthz": "liveness probe: says only that the process serves HTTP",
    "GET /readyz": "readiness probe for the orchestrator: database and NATS up or not",
    "GET /metrics": "Prometheus scrape, kept off the public ingress",
    "GET /openapi.json": "the API description, the same for everyone",
    "GET /docs": "the API description, the same for everyone",
    "GET /docs/oauth2-redirect": "part of the interactive API docs",
    "GET /redoc": "the API description, the same for everyone",
    "GET /v1/cards/public-key": "the county seal's public key: stations verify cards offline",
    "POST /v1/cards/verify": "anyone shown a card may check it; the signed token is the proof",
}


# Lists that take no org: each shows only the caller's own scope, whatever is asked.
UNFILTERED_LISTS = [
    "/v1/orgs",
    "/v1/members",
    "/v1/applications",
    "/v1/rosters",
    "/v1/cadres",
    "/v1/transfers?direction=incoming",
    "/v1/transfers?direction=outgoing",
    "/v1/audit",
]


def outside_ids(outside: dict[str, Any]) -> set[str]:
    """Ids that only the other county's data contains."""
    return {
        outside["county"]["id"],
        outside["village"]["id"],
        outside["other_village"]["id"],
        outside["member_no"],
        outside["application"]["id"],
        outside["roster"]["id"],
        outside["transfer_to_accept"],
        outside["cadre"],
    }


async def outside_data_listed(api: Api, headers: dict[str, str], world: World) -> list[str]:
    """The unfiltered lists that show something of the other county."""
    leaks = []
    foreign = outside_ids(world.outside)
    for url in UNFILTERED_LISTS:
        separator = "&" if "?" in url else "?"
        response = await api.client.get(f"{url}{separator}limit=500", headers=headers)
        if response.status_code == 200 and any(i in response.text for i in foreign):
            leaks.append(url)
    return leaks


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(api: Api, role: Role) -> None:
    world = await build_world(api)
    invalid: list[str] = []

    async def note_invalid_request(response: httpx.Response) -> None:
        # `strict` looks only inside; outside, a request the schema refuses would pass for
        # "let through", so every call of every case must be valid.
        if response.status_code == 422:
            await response.aread()
            error = response.json()["error"]
            if error["code"] == "validation_error":
                request = response.request
                invalid.append(f"{request.method} {request.url.path}: {error['message']}")

    headers = world.principals[role]
    if role is not Role.platform_admin:
        # Before the matrix: its refused attempts on the other county become the caller's
        # own audit rows, which its county rightly sees.
        assert await outside_data_listed(api, headers, world) == []
    api.client.event_hooks["response"].append(note_invalid_request)
    inside, outside = world.inside, world.outside
    succeeding = [case for case in CASES if case is not APPLY_FOR_ONESELF]
    assert (
        await check_matrix(api.client, role, headers, succeeding, inside, outside, strict=True)
        == []
    )
    assert await check_matrix(api.client, role, headers, [APPLY_FOR_ONESELF], inside, outside) == []
    assert invalid == []


async def test_the_matrix_reaches_every_endpoint(api: Api, app: FastAPI) -> None:
    world = await build_world(api)
    assert uncovered_routes(app, CASES, world.inside, EXEMPT) == []
