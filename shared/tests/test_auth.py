"""Tokens, principals and scope."""

from __future__ import annotations

import pytest

from gonghui_shared.auth import Principal, TokenIssuer, TokenVerifier
from gonghui_shared.errors import Forbidden, OutOfScope, Unauthorized
from gonghui_shared.keys import load_private_key, new_ed25519_pem
from gonghui_shared.permissions import PERMISSIONS, Action, Role


def test_token_round_trip_carries_role_and_scope() -> None:
    key = load_private_key(new_ed25519_pem())
    chair = Principal(subject="u1", role=Role.org_chair, org_id="v", org_path="/c/t/v/")
    principal = TokenVerifier(key.public_key()).verify(TokenIssuer(key).issue(chair))
    assert principal == chair


def test_expired_and_foreign_tokens_are_refused() -> None:
    key, other = load_private_key(new_ed25519_pem()), load_private_key(new_ed25519_pem())
    admin = Principal(subject="a", role=Role.county_admin, org_path="/c/")
    with pytest.raises(Unauthorized, match="expired"):
        TokenVerifier(key.public_key()).verify(TokenIssuer(key).issue(admin, ttl_seconds=-10))
    with pytest.raises(Unauthorized, match="invalid"):
        TokenVerifier(key.public_key()).verify(TokenIssuer(other).issue(admin))
    with pytest.raises(Unauthorized):
        TokenVerifier(key.public_key()).verify("not.a.token")


def test_scope_is_the_org_subtree() -> None:
    chair = Principal(subject="u", role=Role.org_chair, org_path="/c/t/")
    assert chair.covers("/c/t/") and chair.covers("/c/t/v/")
    assert not chair.covers("/c/") and not chair.covers("/c/t2/")
    assert Principal(subject="p", role=Role.platform_admin).covers("/anything/")
    assert not Principal(subject="m", role=Role.member).covers("/c/")


def test_require_checks_role_then_scope() -> None:
    chair = Principal(subject="u", role=Role.org_chair, org_path="/c/t/")
    chair.require(Action.applications_submit, "/c/t/v/")
    with pytest.raises(Forbidden) as denied:
        chair.require(Action.applications_decide, "/c/t/v/")
    assert denied.value.code == "forbidden"
    with pytest.raises(OutOfScope):
        chair.require(Action.applications_submit, "/c/t2/")


def test_only_county_and_platform_admins_decide_applications() -> None:
    deciders = {
        role for role, actions in PERMISSIONS.items() if Action.applications_decide in actions
    }
    assert deciders == {Role.platform_admin, Role.county_admin}
    assert set(PERMISSIONS) == set(Role)
