"""Administrative units over HTTP: import, listing, and union coverage of a county (建会覆盖)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gonghui_shared.permissions import Role
from membership.testing import Api
from membership.units.statistical_codes import (
    TOWNSHIP,
    VILLAGE,
    UnitRow,
    generate_county,
    write_units_csv,
)

FENGQING = generate_county()  # 凤庆县: 13 townships, 189 villages and communities
TOWNSHIPS = [u for u in FENGQING if u.level == TOWNSHIP]
VILLAGES = [u for u in FENGQING if u.level == VILLAGE]


async def upload(api: Api, units: list[UnitRow] | bytes, as_: dict[str, str] | None = None) -> Any:
    data = units if isinstance(units, bytes) else write_units_csv(units)
    return await api.client.post(
        "/v1/units/import",
        headers=as_ or api.platform,
        files={"file": ("units.csv", data, "text/csv")},
    )


async def unionise(api: Api, skip: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Import 凤庆县 and set up its federation and a union in every unit except `skip`; by code."""
    assert (await upload(api, FENGQING)).status_code == 200
    orgs = {FENGQING[0].code: await api.county()}
    for unit in TOWNSHIPS + VILLAGES:
        if unit.code in skip:
            continue
        kind = "township_union" if unit.level == TOWNSHIP else "village_union"
        parent = orgs[unit.parent_code or ""]
        orgs[unit.code] = await api.child(parent, kind, f"{unit.name}工会", unit.code)
    return orgs


async def coverage(api: Api, org: dict[str, Any], **params: Any) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/orgs/{org['id']}/coverage", params=params)  # type: ignore[no-any-return]


async def test_import_creates_then_updates_only_what_changed(api: Api) -> None:
    first = await upload(api, FENGQING)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 203, "updated": 0, "unchanged": 0, "total": 203}

    renamed = dataclasses.replace(VILLAGES[0], name="东城街道社区")
    # A list without coordinates keeps the stored ones.
    bare = [dataclasses.replace(u, lon=None, lat=None) for u in FENGQING[1:]]
    again = await upload(api, [renamed if u.code == renamed.code else u for u in bare])
    assert again.json() == {"created": 0, "updated": 1, "unchanged": 201, "total": 202}

    unit = await api.ok("GET", f"/v1/units/{renamed.code}")
    assert unit["name"] == "东城街道社区" and unit["urban_rural_code"] == "111"
    assert (unit["lon"], unit["lat"]) == (VILLAGES[0].lon, VILLAGES[0].lat)
    missing = await api.client.get("/v1/units/530921999999", headers=api.platform)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unit_not_found"


