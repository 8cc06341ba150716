"""Scope matrices: every role, inside and outside its subtree, against a service's endpoints.

A service's test lists its endpoints as `Case`s (which action each needs, and
how to call it on a "world" of ids); `check_matrix` calls every case as a role,
once on ids inside the role's scope and once on ids of another county, and
returns what disagreed with the permission table. "Allowed" means anything but
401/403: a business rule may still say no (404, 409, 422).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gonghui_shared.permissions import PERMISSIONS, Action, Role

Call = Callable[[dict[str, Any]], tuple[str, str, Any]]
Files = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    action: Action | tuple[Action, ...]  # a tuple: staff holding any one of them may
    call: Call  # world -> (method, url, json body or None)
    member_action: Action | None = None  # what a member needs to do this for itself
    scoped: bool = True  # False: any holder of the action may, wherever the target is
    files: Files | None = None  # world -> multipart files (httpx `files=`), for uploads
    # The member's own door (applying or checking in for oneself): staff roles that hold
    # the action through "everything" are still turned away and use the staff endpoint.
    members_only: bool = False
    # None: as `scoped`. False: what a member gets is filtered to its own (its org and those
    # above it), so asking about another county answers 200 with nothing in it.
    member_scoped: bool | None = None


def expected_allowed(case: Case, role: Role, inside: bool) -> bool:
    if case.members_only and role is not Role.member:
        return False
    if role is Role.member:
        # The member principal is a member of the "inside" world, acting for itself.
        allowed = case.member_action is not None and case.member_action in PERMISSIONS[role]
        scoped = case.scoped if case.member_scoped is None else case.member_scoped
        return allowed and (inside or not scoped)
    actions = case.action if isinstance(case.action, tuple) else (case.action,)
    if not any(action in PERMISSIONS[role] for action in actions):
        return False
    return role is Role.platform_admin or inside or not case.scoped


async def check_matrix(
    client: httpx.AsyncClient,
    role: Role,
    headers: dict[str, str],
    cases: list[Case],
    inside: dict[str, Any],
    outside: dict[str, Any],
    *,
    strict: bool = False,
) -> list[tuple[str, str, int, str]]:
    """Run every case inside and outside; return the mismatches (empty when all agree).

    `strict`: a call allowed inside must also succeed (2xx), so that a wrong id (404) or an
    invalid body (422) cannot pass for "allowed"; the world then has to hold what each case
    needs, and fresh resources for the cases that use one up.
    """
    mismatches = []
    for case in cases:
        for is_inside, world in ((True, inside), (False, outside)):
            method, url, body = case.call(world)
            files = case.files(world) if case.files is not None else None
            response = await client.request(method, url, headers=headers, json=body, files=files)
            assert response.status_code < 500, f"{case.name}: {response.text}"
            allowed = response.status_code not in (401, 403)
            if not allowed:
                assert response.json()["error"]["code"] in ("forbidden", "out_of_scope")
            expected = expected_allowed(case, role, is_inside)
            if allowed != expected:
                where = "inside" if is_inside else "outside"
                mismatches.append((case.name, where, response.status_code, response.text[:160]))
            elif strict and expected and is_inside and not response.is_success:
                failed = "inside: allowed, but failed"
                mismatches.append((case.name, failed, response.status_code, response.text[:160]))
    return mismatches


# Every service with an audit log has this endpoint: the admins read it, whatever the world;
# what they see is limited to their scope by filtering (tested with the audit log itself).
AUDIT_CASE = Case(
    "audit log", Action.audit_read, lambda w: ("GET", "/v1/audit?limit=5", None), scoped=False
)

# Every service that consumes events has these: holders of bus.admin list the dead letters
# (filtered to their scope, as the audit log is) and replay one of their subtree. The world
# names a stored dead letter (`MembershipFeed.dead_letter`) as "dead_letter".
DEAD_LETTER_CASES = [
    Case(
        "dead letters",
        Action.bus_admin,
        lambda w: ("GET", "/v1/dead-letters?limit=5", None),
        scoped=False,
    ),
    Case(
        "replay a dead letter",
        Action.bus_admin,
        lambda w: ("POST", f"/v1/dead-letters/{w['dead_letter']}/replay", None),
    ),
]


def count_cases(cases: list[Case]) -> int:
    """(role, endpoint, scope) combinations a matrix runs per database."""
    return len(cases) * 2 * len(Role)


def uncovered_routes(
    app: Any, cases: list[Case], world: dict[str, Any], exempt: dict[str, str]
) -> list[str]:
    """Every `METHOD /path` of the app that no case calls and `exempt` does not excuse.

    A matrix is only a proof if it reaches every endpoint: this turns "someone added an
    endpoint and forgot its row" into a failing test. `exempt` maps `METHOD /path` (as
    the route declares it) to why no role-based check applies (public, health, docs).
    """
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Match

    # `app.routes` holds each included router as one opaque entry (FastAPI >= 0.16x);
    # the route contexts are the routes as served, with their prefixes applied.
    routes = [
        (method, route)
        for route in iter_route_contexts(app.routes)
        if getattr(route, "include_in_schema", False)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]
    reached: set[str] = set()
    for case in cases:
        method, url, _ = case.call(world)
        path = httpx.URL(url).path
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        for route_method, route in routes:
            if route_method == method and route.matches(scope)[0] is Match.FULL:
                reached.add(f"{method} {route.path}")
                break
    declared = {f"{method} {route.path}" for method, route in routes}
    return sorted(declared - reached - set(exempt))
