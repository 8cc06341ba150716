"""Load a small demo county into a running membership service: `make demo` calls this.

凤庆县 as in the first seed report: 13 townships and 189 villages and communities,
every one with a union, and three villages whose first rosters (花名册) of migrant
workers and riders are approved by the county federation. Everything goes
through the public API, so the events flow on NATS as they would in real use.
Running it again does nothing: the demo county is only loaded once.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from typing import Any

import httpx

from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from membership.config import MembershipSettings
from membership.rosters.template import write_roster_csv
from membership.testing import valid_id_number, valid_phone
from membership.units.statistical_codes import COUNTY, TOWNSHIP, generate_county, write_units_csv

COUNTY_CODE = "530921000000"
APPLICANTS_PER_VILLAGE = 12
APPROVAL_DOC = "凤工复〔2026〕1号"


class Demo:
    def __init__(self, client: httpx.AsyncClient, settings: MembershipSettings) -> None:
        self.client = client
        self.settings = settings
        self.platform = auth_header(token_for(settings, Role.platform_admin, subject="demo"))

    async def call(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        response = await self.client.request(method, url, headers=headers or self.platform, **kw)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
        return response.json()

    def as_(self, role: Role, org: dict[str, Any]) -> dict[str, str]:
        return auth_header(
            token_for(self.settings, role, org_id=org["id"], org_path=org["path"], subject="demo")
        )

    async def already_loaded(self) -> bool:
        found = await self.call(
            "GET", "/v1/orgs", params={"org_type": "county_federation", "q": "凤庆县"}
        )
        return bool(found["items"])

    async def load(self) -> dict[str, Any]:
        units = generate_county(COUNTY_CODE)
        files = {"file": ("凤庆县区划.csv", write_units_csv(units), "text/csv")}
        await self.call("POST", "/v1/units/import", files=files)
        county_unit = next(u for u in units if u.level == COUNTY)
        county = await self.call(
            "POST",
            "/v1/orgs",
            json={
                "org_type": "county_federation",
                "name": "凤庆县总工会",
                "region_code": county_unit.code,
                "lon": county_unit.lon,
                "lat": county_unit.lat,
            },
        )
        admin = self.as_(Role.county_admin, county)
        townships: dict[str, dict[str, Any]] = {}
        for unit in (u for u in units if u.level == TOWNSHIP):
            townships[unit.code] = await self.call(
                "POST",
                "/v1/orgs",
                admin,
                json={
                    "parent_id": county["id"],
                    "org_type": "township_union",
                    "name": f"{unit.name}工会",
                    "region_code": unit.code,
                    "lon": unit.lon,
                    "lat": unit.lat,
                },
            )
        villages = []
        for unit in (u for u in units if u.level == "village"):
            parent = townships[unit.parent_code or ""]
            suffix = "工会联合会" if unit.urban else "工会委员会"
            villages.append(
                await self.call(
                    "POST",
                    "/v1/orgs",
                    admin,
                    json={
                        "parent_id": parent["id"],
                        "org_type": "village_union",
                        "name": f"{unit.name}{suffix}",
                        "region_code": unit.code,
                        "lon": unit.lon,
                        "lat": unit.lat,
                    },
                )
            )
        members = 0
        for n, village in enumerate(villages[:3]):
            chair = self.as_(Role.org_chair, village)
            rows = [_applicant(n * 100 + i) for i in range(APPLICANTS_PER_VILLAGE)]
            buffer = io.StringIO()
            write_roster_csv(rows, buffer)
            report = await self.call(
                "POST",
                "/v1/rosters/import",
                chair,
                params={
                    "org_id": village["id"],
                    "dry_run": "false",
                    "title": "2026年第一批入会花名册",
                },
                files={"file": ("花名册.csv", buffer.getvalue().encode("utf-8-sig"), "text/csv")},
            )
            approved = await self.call(
                "POST",
                f"/v1/rosters/{report['roster_id']}/approve",
                admin,
                json={"approval_doc_no": APPROVAL_DOC},
            )
            members += approved["approved"]
            await self.call(
                "POST",
                f"/v1/orgs/{village['id']}/cadres",
                admin,
                json={
                    "member_no": approved["member_nos"][0],
                    "role": "chair",
                    "appointed_on": "2026-01-01",
                },
            )
        coverage = await self.call("GET", f"/v1/orgs/{county['id']}/coverage")
        return {
            "county": county,
            "villages": len(villages),
            "members": members,
            "coverage": coverage,
        }


def _applicant(n: int) -> dict[str, str]:
    rider = n % 4 == 0
    return {
        "name": f"{'李王张刘陈杨赵黄'[n % 8]}{'明华强军芳丽平杰'[n // 8 % 8]}{n}",
        "id_number": valid_id_number(5000 + n, birth=f"19{70 + n % 30}0{1 + n % 9}1{n % 10}"),
        "phone": "+86" + valid_phone(5000 + n),
        "household_type": "农村",
        "category": "新就业形态劳动者" if rider else "农民工",
        "subtype": "外卖骑手" if rider else "",
        "employer": "凤庆县滇红茶业" if not rider else "美团",
        "form_ref": f"FQ-2026-{n:05d}",
    }


async def main_async(base_url: str) -> int:
    settings = MembershipSettings()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        demo = Demo(client, settings)
        if await demo.already_loaded():
            print("demo county 凤庆县 is already loaded")
            return 0
        print("loading the demo county 凤庆县 (13 townships, 189 villages and communities)…")
        result = await demo.load()
    county, coverage = result["county"], result["coverage"]
    print(f"  county federation: {county['name']} (id {county['id']})")
    print(f"  village unions: {result['villages']}, members admitted: {result['members']}")
    direct = coverage["levels"][-1]
    print(f"  coverage: {direct['covered']}/{direct['total']} {direct['level']}s have a union")
    print(
        "  a county admin token: .venv/bin/gonghui-token --role county_admin "
        f"--org-id {county['id']} --org-path {county['path']}"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8001")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main_async(args.base_url)))
    except (httpx.HTTPError, RuntimeError) as exc:
        sys.exit(f"demo data could not be loaded: {exc}")


if __name__ == "__main__":
    main()
