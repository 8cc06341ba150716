"""Tokens, principals and scope."""

from __future__ import annotations

import jwt
import pytest

from gonghui_shared.auth import Principal, TokenIssuer, TokenVerifier
from gonghui_shared.errors import Forbidden, OutOfScope, Unauthorized
from gonghui_shared.keys import key_id, load_private_key, new_ed25519_pem
from gonghui_shared.permissions import PERMISSIONS, Action, ApiScope, Role, scope_actions


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


def _key_principal(*scopes: ApiScope) -> Principal:
    """A government system's principal, as the gateway builds it from an API key."""
    return Principal(
        subject="api-key:1",
        role=Role.gov_system,
        org_id="c",
        org_path="/c/",
        scopes=sorted(scope_actions(scopes)),
    )


def test_a_scoped_principal_may_only_what_role_and_scopes_both_allow() -> None:
    masked = _key_principal(ApiScope.members_read_masked)
    assert masked.may(Action.members_read) and masked.may(Action.orgs_read)
    # gov_system holds rosters.import, but this key was not given the scope for it.
    assert Action.rosters_import in PERMISSIONS[Role.gov_system]
    assert not masked.may(Action.rosters_import)
    with pytest.raises(Forbidden, match="scopes"):
        masked.require(Action.rosters_import, "/c/v/")
    importer = _key_principal(ApiScope.rosters_import)
    importer.require(Action.rosters_import, "/c/v/")
    with pytest.raises(OutOfScope):
        importer.require(Action.rosters_import, "/other/")
    # No scope can lift the role's limits: personal data stays masked for every key.
    everything = _key_principal(*ApiScope)
    assert everything.may(Action.dashboards_read)
    assert not everything.may(Action.members_read_personal)
    assert not Principal(subject="x", role=Role.gov_system, scopes=[]).may(Action.orgs_read)
    # Unscoped principals keep their role's permissions.
    assert Principal(subject="g", role=Role.gov_system).may(Action.rosters_import)


def test_dashboards_and_phone_lookup_belong_to_the_right_roles() -> None:
    readers = {r for r, actions in PERMISSIONS.items() if Action.dashboards_read in actions}
    assert readers == {Role.platform_admin, Role.county_admin, Role.org_chair, Role.gov_system}
    lookups = {r for r, actions in PERMISSIONS.items() if Action.members_lookup in actions}
    assert lookups == {Role.platform_admin}
    managers = {r for r, actions in PERMISSIONS.items() if Action.accounts_write in actions}
    assert managers == {Role.platform_admin, Role.county_admin}


def test_scopes_jti_and_kid_travel_in_the_token() -> None:
    key = load_private_key(new_ed25519_pem())
    issuer = TokenIssuer(key)
    scoped = _key_principal(ApiScope.members_read_masked)
    issued = issuer.issue_token(scoped, ttl_seconds=60)
    assert jwt.get_unverified_header(issued.token)["kid"] == key_id(key.public_key())
    verified = TokenVerifier(key.public_key()).decode(issued.token)
    assert verified.principal == scoped and verified.principal.scopes is not None
    assert verified.jti == issued.jti and verified.expires_at == issued.expires_at
    assert issuer.issue_token(scoped).jti != issued.jti
    # A service that does not know an action yet drops it: the limit stays, nothing is granted.
    claims = {**verified.claims, "scopes": ["members.read", "something.new"]}
    forged = jwt.encode(claims, key, algorithm="EdDSA")
    assert TokenVerifier(key.public_key()).verify(forged).scopes == [Action.members_read]


def test_a_verifier_with_several_keys_picks_by_kid_and_refuses_strangers() -> None:
    old, new, stranger = (load_private_key(new_ed25519_pem()) for _ in range(3))
    verifier = TokenVerifier([old.public_key(), new.public_key()])
    chair = Principal(subject="u", role=Role.org_chair, org_path="/c/")
    assert verifier.verify(TokenIssuer(old).issue(chair)) == chair
    assert verifier.verify(TokenIssuer(new).issue(chair)) == chair
    with pytest.raises(Unauthorized, match="invalid"):
        verifier.verify(TokenIssuer(stranger).issue(chair))
    # A stranger's token that claims a known kid still fails its signature check.
    claims = {"iss": "gonghui", "aud": "gonghui", "sub": "x", "role": "platform_admin"}
    claims["exp"] = 4102444800
    kid = {"kid": key_id(new.public_key())}
    lying = jwt.encode(claims, stranger, algorithm="EdDSA", headers=kid)
    with pytest.raises(Unauthorized, match="invalid"):
        verifier.verify(lying)