async def test_list_pages_by_code_with_filters(api: Api) -> None:
    await upload(api, FENGQING)
    county = await api.county()
    chair = api.headers(Role.org_chair, county)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"parent_code": "530921000000", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = await api.ok("GET", "/v1/units", as_=chair, params=params)
        seen += [u["code"] for u in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [u.code for u in TOWNSHIPS]

    villages = await api.ok("GET", "/v1/units", params={"level": "village", "limit": 500})
    assert len(villages["items"]) == 189 and villages["next_cursor"] is None
    named = await api.ok("GET", "/v1/units", params={"q": "社区"})
    assert {u["name"] for u in named["items"]} == {"东城社区", "西城社区", "南城社区", "北城社区"}
    bad = await api.client.get("/v1/units", headers=api.platform, params={"level": "planet"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "level"
    member = await api.client.get("/v1/units", headers=api.headers(Role.member, county))
    assert member.status_code == 403 and member.json()["error"]["code"] == "forbidden"


async def test_whole_county_covered(api: Api) -> None:
    orgs = await unionise(api)
    county = await coverage(api, orgs["530921000000"])
    assert county["unit_name"] == "凤庆县" and county["region_code"] == "530921000000"
    assert county["direct"] == {"level": "township", "total": 13, "covered": 13, "rate": 1.0}
    assert county["levels"] == [
        {"level": "township", "total": 13, "covered": 13, "rate": 1.0},
        {"level": "village", "total": 189, "covered": 189, "rate": 1.0},
    ]
    assert county["uncovered"] == [] and county["uncovered_total"] == 0

    # 189 villages over 13 townships: the first seven have 15, the rest 14.
    township = await coverage(api, orgs[TOWNSHIPS[0].code])
    assert township["direct"] == {"level": "village", "total": 15, "covered": 15, "rate": 1.0}
    assert township["levels"] == [township["direct"]]

    village = await coverage(api, orgs[VILLAGES[0].code])
    assert village["unit_name"] == VILLAGES[0].name
    assert village["direct"] == {"level": None, "total": 0, "covered": 0, "rate": None}
    assert village["levels"] == [] and village["uncovered_total"] == 0


async def test_missing_and_dissolved_unions_are_listed(api: Api) -> None:
    missing = VILLAGES[-1]
    orgs = await unionise(api, skip=frozenset({missing.code}))
    county = orgs["530921000000"]
    report = await coverage(api, county)
    assert report["levels"][1] == {"level": "village", "total": 189, "covered": 188, "rate": 0.9947}
    assert report["direct"]["rate"] == 1.0
    assert report["uncovered"] == [
        {
            "code": missing.code,
            "name": missing.name,
            "level": "village",
            "parent_code": missing.parent_code,
        }
    ]
    assert report["uncovered_total"] == 1

    # A dissolved union no longer covers its village.
    dissolved = VILLAGES[0]
    await api.ok("PATCH", f"/v1/orgs/{orgs[dissolved.code]['id']}", json={"status": "dissolved"})
    report = await coverage(api, county, limit=1)
    assert report["levels"][1]["covered"] == 187 and report["uncovered_total"] == 2
    assert [u["code"] for u in report["uncovered"]] == [dissolved.code]

    township = await coverage(api, orgs[missing.parent_code or ""])
    assert township["direct"] == {"level": "village", "total": 14, "covered": 13, "rate": 0.9286}
    assert [u["code"] for u in township["uncovered"]] == [missing.code]


async def test_coverage_before_any_import_is_empty(api: Api) -> None:
    county = await api.county()
    report = await coverage(api, county)
    assert report["unit_name"] is None
    assert report["direct"] == {"level": "township", "total": 0, "covered": 0, "rate": None}
    assert [lv["total"] for lv in report["levels"]] == [0, 0]


async def test_coverage_scope(api: Api) -> None:
    county, township, village = await api.tree()
    chair = api.headers(Role.org_chair, village)
    denied = await api.client.get(f"/v1/orgs/{county['id']}/coverage", headers=chair)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    own = await api.client.get(f"/v1/orgs/{village['id']}/coverage", headers=chair)
    assert own.status_code == 200
    as_member = await api.client.get(
        f"/v1/orgs/{village['id']}/coverage", headers=api.headers(Role.member, village)
    )
    assert as_member.status_code == 403 and as_member.json()["error"]["code"] == "forbidden"
    missing = await api.client.get("/v1/orgs/nope/coverage", headers=api.platform)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "org_not_found"


async def test_county_admin_imports_only_its_own_county(api: Api) -> None:
    county = await api.county()
    admin = api.headers(Role.county_admin, county)
    own = await upload(api, FENGQING, as_=admin)
    assert own.status_code == 200 and own.json()["created"] == 203

    neighbour = generate_county("530922000000", "云县", townships=2, villages=4)
    response = await upload(api, FENGQING[:3] + neighbour, as_=admin)
    error = response.json()["error"]
    assert response.status_code == 403 and error["code"] == "out_of_scope"
    assert error["details"]["count"] == 7
    assert error["details"]["codes"][:2] == ["530922000000", "530922001000"]
    assert (await api.ok("GET", "/v1/units", params={"q": "云县"}))["items"] == []

    chair = await upload(api, FENGQING, as_=api.headers(Role.org_chair, county))
    assert chair.status_code == 403 and chair.json()["error"]["code"] == "forbidden"


async def test_bad_files_are_rejected_with_the_line(api: Api) -> None:
    good = write_units_csv(FENGQING[:3]).decode("utf-8-sig")
    broken = good + "5309211,,坏代码村\n"
    response = await upload(api, broken.encode())
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "invalid_units_file"
    assert error["details"]["line"] == 5 and error["details"]["field"] == "file"

    no_name = await upload(api, "统计用区划代码,名称\n530921000000,\n".encode())
    assert no_name.status_code == 422 and no_name.json()["error"]["details"]["line"] == 2
    empty = await upload(api, "统计用区划代码,城乡分类代码,名称\n".encode())
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_units_file"
    not_text = await upload(api, b"\xff\xfe\x00\x81" * 10)
    assert not_text.status_code == 422

    too_big = await upload(api, b"x" * (5 * 1024 * 1024 + 1))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    # Nothing from the rejected files was stored.
    assert (await api.ok("GET", "/v1/units"))["items"] == []
