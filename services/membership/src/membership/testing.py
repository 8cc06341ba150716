"""Test support for membership and the cross-service tests: valid people and a small API driver."""

from __future__ import annotations

import itertools
from typing import Any

from stdnum.cn import ric

from gonghui_shared.permissions import Role
from gonghui_shared.testing.driver import ApiDriver

_serial = itertools.count(1)


def valid_id_number(
    serial: int | None = None, *, region: str = "530921", birth: str = "19900101", male: bool = True
) -> str:
    """A checksum-valid 18-digit ID number, distinct per serial."""
    n = next(_serial) if serial is None else serial
    sequence = (n * 2 + (1 if male else 0)) % 1000  # odd 17th digit = male
    first17 = f"{region}{birth}{sequence:03d}"
    if len(first17) != 17:
        raise ValueError("region must have 6 digits and birth 8")
    # calc_check_digit ignores the last character: it expects the check digit's slot.
    number = first17 + ric.calc_check_digit(first17 + "0")
    return number


def valid_phone(serial: int | None = None) -> str:
    n = next(_serial) if serial is None else serial
    return f"1380013{n % 10000:04d}"


def applicant(**overrides: Any) -> dict[str, Any]:
    """A valid application body without org_id."""
    n = next(_serial)
    body: dict[str, Any] = {
        "name": f"张{n}",
        "id_number": valid_id_number(n),
        "phone": valid_phone(n),
        "household_type": "rural",
        "category": "migrant_worker",
        "employer": "凤庆茶厂",
        "form_ref": f"RH-2026-{n:05d}",
    }
    body.update(overrides)
    return body


class Api(ApiDriver):
    """Drives the membership API over HTTP as different principals."""

    async def county(
        self, region_code: str = "530921000000", name: str = "凤庆县总工会"
    ) -> dict[str, Any]:
        return await self.ok(
            "POST",
            "/v1/orgs",
            expect=201,
            json={"org_type": "county_federation", "name": name, "region_code": region_code},
        )

    async def child(
        self, parent: dict[str, Any], org_type: str, name: str, region_code: str
    ) -> dict[str, Any]:
        return await self.ok(
            "POST",
            "/v1/orgs",
            expect=201,
            json={
                "parent_id": parent["id"],
                "org_type": org_type,
                "name": name,
                "region_code": region_code,
            },
        )

    async def tree(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A county, one township and one village under it."""
        county = await self.county()
        township = await self.child(county, "township_union", "凤山镇工会", "530921101000")
        village = await self.child(township, "village_union", "京竹林村工会委员会", "530921101201")
        return county, township, village

    async def roster(
        self, org: dict[str, Any], title: str = "2026年第一批入会名册"
    ) -> dict[str, Any]:
        return await self.ok(
            "POST",
            "/v1/rosters",
            expect=201,
            as_=self.headers(Role.org_chair, org),
            json={"org_id": org["id"], "title": title},
        )

    async def apply(
        self, org: dict[str, Any], roster: dict[str, Any] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        body = applicant(**overrides) | {"org_id": org["id"]}
        if roster is not None:
            body["roster_id"] = roster["id"]
        return await self.ok(
            "POST", "/v1/applications", expect=201, as_=self.headers(Role.org_chair, org), json=body
        )

    async def approve(
        self,
        county: dict[str, Any],
        application: dict[str, Any],
        doc_no: str = "凤工复〔2026〕12号",
    ) -> dict[str, Any]:
        return await self.ok(
            "POST",
            f"/v1/applications/{application['id']}/approve",
            as_=self.headers(Role.county_admin, county),
            json={"approval_doc_no": doc_no},
        )

    async def member(
        self, county: dict[str, Any], org: dict[str, Any], **overrides: Any
    ) -> dict[str, Any]:
        """Admit one member through the whole procedure; returns the approval result."""
        roster = await self.roster(org)
        application = await self.apply(org, roster, **overrides)
        return await self.approve(county, application)
