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


@dataclass(frozen=True)
class Case:
    name: str
    action: Action
    call: Call  # world -> (method, url, json body or None)
    member_action: Action | None = None  # what a member needs to do this for itself
    scoped: bool = True  # False: any holder of the action may, wherever the target is


def expected_allowed(case: Case, role: Role, inside: bool) -> bool:
    if role is Role.member:
        # The member principal is a member of the "inside" world, acting for itself.
        allowed = case.member_action is not None and case.member_action in PERMISSIONS[role]
        return allowed and (inside or not case.scoped)
    if case.action not in PERMISSIONS[role]:
        return False
    return role is Role.platform_admin or inside or not case.scoped


async def check_matrix(
    client: httpx.AsyncClient,
    role: Role,
    headers: dict[str, str],
    cases: list[Case],
    inside: dict[str, Any],
    outside: dict[str, Any],
) -> list[tuple[str, str, int, str]]:
    """Run every case inside and outside; return the mismatches (empty when all agree)."""
    mismatches = []
    for case in cases:
        for is_inside, world in ((True, inside), (False, outside)):
            method, url, body = case.call(world)
            response = await client.request(method, url, headers=headers, json=body)
            assert response.status_code < 500, f"{case.name}: {response.text}"
            allowed = response.status_code not in (401, 403)
            if not allowed:
                assert response.json()["error"]["code"] in ("forbidden", "out_of_scope")
            if allowed != expected_allowed(case, role, is_inside):
                where = "inside" if is_inside else "outside"
                mismatches.append((case.name, where, response.status_code, response.text[:160]))
    return mismatches


# Every service with an audit log has this endpoint: the admins read it, whatever the world;
# what they see is limited to their scope by filtering (tested with the audit log itself).
AUDIT_CASE = Case(
    "audit log", Action.audit_read, lambda w: ("GET", "/v1/audit?limit=5", None), scoped=False
)


def count_cases(cases: list[Case]) -> int:
    """(role, endpoint, scope) combinations a matrix runs per database."""
    return len(cases) * 2 * len(Role)
