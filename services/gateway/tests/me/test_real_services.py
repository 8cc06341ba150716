"""Routing against the real services: the path rule, request ids, a roster upload and export,
the services' API documents, and a service stopped mid-session."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx

from gateway.config import GatewaySettings
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from membership.rosters.template import write_roster_csv
from membership.testing import Api as MembershipApi
from membership.testing import valid_id_number, valid_phone
from stations.replicas.models import OrgReplica as StationsOrg


async def test_the_rule_reaches_each_real_service_with_identity_and_request_id(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    services: dict[str, Any],
    tree: Any,
) -> None:
    county, _, village = await tree()
    admin = auth_header(
        token_for(me_settings, Role.county_admin, org_id=county["id"], org_path=county["path"])
    )

    routed = await gateway.get(f"/v1/membership/orgs/{village['id']}/children", headers=admin)
    own = await direct["membership"].get(f"/v1/orgs/{village['id']}/children", headers=admin)
    assert routed.status_code == own.status_code == 200 and routed.json() == own.json()

    await services["stations"].until(StationsOrg, id=village["id"])
    routed = await gateway.get(f"/v1/stations/coverage?org_id={county['id']}", headers=admin)
    assert routed.status_code == 200, routed.text
    assert (
        routed.json()
        == (
            await direct["stations"].get(f"/v1/coverage?org_id={county['id']}", headers=admin)
        ).json()
    )
    member = auth_header(token_for(me_settings, Role.member, member_no="5309212026000001"))
    routed = await gateway.get("/v1/stations/stations/nearby?lon=-60&lat=-10", headers=member)
    assert routed.status_code == 200 and routed.json()["items"] == []
    routed = await gateway.get(f"/v1/training/courses?org_id={county['id']}", headers=admin)
    assert routed.status_code == 200 and routed.json() == {"items": [], "next_cursor": None}
    assert (await gateway.get("/v1/stations/amenities")).json() == (
        await direct["stations"].get("/v1/amenities")
    ).json()

    # The service's own refusal, in the house shape, names the request id the caller gave.
    missing = await gateway.get(
        "/v1/membership/members/5309212026999999",
        headers=admin | {"X-Request-ID": "gw-real-0001"},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "member_not_found"
    assert missing.json()["error"]["request_id"] == "gw-real-0001"
    assert missing.headers.get_list("x-request-id") == ["gw-real-0001"]
    # The services check scope themselves: a member may not list the county's members.
    refused = await gateway.get(f"/v1/membership/members?org_id={county['id']}", headers=member)
    assert refused.status_code == 403


def _roster_rows(count: int) -> list[dict[str, str]]:
    return [
        {
            "name": f"王{n}",
            "id_number": valid_id_number(n, birth="19850315"),  # apart from other tests
            "phone": valid_phone(9000 + n),
            "household_type": "农村",
            "category": "农民工",
            "subtype": "",
            "employer": "凤庆县滇红茶厂",
            "form_ref": f"FQ-2026-{n:05d}",
        }
        for n in range(count)
    ]


async def test_a_roster_goes_up_and_comes_back_through_the_gateway(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    tree: Any,
) -> None:
    api = MembershipApi(direct["membership"], me_settings)
    county, _, village = await tree()
    chair = api.headers(Role.org_chair, village)
    out = io.StringIO(newline="")
    write_roster_csv(_roster_rows(60), out)
    upload = await gateway.post(
        "/v1/membership/rosters/import",
        params={"org_id": village["id"], "title": "网关导入"},
        headers=chair,
        files={"file": ("花名册.csv", out.getvalue().encode("utf-8"), "text/csv")},
    )
    assert upload.status_code == 200, upload.text
    report = upload.json()
    assert (report["rows_total"], report["rows_imported"], report["errors"]) == (60, 60, [])

    approved = await gateway.post(
        f"/v1/membership/rosters/{report['roster_id']}/approve",
        headers=api.headers(Role.county_admin, county),
        json={"approval_doc_no": "凤工复〔2026〕30号"},
    )
    assert approved.status_code == 200 and approved.json()["approved"] == 60

    export = await gateway.get(
        "/v1/membership/rosters/export",
        params={"org_id": village["id"], "format": "csv"},
        headers=chair,
    )
    assert export.status_code == 200, export.text
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 60
    name = next(i for i, header in enumerate(rows[0]) if "姓名" in header)
    assert {row[name] for row in rows[1:]} == {f"王{n}" for n in range(60)}


async def test_a_services_api_document_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/stations/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Gonghui stations"
    assert "/v1/stations/<rest>" in document["info"]["description"]
    paths = set(document["paths"])
    assert all(path.startswith("/v1/stations/") for path in paths)
    assert {"/v1/stations/stations/nearby", "/v1/stations/amenities"} <= paths
    assert "/v1/stations/stations/{station_id}/visits" in paths
    assert not {"/healthz", "/readyz", "/v1/stations/healthz"} & paths
    page = await gateway.get("/v1/stations/docs")
    assert page.status_code == 200 and "'/v1/stations/openapi.json'" in page.text


async def test_a_stopped_service_is_a_503_and_the_others_keep_answering(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    services: dict[str, Any],
) -> None:
    member = auth_header(token_for(me_settings, Role.member, member_no="5309212026000001"))
    server = services["membership"].server
    await server.stop()
    try:
        started = time.perf_counter()
        down = await gateway.get("/v1/me", headers=member)
        elapsed = time.perf_counter() - started
        assert down.status_code == 503, down.text
        error = down.json()["error"]
        assert error["code"] == "service_unavailable" and error["details"] == {
            "service": "membership"
        }
        assert elapsed < me_settings.upstream_connect_timeout_seconds + 0.5, elapsed
        routed = await gateway.get("/v1/membership/cards/public-key")
        assert routed.status_code == 503
        up = await gateway.get("/v1/me/stations/nearby?lon=99.93&lat=24.58", headers=member)
        assert up.status_code == 200
        training = await gateway.get("/v1/me/trainings", headers=member)
        assert training.status_code == 200
    finally:
        await server.start()
    assert (await gateway.get("/v1/membership/cards/public-key")).status_code == 200
