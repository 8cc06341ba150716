"""Who may create and change accounts, and where: the org subtree, and platform admins."""

from __future__ import annotations

from gateway.accounts.testing import COUNTY_A, COUNTY_B, VILLAGE_A, FakeMembership, Gateway


async def test_a_platform_admin_creates_a_county_admin_with_a_masked_phone(
    gw: Gateway, membership: FakeMembership
) -> None:
    admin = await gw.admin()
    account = await gw.account(
        admin, "County_A", "county_admin", COUNTY_A, phone="13800138000", member_no="53092120260001"
    )
    assert account["username"] == "county_a"  # usernames are case-insensitive
    assert (account["role"], account["org_id"], account["org_path"]) == (
        "county_admin",
        COUNTY_A["id"],
        COUNTY_A["path"],
    )
    assert account["phone"] == "138****8000" and account["active"] is True
    assert "password" not in account and "password_hash" not in account
    # The org was resolved by membership with the admin's own token.
    asked = [r for r in membership.requests if r.url.path == f"/v1/orgs/{COUNTY_A['id']}"]
    assert len(asked) == 1 and asked[0].headers["authorization"] == f"Bearer {admin}"
    token = await gw.login("COUNTY_A", "County_A-password")
    principal = gw.app.state.runtime.verifier.verify(token["access_token"])
    assert (principal.role, principal.org_path, principal.member_no) == (
        "county_admin",
        "/A/",
        "53092120260001",
    )


async def test_a_county_admin_creates_accounts_only_inside_its_county(
    gw: Gateway, membership: FakeMembership
) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    chair = await gw.account(county_a, "village_chair", "org_chair", VILLAGE_A)
    assert chair["org_path"] == VILLAGE_A["path"]

    body = {"username": "intruder", "password": "long-enough-password", "role": "org_chair"}
    await gw.error(
        "POST",
        "/v1/accounts",
        403,
        "out_of_scope",
        token=county_a,
        json=body | {"org_id": COUNTY_B["id"]},
    )
    membership.check_scope = False  # the gateway checks the scope itself too
    await gw.error(
        "POST",
        "/v1/accounts",
        403,
        "out_of_scope",
        token=county_a,
        json=body | {"org_id": COUNTY_B["id"]},
    )
    membership.check_scope = True
    platform = body | {"role": "platform_admin"}
    error = await gw.error("POST", "/v1/accounts", 403, "forbidden", token=county_a, json=platform)
    assert "platform admin" in error["message"]
    for role in ("gov_system", "member"):
        await gw.error(
            "POST",
            "/v1/accounts",
            422,
            "role_not_assignable",
            token=county_a,
            json=body | {"role": role, "org_id": VILLAGE_A["id"]},
        )
    await gw.error("POST", "/v1/accounts", 422, "org_required", token=county_a, json=body)
    await gw.error(
        "POST",
        "/v1/accounts",
        422,
        "unknown_org",
        token=county_a,
        json=body | {"org_id": "00000000-0000-7000-8000-00000000dead"},
    )
    taken = body | {"username": "VILLAGE_CHAIR", "org_id": VILLAGE_A["id"]}
    await gw.error("POST", "/v1/accounts", 409, "username_taken", token=county_a, json=taken)
    # A chair manages no accounts at all.
    village_chair = (await gw.login("village_chair", "village_chair-password"))["access_token"]
    await gw.error(
        "POST",
        "/v1/accounts",
        403,
        "forbidden",
        token=village_chair,
        json=body | {"org_id": VILLAGE_A["id"]},
    )
    await gw.error("GET", "/v1/accounts", 403, "forbidden", token=village_chair)


async def test_a_platform_admin_alone_makes_platform_admins_and_they_have_no_org(
    gw: Gateway,
) -> None:
    admin = await gw.admin()
    second = await gw.account(admin, "operator2", "platform_admin", None)
    assert second["org_id"] is None and second["org_path"] is None
    body = {"username": "op3", "password": "long-enough-password", "role": "platform_admin"}
    await gw.error(
        "POST",
        "/v1/accounts",
        422,
        "platform_admin_has_no_org",
        token=admin,
        json=body | {"org_id": COUNTY_A["id"]},
    )


async def test_the_list_is_paginated_and_limited_to_the_subtree(gw: Gateway) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    await gw.account(admin, "county_b", "county_admin", COUNTY_B)
    for n in range(3):
        await gw.account(county_a, f"chair{n}", "org_chair", VILLAGE_A)

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await gw.ok("GET", "/v1/accounts", token=county_a, params=params)
        seen += [a["username"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["county_a", "chair0", "chair1", "chair2"]  # oldest first; no B, no admin
    everyone = await gw.ok("GET", "/v1/accounts", token=admin, params={"role": "county_admin"})
    assert [a["username"] for a in everyone["items"]] == ["county_a", "county_b"]


async def test_changes_follow_the_same_rules_and_sign_the_account_out(gw: Gateway) -> None:
    admin = await gw.admin()
    county_a = await gw.staff(admin, "county_a", "county_admin", COUNTY_A)
    county_b = await gw.account(admin, "county_b", "county_admin", COUNTY_B)
    chair = await gw.account(county_a, "chair", "org_chair", VILLAGE_A)
    chair_login = await gw.login("chair", "chair-password")
    me = gw.app.state.runtime.verifier.verify(county_a).subject

    url = f"/v1/accounts/{chair['id']}"
    moved = await gw.ok("PATCH", url, token=county_a, json={"role": "station_operator"})
    assert (moved["role"], moved["org_id"]) == ("station_operator", VILLAGE_A["id"])
    await gw.error("GET", "/v1/accounts", 401, "token_revoked", token=chair_login["access_token"])
    await gw.error("PATCH", url, 403, "forbidden", token=county_a, json={"role": "platform_admin"})
    await gw.error(
        "PATCH", url, 403, "out_of_scope", token=county_a, json={"org_id": COUNTY_B["id"]}
    )

    # Another county's account is out of reach; so is one's own role and activity.
    other = f"/v1/accounts/{county_b['id']}"
    await gw.error("PATCH", other, 403, "out_of_scope", token=county_a, json={"active": False})
    own = f"/v1/accounts/{me}"
    await gw.error("PATCH", own, 409, "own_account", token=county_a, json={"active": False})
    await gw.error("PATCH", own, 409, "own_account", token=county_a, json={"role": "org_chair"})
    await gw.error("PATCH", "/v1/accounts/nope", 404, "account_not_found", token=county_a, json={})

    # A password reset: the old one stops working, the new one works.
    await gw.ok("PATCH", url, token=county_a, json={"password": "a-brand-new-password"})
    data = {"grant_type": "password", "username": "chair", "password": "chair-password"}
    await gw.error("POST", "/v1/auth/token", 401, "invalid_credentials", data=data)
    await gw.login("chair", "a-brand-new-password")
