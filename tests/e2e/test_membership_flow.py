"""End to end: the membership service as a real process, a real database, events on a real NATS.

A county sets up its unions, a worker is admitted through the whole procedure,
their card verifies and then stops verifying when they withdraw; every change
arrives on NATS exactly once, in order; SIGTERM stops the service cleanly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import nats

from gonghui_shared.permissions import Role
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import (
    auth_header,
    token_for,
)
from gonghui_shared.testing.processes import Platform
from membership.testing import applicant


async def test_admission_end_to_end_with_events(platform: Platform, nats_url: str) -> None:
    settings = ServiceSettings(data_dir=platform.data_dir)  # the services' dev keys
    root = platform.root
    service = platform.services["membership"]
    nc = await nats.connect(nats_url)
    received: list[dict[str, object]] = []

    async def on_event(msg) -> None:  # type: ignore[no-untyped-def]
        received.append(json.loads(msg.data))

    await nc.subscribe(f"{root}.membership.>", cb=on_event)
    platform = auth_header(token_for(settings, Role.platform_admin))

    async with httpx.AsyncClient(base_url=service.base, timeout=10) as http:

        async def call(method: str, url: str, headers: dict[str, str], expect: int = 200, **kw):  # type: ignore[no-untyped-def]
            response = await http.request(method, url, headers=headers, **kw)
            assert response.status_code == expect, response.text
            return response.json()

        county = await call(
            "POST",
            "/v1/orgs",
            platform,
            201,
            json={
                "org_type": "county_federation",
                "name": "凤庆县总工会",
                "region_code": "530921000000",
            },
        )
        township = await call(
            "POST",
            "/v1/orgs",
            platform,
            201,
            json={
                "parent_id": county["id"],
                "org_type": "township_union",
                "name": "凤山镇工会",
                "region_code": "530921101000",
            },
        )
        village = await call(
            "POST",
            "/v1/orgs",
            platform,
            201,
            json={
                "parent_id": township["id"],
                "org_type": "village_union",
                "name": "京竹林村工会委员会",
                "region_code": "530921101201",
            },
        )
        chair = auth_header(
            token_for(settings, Role.org_chair, org_id=village["id"], org_path=village["path"])
        )
        county_admin = auth_header(
            token_for(settings, Role.county_admin, org_id=county["id"], org_path=county["path"])
        )

        roster = await call(
            "POST", "/v1/rosters", chair, 201, json={"org_id": village["id"], "title": "第一批"}
        )
        person = applicant()
        application = await call(
            "POST",
            "/v1/applications",
            chair,
            201,
            json=person | {"org_id": village["id"], "roster_id": roster["id"]},
        )
        # A village chair may not approve; the county federation does.
        denied = await http.post(
            f"/v1/applications/{application['id']}/approve",
            headers=chair,
            json={"approval_doc_no": "凤工复〔2026〕1号"},
        )
        assert denied.status_code == 403
        approved = await call(
            "POST",
            f"/v1/applications/{application['id']}/approve",
            county_admin,
            json={"approval_doc_no": "凤工复〔2026〕1号"},
        )
        member_no = approved["member"]["member_no"]
        year = datetime.now(ZoneInfo("Asia/Shanghai")).year
        assert member_no == f"530921{year}000001", "county code + year + first sequence number"
        card = approved["card"]["token"]
        assert (await call("POST", "/v1/cards/verify", {}, json={"token": card}))["valid"] is True

        await call(
            "POST",
            f"/v1/members/{member_no}/withdraw",
            county_admin,
            json={"reason": "本人申请退会"},
        )
        after = await call("POST", "/v1/cards/verify", {}, json={"token": card})
        assert after["valid"] is False and after["reason"] == "membership_ended"

    expected = [
        "membership.org.created",
        "membership.org.created",
        "membership.org.created",
        "membership.application.submitted",
        "membership.member.approved",
        "membership.member.withdrawn",
    ]
    deadline = time.monotonic() + 10
    while len(received) < len(expected) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # anything extra (a duplicate) would arrive now
    await nc.close()
    assert [e["type"] for e in received] == expected
    assert len({e["event_id"] for e in received}) == len(received), "an event arrived twice"
    approved_event = received[4]
    assert approved_event["data"]["member_no"] == member_no
    assert person["id_number"] not in json.dumps(received, ensure_ascii=False)

    process = service.process
    process.send_signal(signal.SIGTERM)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the status says "terminated".
    assert process.wait(20) in (0, -signal.SIGTERM)
    log_text = service.log_text()
    assert "stopped cleanly" in log_text
    assert person["id_number"] not in log_text and person["phone"] not in log_text
