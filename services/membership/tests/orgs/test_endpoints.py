"""Orgs over HTTP: the tree, placement rules, scope."""

from __future__ import annotations

from gonghui_shared.permissions import Role
from membership.testing import Api


async def test_county_township_village_tree(api: Api) -> None:
    county, township, village = await api.tree()
    assert county["depth"] == 0 and county["county_code"] == "530921"
    assert township["path"] == f"{county['path']}{township['id']}/"
    assert village["path"].startswith(township["path"]) and village["depth"] == 2
    assert village["org_type_label_zh"] == "村（社区）工会"
    children = await api.ok("GET", f"/v1/orgs/{county['id']}/children")
    assert [c["id"] for c in children["items"]] == [township["id"]]


async def test_village_union_must_sit_under_a_township_in_its_region(api: Api) -> None:
    county, township, _ = await api.tree()
    wrong_parent = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": county["id"],
            "org_type": "village_union",
            "name": "某村工会",
            "region_code": "530921101202",
        },
    )
    assert wrong_parent.status_code == 422
    assert wrong_parent.json()["error"]["code"] == "invalid_org_placement"
    outside = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": township["id"],
            "org_type": "village_union",
            "name": "外乡村工会",
            "region_code": "530921102201",
        },
    )
    assert outside.status_code == 422
    assert outside.json()["error"]["details"] == {"field": "region_code"}


async def test_county_may_sit_under_its_province_federation(api: Api) -> None:
    province = await api.ok(
        "POST",
        "/v1/orgs",
        expect=201,
        json={
            "org_type": "province_federation",
            "name": "云南省总工会",
            "region_code": "530000000000",
        },
    )
    assert province["org_type_label_zh"] == "省总工会"
    county = await api.child(province, "county_federation", "凤庆县总工会", "530921000000")
    # The county still numbers its own members, and its subtree is inside the province's.
    assert county["county_code"] == "530921" and county["depth"] == 1
    assert county["path"] == f"{province['path']}{county['id']}/"
    township = await api.child(county, "township_union", "凤山镇工会", "530921101000")
    assert township["county_code"] == "530921"
    other_province = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": province["id"],
            "org_type": "county_federation",
            "name": "外省县总工会",
            "region_code": "510104000000",
        },
    )
    assert other_province.status_code == 422
    assert other_province.json()["error"]["details"] == {"field": "region_code"}
    under_a_county = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": county["id"],
            "org_type": "county_federation",
            "name": "云县总工会",
            "region_code": "530922000000",
        },
    )
    assert under_a_county.status_code == 422
    assert under_a_county.json()["error"]["details"] == {"field": "parent_id"}


async def test_second_union_for_the_same_village_is_a_conflict(api: Api) -> None:
    _, township, village = await api.tree()
    again = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": township["id"],
            "org_type": "village_union",
            "name": "另一个工会",
            "region_code": village["region_code"],
        },
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "region_already_has_union"


async def test_village_chair_sees_only_its_village(api: Api) -> None:
    county, township, village = await api.tree()
    chair = api.headers(Role.org_chair, village)
    assert (await api.client.get(f"/v1/orgs/{village['id']}", headers=chair)).status_code == 200
    denied = await api.client.get(f"/v1/orgs/{township['id']}", headers=chair)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    listed = await api.ok("GET", "/v1/orgs", as_=chair)
    assert [o["id"] for o in listed["items"]] == [village["id"]]
    assert (
        len((await api.ok("GET", "/v1/orgs", as_=api.headers(Role.county_admin, county)))["items"])
        == 3
    )


async def test_only_platform_admin_creates_a_county(api: Api) -> None:
    county = await api.county()
    response = await api.client.post(
        "/v1/orgs",
        headers=api.headers(Role.county_admin, county),
        json={
            "org_type": "county_federation",
            "name": "另一县总工会",
            "region_code": "530922000000",
        },
    )
    assert response.status_code == 403


async def test_missing_token_and_bad_input_get_the_error_shape(api: Api) -> None:
    anonymous = await api.client.get("/v1/orgs")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    bad = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={"org_type": "nope", "name": "x", "region_code": "12"},
    )
    body = bad.json()["error"]
    assert bad.status_code == 422 and body["code"] == "validation_error"
    assert {d["field"] for d in body["details"]} == {"org_type", "name", "region_code"}
    assert body["request_id"] == bad.headers["x-request-id"]


async def test_update_records_change_and_publishes(api: Api) -> None:
    county = await api.county()
    updated = await api.ok("PATCH", f"/v1/orgs/{county['id']}", json={"chair_name": "罗国珠"})
    assert updated["chair_name"] == "罗国珠"
    missing = await api.client.get("/v1/orgs/not-an-org", headers=api.platform)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "org_not_found"


async def test_update_cannot_clear_required_fields(api: Api) -> None:
    county = await api.county()
    response = await api.client.patch(
        f"/v1/orgs/{county['id']}", headers=api.platform, json={"status": None, "name": None}
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["error"]["details"]} == {"status", "name"}
    cleared = await api.ok("PATCH", f"/v1/orgs/{county['id']}", json={"lat": None})
    assert cleared["lat"] is None and cleared["status"] == "active"


async def test_nul_characters_and_impossible_region_codes_are_422(api: Api) -> None:
    county = await api.county()
    nul_body = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={
            "parent_id": county["id"],
            "org_type": "enterprise_union",
            "name": "茶厂\u0000工会",
            "region_code": "530921101000",
        },
    )
    assert nul_body.status_code == 422 and nul_body.json()["error"]["code"] == "invalid_character"
    nul_query = await api.client.get("/v1/orgs", headers=api.platform, params={"q": "a\x00b"})
    assert nul_query.status_code == 422
    no_province = await api.client.post(
        "/v1/orgs",
        headers=api.platform,
        json={"org_type": "county_federation", "name": "某县总工会", "region_code": "000351051386"},
    )
    assert no_province.status_code == 422
    assert no_province.json()["error"]["details"][0]["field"] == "region_code"
