"""Public verification and revocation of certificates, and who lists which certificates."""

from __future__ import annotations

from typing import Any

from gonghui_shared.permissions import Role
from gonghui_shared.testing.feed import MembershipFeed
from training.certificates.service import format_certificate_number
from training.testing import Api, Classroom, non_member

REVOKE_REASON = "签到记录经核查系他人代签"


async def test_public_verification_shows_a_masked_holder_and_nothing_personal(
    api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    county, township, village = await feed.tree()
    member_no = await feed.member(village, name="李明")
    outsider = non_member(name="欧阳娜娜")
    _, enrolments, done = await classroom.certified(
        township,
        [{"member_no": member_no}, outsider],
        title="育婴师培训",
        category="childcare_domestic",
    )
    by_holder = {}
    for number in done["certificates"]:
        response = await api.client.get(f"/v1/certificates/{number}/verify")  # no token
        assert response.status_code == 200, response.text
        body = response.json()
        by_holder[body["holder"]] = body
        text = response.text
        for secret in (
            member_no,
            outsider["id_number"],
            outsider["phone"],
            enrolments[1]["id_number"],  # the masked form too
            "李明",
            "欧阳娜娜",
        ):
            assert secret not in text, secret
    assert set(by_holder) == {"李*", "欧阳**"}
    body = by_holder["李*"]
    assert body["valid"] is True and body["status"] == "valid"
    assert body["course_title"] == "育婴师培训" and body["course_category"] == "childcare_domestic"
    assert body["hours"] == 56 and body["issuer"] == "凤山镇工会"
    assert body["issued_on"] and body["revoked_reason"] is None
    assert set(body) == {
        "valid",
        "number",
        "status",
        "holder",
        "course_title",
        "course_category",
        "hours",
        "issued_on",
        "issuer",
        "revoked_on",
        "revoked_reason",
    }


async def test_verify_a_malformed_or_unknown_number(api: Api, feed: MembershipFeed) -> None:
    await feed.tree()
    for text in ("GHPX-530921-2026-000001", "not-a-number", "GHPX-530921-2026-000001-Y"):
        response = await api.client.get(f"/v1/certificates/{text}/verify")
        assert response.status_code == 422, text
        assert response.json()["error"]["code"] == "invalid_certificate_number"
    unknown = format_certificate_number("530921", 2026, 999)
    response = await api.client.get(f"/v1/certificates/{unknown}/verify")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "certificate_not_found"
    # A check character mistyped: caught by the format, before any lookup.
    typo = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")
    response = await api.client.get(f"/v1/certificates/{typo}/verify")
    assert response.json()["error"]["code"] == "invalid_certificate_number"


async def test_revocation_by_the_county_admin_only(
    api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    county, township, village = await feed.tree()
    other_county = await feed.org(None, "county_federation", "昌宁县总工会", "530524000000")
    await feed.synced()
    _, _, done = await classroom.certified(
        township, [{"member_no": await feed.member(village, name="王芳")}]
    )
    [number] = done["certificates"]
    url = f"/v1/certificates/{number}/revoke"
    body = {"reason": REVOKE_REASON}

    for headers, status, code in (
        (api.headers(Role.org_chair, county), 403, "forbidden"),
        (api.headers(Role.org_chair, township), 403, "forbidden"),
        (api.headers(Role.station_operator, township), 403, "forbidden"),
        (api.headers(Role.gov_system, county), 403, "forbidden"),
        (api.headers(Role.county_admin, other_county), 403, "out_of_scope"),
    ):
        response = await api.client.post(url, headers=headers, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert (await api.client.get(f"/v1/certificates/{number}/verify")).json()["valid"] is True

    blank = await api.client.post(
        url, headers=api.headers(Role.county_admin, county), json={"reason": "  "}
    )
    assert blank.status_code == 422 and blank.json()["error"]["details"][0]["field"] == "reason"
    missing = await api.client.post(
        f"/v1/certificates/{format_certificate_number('530921', 2026, 77)}/revoke",
        headers=api.headers(Role.county_admin, county),
        json=body,
    )
    assert missing.status_code == 404

    revoked = await api.ok("POST", url, as_=api.headers(Role.county_admin, county), json=body)
    assert revoked["status"] == "revoked" and revoked["revoked_reason"] == REVOKE_REASON
    again = await api.client.post(url, headers=api.platform, json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "certificate_already_revoked"

    check = (await api.client.get(f"/v1/certificates/{number}/verify")).json()
    assert check["valid"] is False and check["status"] == "revoked"
    assert check["revoked_reason"] == REVOKE_REASON and check["revoked_on"]
    assert check["holder"] == "王*"

    [issued] = await classroom.events("training.certificate.issued")
    [event] = await classroom.events("training.certificate.revoked")
    assert event["aggregate_id"] == issued["data"]["certificate_id"]
    assert event["org_path"] == township["path"]
    assert event["data"] == {
        "certificate_id": issued["data"]["certificate_id"],
        "number": number,
        "host_org_id": township["id"],
        "reason": REVOKE_REASON,
    }


async def test_listing_certificates_in_scope(
    api: Api, feed: MembershipFeed, classroom: Classroom
) -> None:
    county, township, village = await feed.tree()
    other_township = await feed.org(county, "township_union", "小湾镇工会", "530921102000")
    await feed.synced()
    li, wang = await feed.member(village, name="李明"), await feed.member(village, name="王芳")
    ts, _, done = await classroom.certified(township, [{"member_no": li}, {"member_no": wang}])
    _, _, elsewhere = await classroom.certified(other_township, [{"member_no": li}])
    issued = await classroom.events("training.certificate.issued")
    li_numbers = {e["data"]["number"] for e in issued if e["data"]["member_no"] == li}
    assert len(li_numbers) == 2

    def numbers(page: dict[str, Any]) -> set[str]:
        return {c["number"] for c in page["items"]}

    chair = api.headers(Role.org_chair, township)
    assert numbers(await api.ok("GET", "/v1/certificates", as_=chair)) == set(done["certificates"])
    admin = api.headers(Role.county_admin, county)
    assert len(numbers(await api.ok("GET", "/v1/certificates", as_=admin))) == 3
    page = await api.ok("GET", f"/v1/certificates?org_id={other_township['id']}", as_=admin)
    assert numbers(page) == set(elsewhere["certificates"])
    mine = await api.ok("GET", f"/v1/certificates?member_no={li}", as_=admin)
    assert numbers(mine) == li_numbers and {c["holder_name"] for c in mine["items"]} == {"李明"}
    first = await api.ok("GET", "/v1/certificates?limit=2", as_=admin)
    rest = await api.ok("GET", f"/v1/certificates?limit=2&cursor={first['next_cursor']}", as_=admin)
    assert len(numbers(first) | numbers(rest)) == 3 and rest["next_cursor"] is None

    member = api.headers(Role.member, village, member_no=li)
    assert numbers(await api.ok("GET", "/v1/certificates", as_=member)) == li_numbers
    scoped = await api.ok("GET", f"/v1/certificates?session_id={ts['id']}", as_=member)
    assert len(numbers(scoped)) == 1
    for url, headers, code in (
        (f"/v1/certificates?member_no={wang}", member, "forbidden"),
        (f"/v1/certificates?org_id={other_township['id']}", chair, "out_of_scope"),
        (
            f"/v1/certificates?session_id={ts['id']}",
            api.headers(Role.org_chair, village),
            "out_of_scope",
        ),
    ):
        response = await api.client.get(url, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (403, code)
    assert (await api.client.get("/v1/certificates")).status_code == 401
