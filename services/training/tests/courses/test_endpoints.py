"""The course catalogue over HTTP: creation, validation, who sees which catalogue, edits."""

from __future__ import annotations

from typing import Any

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.testing import Api


async def other_county(feed: MembershipFeed) -> tuple[dict[str, Any], dict[str, Any]]:
    """A second county (云县) with one village: a sibling subtree."""
    county = await feed.org(None, "county_federation", "云县总工会", "530922000000")
    township = await feed.org(county, "township_union", "爱华镇工会", "530922100000")
    village = await feed.org(township, "village_union", "某村工会委员会", "530922100201")
    await feed.synced()
    return county, village


async def titles(api: Api, as_: dict[str, str], query: str = "") -> list[str]:
    page = await api.ok("GET", f"/v1/courses{query}", as_=as_)
    return [c["title"] for c in page["items"]]


async def test_county_creates_a_course_and_reads_it_back(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    admin = api.headers(Role.county_admin, county)
    course = await api.course(
        county,
        as_=admin,
        title="  育婴师培训 ",
        category="childcare_domestic",
        skills=["婴幼儿生活照料", "早期教育", "婴幼儿生活照料"],
        target_groups=["rural_labour", "migrant_workers", "rural_labour"],
        hours=40,
    )
    assert course["title"] == "育婴师培训"  # trimmed
    assert course["owner_org_id"] == county["id"] and course["owner_org_path"] == county["path"]
    assert course["skills"] == ["婴幼儿生活照料", "早期教育"]  # repeats dropped, order kept
    assert course["target_groups"] == ["rural_labour", "migrant_workers"]
    assert course["leads_to_certificate"] is True and course["hours"] == 40
    assert course["min_attendance_rate"] == 0.8  # the default completion rule
    assert await api.ok("GET", f"/v1/courses/{course['id']}", as_=admin) == course


async def test_course_fields_are_validated(api: Api, feed: MembershipFeed) -> None:
    county, _, _ = await feed.tree()
    base = {"owner_org_id": county["id"], "title": "电焊", "category": "welding_trades"}
    for extra, field in [
        ({"hours": 0}, "hours"),
        ({"hours": 1000.5}, "hours"),
        ({"hours": 8, "min_attendance_rate": 0}, "min_attendance_rate"),
        ({"hours": 8, "min_attendance_rate": 1.01}, "min_attendance_rate"),
        ({"hours": 8, "category": "cooking"}, "category"),
        ({"hours": 8, "target_groups": ["retirees"]}, "target_groups.0"),
        ({"hours": 8, "title": " x "}, "title"),
    ]:
        response = await api.client.post("/v1/courses", headers=api.platform, json=base | extra)
        assert response.status_code == 422, (extra, response.text)
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    missing = await api.client.post("/v1/courses", headers=api.platform, json=base)
    assert missing.json()["error"]["details"][0]["field"] == "hours"


async def test_course_owner_must_be_a_known_org_in_scope(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    body = {"title": "茶叶种植管理", "category": "planting_breeding", "hours": 16}
    unknown = await api.client.post(
        "/v1/courses", headers=api.platform, json=body | {"owner_org_id": "no-such-org"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "org_not_found"
    assert unknown.json()["error"]["details"] == {"field": "owner_org_id"}
    village_chair = api.headers(Role.org_chair, village)
    above = await api.client.post(
        "/v1/courses", headers=village_chair, json=body | {"owner_org_id": township["id"]}
    )
    assert above.status_code == 403 and above.json()["error"]["code"] == "out_of_scope"
    for role in (Role.station_operator, Role.member, Role.gov_system):
        denied = await api.client.post(
            "/v1/courses",
            headers=api.headers(role, county),
            json=body | {"owner_org_id": county["id"]},
        )
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden", role
    # Its own village is in scope.
    own = await api.course(village, as_=village_chair, **body)
    assert own["owner_org_path"] == village["path"]


async def test_a_village_sees_the_county_catalogue_and_another_county_does_not(
    api: Api, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    second_village = await feed.org(township, "village_union", "新村工会委员会", "530921101202")
    other, other_village = await other_county(feed)
    welding = await api.course(county, title="电焊工职业技能培训")
    tea = await api.course(township, title="茶叶种植管理", category="planting_breeding")
    childcare = await api.course(village, title="育婴师培训", category="childcare_domestic")
    yun = await api.course(other, title="云县电子商务", category="ecommerce")

    village_chair = api.headers(Role.org_chair, village)
    # Above (county, township) and its own; not the other county's.
    assert await titles(api, village_chair) == ["电焊工职业技能培训", "茶叶种植管理", "育婴师培训"]
    assert (await api.ok("GET", f"/v1/courses/{welding['id']}", as_=village_chair))["id"]
    # A sibling village sees the county's and township's catalogue, not the first village's.
    sibling = api.headers(Role.org_chair, second_village)
    assert await titles(api, sibling) == ["电焊工职业技能培训", "茶叶种植管理"]
    denied = await api.client.get(f"/v1/courses/{childcare['id']}", headers=sibling)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    # The county covers every catalogue below it.
    county_admin = api.headers(Role.county_admin, county)
    assert len(await titles(api, county_admin)) == 3
    # The other county sees only its own.
    other_chair = api.headers(Role.org_chair, other_village)
    assert await titles(api, other_chair) == ["云县电子商务"]
    for course in (welding, tea):
        response = await api.client.get(f"/v1/courses/{course['id']}", headers=other_chair)
        assert response.status_code == 403 and response.json()["error"]["code"] == "out_of_scope"
    assert await titles(api, api.headers(Role.county_admin, other)) == ["云县电子商务"]
    assert len(await titles(api, api.platform)) == 4
    assert yun["owner_org_id"] == other["id"]


async def test_members_station_operators_and_gov_systems_read_the_catalogue(
    api: Api, feed: MembershipFeed
) -> None:
    county, township, village = await feed.tree()
    other, other_village = await other_county(feed)
    await api.course(county, title="电焊工职业技能培训")
    await api.course(other, title="云县电子商务", category="ecommerce")
    member_no = await feed.member(village)
    member = api.headers(Role.member, village, member_no=member_no)
    assert await titles(api, member) == ["电焊工职业技能培训"]
    stranger_no = await feed.member(other_village)
    stranger = api.headers(Role.member, other_village, member_no=stranger_no)
    assert await titles(api, stranger) == ["云县电子商务"]
    station = api.headers(Role.station_operator, township)
    assert await titles(api, station) == ["电焊工职业技能培训"]
    gov = api.headers(Role.gov_system, county)
    assert await titles(api, gov) == ["电焊工职业技能培训"]
    # A staff token without an org has no catalogue to look from.
    lost = await api.client.get("/v1/courses", headers=api.headers(Role.org_chair))
    assert lost.status_code == 403 and lost.json()["error"]["code"] == "out_of_scope"


async def test_list_filters_and_pages(api: Api, feed: MembershipFeed) -> None:
    county, township, village = await feed.tree()
    await api.course(county, title="电焊工职业技能培训")
    await api.course(county, title="电子商务直播带货", category="ecommerce")
    await api.course(county, title="电子商务网店运营", category="ecommerce")
    second_village = await feed.org(township, "village_union", "新村工会委员会", "530921101202")
    await feed.synced()
    await api.course(second_village, title="茶叶种植管理", category="planting_breeding")
    assert await titles(api, api.platform, "?category=ecommerce") == [
        "电子商务直播带货",
        "电子商务网店运营",
    ]
    assert await titles(api, api.platform, "?q=直播") == ["电子商务直播带货"]
    assert await titles(api, api.platform, "?q=%25") == []  # LIKE wildcards are literal
    # Offered at the village: the county's, not the sibling village's.
    at_village = await titles(api, api.platform, f"?org_id={village['id']}")
    assert at_village == ["电焊工职业技能培训", "电子商务直播带货", "电子商务网店运营"]
    # The township covers both villages: it sees every catalogue around it.
    assert len(await titles(api, api.platform, f"?org_id={township['id']}")) == 4
    outside = await api.client.get(
        f"/v1/courses?org_id={county['id']}", headers=api.headers(Role.org_chair, village)
    )
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    first = await api.ok("GET", "/v1/courses?limit=3")
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = await api.ok("GET", f"/v1/courses?limit=3&cursor={first['next_cursor']}")
    assert [c["title"] for c in rest["items"]] == ["茶叶种植管理"] and rest["next_cursor"] is None
    bad = await api.client.get("/v1/courses?category=cooking", headers=api.platform)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "category"


async def test_course_edits_in_owner_scope(api: Api, feed: MembershipFeed) -> None:
    county, _, village = await feed.tree()
    course = await api.course(county)
    url = f"/v1/courses/{course['id']}"
    edited = await api.ok(
        "PATCH",
        url,
        as_=api.headers(Role.county_admin, county),
        json={"hours": 64, "skills": ["焊条电弧焊", "气体保护焊"], "min_attendance_rate": 1},
    )
    assert (edited["hours"], edited["skills"], edited["min_attendance_rate"]) == (
        64,
        ["焊条电弧焊", "气体保护焊"],
        1,
    )
    assert edited["title"] == course["title"] and edited["category"] == course["category"]
    for field in (
        "title",
        "skills",
        "target_groups",
        "hours",
        "min_attendance_rate",
        "leads_to_certificate",
    ):
        nulled = await api.client.patch(url, headers=api.platform, json={field: None})
        assert nulled.status_code == 422, field
        assert nulled.json()["error"]["details"][0]["field"] == field
    # A village may use the county's course, not change it.
    denied = await api.client.patch(
        url, headers=api.headers(Role.org_chair, village), json={"hours": 8}
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    missing = await api.client.patch("/v1/courses/nope", headers=api.platform, json={"hours": 8})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "course_not_found"
    assert (await api.ok("GET", url))["hours"] == 64
