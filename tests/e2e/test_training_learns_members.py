"""Across services: training learns orgs and members only from membership's events.

Membership and training run as separate processes with separate databases. A
member admitted in membership can enrol in training moments later; when the
membership ends, training refuses a new enrolment; training never calls
membership.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gonghui_shared.permissions import Role
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import auth_header, token_for
from gonghui_shared.testing.processes import Platform
from membership.testing import applicant


async def eventually(call, expect: int, timeout: float = 10.0) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Retry until the answer has the expected status: the replica catches up asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        response = await call()
        if response.status_code == expect or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_a_member_admitted_in_membership_enrols_in_training(platform: Platform) -> None:
    settings = ServiceSettings(data_dir=platform.data_dir)
    platform_admin = auth_header(token_for(settings, Role.platform_admin))
    membership = httpx.AsyncClient(base_url=platform.services["membership"].base, timeout=10)
    training = httpx.AsyncClient(base_url=platform.services["training"].base, timeout=10)
    async with membership, training:

        async def post(
            client: httpx.AsyncClient, url: str, body: dict[str, Any], headers=platform_admin
        ) -> Any:  # type: ignore[no-untyped-def]
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code in (200, 201), response.text
            return response.json()

        county = await post(
            membership,
            "/v1/orgs",
            {
                "org_type": "county_federation",
                "name": "凤庆县总工会",
                "region_code": "530921000000",
            },
        )
        township = await post(
            membership,
            "/v1/orgs",
            {
                "parent_id": county["id"],
                "org_type": "township_union",
                "name": "凤山镇工会",
                "region_code": "530921101000",
            },
        )
        county_admin = auth_header(
            token_for(settings, Role.county_admin, org_id=county["id"], org_path=county["path"])
        )
        chair = auth_header(
            token_for(settings, Role.org_chair, org_id=township["id"], org_path=township["path"])
        )
        roster = await post(
            membership, "/v1/rosters", {"org_id": township["id"], "title": "第一批"}, chair
        )
        application = await post(
            membership,
            "/v1/applications",
            applicant() | {"org_id": township["id"], "roster_id": roster["id"]},
            chair,
        )
        approved = await post(
            membership,
            f"/v1/applications/{application['id']}/approve",
            {"approval_doc_no": "凤工复〔2026〕9号"},
            county_admin,
        )
        member_no = approved["member"]["member_no"]

        # The county's course, a session at the township: training knows both orgs by now.
        course = (
            await eventually(
                lambda: training.post(
                    "/v1/courses",
                    headers=county_admin,
                    json={
                        "owner_org_id": county["id"],
                        "title": "电焊工（初级）",
                        "category": "welding_trades",
                        "skills": ["手工电弧焊"],
                        "target_groups": ["migrant_workers"],
                        "leads_to_certificate": True,
                        "hours": 40,
                    },
                ),
                201,
            )
        ).json()
        starts = datetime.now(UTC) + timedelta(days=1)
        session = await post(
            training,
            "/v1/sessions",
            {
                "course_id": course["id"],
                "host_org_id": township["id"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(days=4)).isoformat(),
                "place": "凤山镇职工之家",
                "delivery_mode": "on_site",
                "trainer": "李师傅",
                "capacity": 30,
                "planned_budget": "12000.00",
            },
            chair,
        )
        await post(training, f"/v1/sessions/{session['id']}/open", {}, chair)

        enrolled = await eventually(
            lambda: training.post(
                f"/v1/sessions/{session['id']}/enrolments",
                headers=chair,
                json={"member_no": member_no},
            ),
            201,
        )
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["status"] == "enrolled"
        assert enrolled.json()["worker_category"] == "migrant_worker"

        # The membership ends in membership; training hears of it and refuses a new enrolment.
        await post(
            membership,
            f"/v1/members/{member_no}/withdraw",
            {"reason": "本人申请退会"},
            county_admin,
        )
        other = await post(
            training,
            "/v1/sessions",
            {
                "course_id": course["id"],
                "host_org_id": township["id"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(days=1)).isoformat(),
                "delivery_mode": "classroom",
                "capacity": 10,
                "planned_budget": "0",
            },
            chair,
        )
        await post(training, f"/v1/sessions/{other['id']}/open", {}, chair)
        refused = await eventually(
            lambda: training.post(
                f"/v1/sessions/{other['id']}/enrolments",
                headers=chair,
                json={"member_no": member_no},
            ),
            409,
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "membership_not_active"
