"""Every role, inside and outside its scope, against the membership endpoints.

The expected answer comes from the permission table itself: a role that holds
the action, acting inside its org subtree (or, for a member, on their own
membership), is let through; anyone else gets 403. "Let through" means
anything but 401/403: a business rule may still say no (409, 422).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gonghui_shared.permissions import Action, Role
from gonghui_shared.testing.scope import AUDIT_CASE, Case, check_matrix
from membership.testing import Api, applicant


@dataclass
class World:
    inside: dict[str, Any]  # ids in county A, where the principals live
    outside: dict[str, Any]  # the same kinds of ids in county B
    principals: dict[Role, dict[str, str]]


async def build_world(api: Api) -> World:
    ids: list[dict[str, Any]] = []
    for code, name in (("530921", "凤庆县总工会"), ("530922", "云县总工会")):
        county = await api.county(f"{code}000000", name)
        township = await api.child(county, "township_union", f"{name}一镇工会", f"{code}101000")
        village = await api.child(township, "village_union", f"{name}一村工会", f"{code}101201")
        roster = await api.roster(village)
        member_no = (await api.approve(county, await api.apply(village, roster)))["member"][
            "member_no"
        ]
        pending = await api.apply(village, roster)
        ids.append(
            {
                "county": county,
                "village": village,
                "member_no": member_no,
                "application": pending,
                "roster": roster,
            }
        )
    a = ids[0]
    principals = {
        Role.platform_admin: api.headers(Role.platform_admin),
        Role.county_admin: api.headers(Role.county_admin, a["county"]),
        Role.org_chair: api.headers(Role.org_chair, a["village"]),
        Role.station_operator: api.headers(Role.station_operator, a["village"]),
        Role.member: api.headers(Role.member, member_no=a["member_no"]),
        Role.gov_system: api.headers(Role.gov_system, a["county"]),
    }
    return World(inside=ids[0], outside=ids[1], principals=principals)


CASES = [
    Case("read org", Action.orgs_read, lambda w: ("GET", f"/v1/orgs/{w['village']['id']}", None)),
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
    Case(
        "list members",
        Action.members_read,
        lambda w: ("GET", f"/v1/members?org_id={w['village']['id']}", None),
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
        "submit application",
        Action.applications_submit,
        lambda w: ("POST", "/v1/applications", applicant() | {"org_id": w["village"]["id"]}),
    ),
    Case(
        "read application",
        Action.applications_read,
        lambda w: ("GET", f"/v1/applications/{w['application']['id']}", None),
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
        "export roster",
        Action.rosters_export,
        lambda w: ("GET", f"/v1/rosters/export?org_id={w['village']['id']}&format=csv", None),
    ),
    Case(
        "update org",
        Action.orgs_write,
        lambda w: ("PATCH", f"/v1/orgs/{w['village']['id']}", {"chair_name": "杨定忠"}),
    ),
    Case(
        "lookup by phone",
        Action.members_lookup,
        lambda w: ("POST", "/v1/members/lookup", {"phone": "13800138000"}),
        scoped=False,
    ),
    AUDIT_CASE,
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_role_inside_and_outside_its_scope(api: Api, role: Role) -> None:
    world = await build_world(api)
    headers = world.principals[role]
    inside, outside = world.inside, world.outside
    assert await check_matrix(api.client, role, headers, CASES, inside, outside) == []
