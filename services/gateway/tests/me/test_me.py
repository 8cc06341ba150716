"""`/v1/me/…` against the real services: membership, card and QR, trainings, stations, applying.

Every call goes gateway → service over loopback HTTP with the member's own token, so the
services' own checks (a member sees only themself) are what these tests exercise.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.config import GatewaySettings
from gateway.me.qr import MODULE_PIXELS, PNG_SIGNATURE, qr_matrix
from gateway.me.testing import png_modules
from gonghui_shared.permissions import Role
from gonghui_shared.testing import auth_header, token_for
from membership.testing import Api as MembershipApi
from membership.testing import applicant
from stations.replicas.models import OrgReplica as StationsOrg
from stations.testing import Api as StationsApi
from stations.testing import open_station
from training.replicas.models import MemberReplica as TrainingMember
from training.replicas.models import OrgReplica as TrainingOrg
from training.testing import Api as TrainingApi
from training.testing import Classroom

_phones = itertools.count(1)
MakeTree = Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]


@dataclass
class Member:
    county: dict[str, Any]
    township: dict[str, Any]
    village: dict[str, Any]
    member_no: str
    headers: dict[str, str]  # the member's own bearer token


async def admitted(
    direct: dict[str, httpx.AsyncClient], settings: GatewaySettings, tree: MakeTree
) -> Member:
    """A county of its own, and a member admitted in its village."""
    api = MembershipApi(direct["membership"], settings)
    county, township, village = await tree()
    member_no = (await api.member(county, village, name="李春华"))["member"]["member_no"]
    token = token_for(
        settings,
        Role.member,
        org_id=village["id"],
        org_path=village["path"],
        member_no=member_no,
        subject=f"phone:+86138{next(_phones):08d}",
    )
    return Member(county, township, village, member_no, auth_header(token))


def applicant_headers(settings: GatewaySettings) -> dict[str, str]:
    """Someone logged in by phone who is not a member (yet)."""
    subject = f"phone:+86139{next(_phones):08d}"
    return auth_header(token_for(settings, Role.member, subject=subject))


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"] and error["message_zh"]
    return error


async def test_my_membership_as_membership_shows_it_to_me(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    me = await admitted(direct, me_settings, tree)
    response = await gateway.get("/v1/me", headers=me.headers)
    assert response.status_code == 200, response.text
    mine = response.json()
    assert mine["member_no"] == me.member_no and mine["name"] == "李春华"
    assert mine["org_id"] == me.village["id"] and mine["status"] == "active"
    assert mine["personal_data"] == "masked" and mine["id_number"].count("*") == 8
    # Exactly what membership itself tells the member.
    own = await direct["membership"].get(f"/v1/members/{me.member_no}", headers=me.headers)
    assert own.json() == mine

    assert error_of(await gateway.get("/v1/me"), 401)["code"] == "unauthorized"
    not_yet = await gateway.get("/v1/me", headers=applicant_headers(me_settings))
    assert error_of(not_yet, 404)["code"] == "not_a_member"
    chair = auth_header(
        token_for(me_settings, Role.org_chair, org_id=me.village["id"], org_path=me.village["path"])
    )
    for path in ("/v1/me", "/v1/me/card", "/v1/me/trainings"):
        assert error_of(await gateway.get(path, headers=chair), 403)["code"] == "forbidden"
    # A refusal of membership's comes back as membership gave it.
    ghost = auth_header(token_for(me_settings, Role.member, member_no="5309212026999999"))
    refused = await gateway.get("/v1/me", headers=ghost | {"X-Request-ID": "me-ghost-0001"})
    error = error_of(refused, 404)
    # ... carrying the request id membership was given: the caller's.
    assert error["code"] == "member_not_found" and error["request_id"] == "me-ghost-0001"


async def test_my_card_verifies_with_the_county_seal_and_its_qr_code_carries_it(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    me = await admitted(direct, me_settings, tree)
    response = await gateway.get("/v1/me/card", headers=me.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    card = response.json()
    assert card["member_no"] == me.member_no
    assert card["public_key_url"] == "/v1/membership/cards/public-key"
    # The key, fetched where the card says (public: no token), verifies the card offline.
    keys = await gateway.get(card["public_key_url"])
    assert keys.status_code == 200
    seal = load_pem_public_key(keys.json()["pem"].encode())
    claims = jwt.decode(card["token"], seal, algorithms=["EdDSA"])  # type: ignore[arg-type]
    assert claims["sub"] == me.member_no and claims["name"] == "李春华"
    check = await gateway.post("/v1/membership/cards/verify", json={"token": card["token"]})
    assert check.status_code == 200 and check.json()["valid"] is True

    # The QR image: a PNG whose modules are those of the card token's QR code. A card is
    # signed afresh each time (deterministically, per second): bracket the image with two
    # token reads and compare when both agree.
    for _ in range(3):
        before = (await gateway.get("/v1/me/card", headers=me.headers)).json()["token"]
        image = await gateway.get("/v1/me/card.png", headers=me.headers)
        after = (await gateway.get("/v1/me/card", headers=me.headers)).json()["token"]
        if before == after:
            break
    assert before == after, "the card token changed under every attempt"
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "no-store"
    assert image.content.startswith(PNG_SIGNATURE)
    assert png_modules(image.content, MODULE_PIXELS) == qr_matrix(before)

    # A card only for a standing membership: membership's 409 comes back through.
    withdrawn = await direct["membership"].post(
        f"/v1/members/{me.member_no}/withdraw",
        headers=auth_header(token_for(me_settings, Role.platform_admin)),
        json={"reason": "本人申请退会"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    for path in ("/v1/me/card", "/v1/me/card.png"):
        refused = await gateway.get(path, headers=me.headers)
        assert error_of(refused, 409)["code"] == "membership_not_active"


async def test_my_trainings_and_certificates(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    services: dict[str, Any],
    tree: MakeTree,
) -> None:
    me = await admitted(direct, me_settings, tree)
    membership = MembershipApi(direct["membership"], me_settings)
    someone = (await membership.member(me.county, me.village))["member"]["member_no"]
    training = services["training"]
    for member_no in (me.member_no, someone):
        await training.until(TrainingMember, member_no=member_no)
    for org in (me.village, me.township):
        await training.until(TrainingOrg, id=org["id"])
    classroom = Classroom(TrainingApi(direct["training"], me_settings), training.app)
    # One session completed with a certificate, one still open; someone else in both.
    done, _, _ = await classroom.certified(
        me.village, [{"member_no": me.member_no}, {"member_no": someone}]
    )
    still_open = await classroom.session(me.township, title="电子商务培训", category="ecommerce")
    await classroom.enrol(still_open, {"member_no": me.member_no})
    await classroom.enrol(still_open, {"member_no": someone})

    response = await gateway.get("/v1/me/trainings", headers=me.headers)
    assert response.status_code == 200, response.text
    mine = response.json()
    assert mine["member_no"] == me.member_no
    enrolments = mine["enrolments"]["items"]
    assert [(e["session"]["id"], e["status"]) for e in enrolments] == [
        (done["id"], "completed"),
        (still_open["id"], "enrolled"),
    ]
    assert {e["member_no"] for e in enrolments} == {me.member_no}
    assert enrolments[1]["session"]["course_title"] == "电子商务培训"
    certificates = mine["certificates"]["items"]
    assert [(c["session_id"], c["member_no"], c["status"]) for c in certificates] == [
        (done["id"], me.member_no, "valid")
    ]
    # The certificate checks out publicly, through the gateway.
    number = certificates[0]["number"]
    verified = await gateway.get(f"/v1/training/certificates/{number}/verify")
    assert verified.status_code == 200 and verified.json()["valid"] is True

    page = (await gateway.get("/v1/me/trainings?limit=1", headers=me.headers)).json()
    assert len(page["enrolments"]["items"]) == 1 and page["enrolments"]["next_cursor"]
    bad = await gateway.get("/v1/me/trainings?limit=0", headers=me.headers)
    assert error_of(bad, 422)["code"] == "validation_error"
    not_yet = await gateway.get("/v1/me/trainings", headers=applicant_headers(me_settings))
    assert error_of(not_yet, 404)["code"] == "not_a_member"


async def test_stations_near_me(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    services: dict[str, Any],
    tree: MakeTree,
) -> None:
    me = await admitted(direct, me_settings, tree)
    await services["stations"].until(StationsOrg, id=me.village["id"])
    api = StationsApi(direct["stations"], me_settings)
    # A spot of this county's own (other tests' stations stay in the database).
    lat = 20 + int(me.county["region_code"][2:6]) % 100 / 10
    near = await open_station(api, me.village, lon=99.9300, lat=lat, name="京竹林村服务点")
    await open_station(api, me.village, lon=100.30, lat=lat + 0.3, name="远处的驿站")

    url = f"/v1/me/stations/nearby?lon=99.9310&lat={lat + 0.0005}"
    response = await gateway.get(url, headers=me.headers)
    assert response.status_code == 200, response.text
    found = response.json()
    assert [s["id"] for s in found["items"]] == [near["id"]]
    assert found["minutes"] == 15 and found["items"][0]["distance_m"] < 200
    # Every other parameter goes to stations as given (repeated ones too).
    wider = await gateway.get(
        url + "&minutes=30&amenity=drinking_water&amenity=phone_charging", headers=me.headers
    )
    assert wider.status_code == 200 and wider.json()["minutes"] == 30
    assert [s["id"] for s in wider.json()["items"]] == [near["id"]]
    # An applicant (no member number yet) may look for stations too.
    assert (await gateway.get(url, headers=applicant_headers(me_settings))).status_code == 200

    missing = await gateway.get("/v1/me/stations/nearby?lon=99.93", headers=me.headers)
    assert error_of(missing, 422)["details"][0]["field"] == "lat"
    refused = await gateway.get(url + "&minutes=-5", headers=me.headers)
    assert error_of(refused, 422)["details"][0]["field"] == "minutes"  # stations' own check


def own_form(org: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = applicant(**overrides) | {"org_id": org["id"]}
    del body["form_ref"]
    return body


async def test_apply_to_join(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    api = MembershipApi(direct["membership"], me_settings)
    _, _, village = await tree()
    me = applicant_headers(me_settings)
    body = own_form(village, name="杨春花")

    response = await gateway.post("/v1/me/apply", headers=me, json=body)
    assert response.status_code == 201, response.text
    application = response.json()
    assert application["status"] == "submitted" and application["org_id"] == village["id"]
    assert application["name"] == "杨春花" and application["id_number"].count("*") == 8
    # The village union sees it among its applications.
    chair = api.headers(Role.org_chair, village)
    listed = await direct["membership"].get(
        "/v1/applications", params={"org_id": village["id"]}, headers=chair
    )
    assert [a["id"] for a in listed.json()["items"]] == [application["id"]]

    again = await gateway.post("/v1/me/apply", headers=me, json=own_form(village))
    assert error_of(again, 409)["code"] == "own_application_pending"  # membership's answer
    # A check digit that is not the number's own (X is some numbers' own).
    wrong_digit = "1" if body["id_number"][17] == "0" else "0"
    wrong = own_form(village, id_number=body["id_number"][:17] + wrong_digit)
    other = await gateway.post("/v1/me/apply", headers=applicant_headers(me_settings), json=wrong)
    assert error_of(other, 422)["code"] in ("invalid_id_number", "validation_error")

    member = auth_header(token_for(me_settings, Role.member, member_no="5309212026000001"))
    already = await gateway.post("/v1/me/apply", headers=member, json=own_form(village))
    assert error_of(already, 409)["code"] == "already_member"
    staff = await gateway.post("/v1/me/apply", headers=chair, json=own_form(village))
    assert error_of(staff, 403)["code"] == "forbidden"
    huge = await gateway.post(
        "/v1/me/apply",
        headers=applicant_headers(me_settings),
        json=own_form(village, employer="厂" * 20_000),
    )
    assert error_of(huge, 413)["code"] == "payload_too_large"
    listed = await direct["membership"].get(
        "/v1/applications", params={"org_id": village["id"]}, headers=chair
    )
    assert len(listed.json()["items"]) == 1  # nothing else got through


async def test_a_retried_application_with_an_idempotency_key_is_made_once(
    gateway: httpx.AsyncClient,
    direct: dict[str, httpx.AsyncClient],
    me_settings: GatewaySettings,
    tree: MakeTree,
) -> None:
    api = MembershipApi(direct["membership"], me_settings)
    _, _, village = await tree()
    me = applicant_headers(me_settings) | {"Idempotency-Key": f"apply-{uuid.uuid4()}"}
    body = own_form(village, name="杨春花")

    first = await gateway.post("/v1/me/apply", headers=me, json=body)
    assert first.status_code == 201, first.text
    # Sent again (the answer was lost on a weak mobile link): the first answer, not
    # membership's 409 for a second application.
    retry = await gateway.post("/v1/me/apply", headers=me, json=body)
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    chair = api.headers(Role.org_chair, village)
    listed = await direct["membership"].get(
        "/v1/applications", params={"org_id": village["id"]}, headers=chair
    )
    assert [a["id"] for a in listed.json()["items"]] == [first.json()["id"]]
