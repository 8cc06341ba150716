"""`/v1/me/…`: a member's own membership, card, trainings, nearby stations; applying to join."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.idempotency.service import idempotent
from gateway.me import service
from gateway.me.qr import qr_png
from gateway.me.service import MemberCallerDep
from gateway.routing.endpoints import UPSTREAM_ERRORS
from gateway.routing.service import relay
from gateway.routing.upstreams import UpstreamsDep
from gonghui_shared.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/me", tags=["me"], responses={**ERROR_RESPONSES, **UPSTREAM_ERRORS})

# The card is signed afresh on every call and identifies a person: never cached.
_NO_STORE = {"Cache-Control": "no-store"}


def _json_example(example: Any, description: str = "Successful response") -> dict[int | str, Any]:
    return {
        200: {"description": description, "content": {"application/json": {"example": example}}}
    }


MEMBER_EXAMPLE = {
    "member_no": "5309212026000001",
    "name": "李春华",
    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
    "org_name": "京竹林村工会委员会",
    "status": "active",
    "category": "migrant_worker",
    "category_label_zh": "农民工",
    "id_number": "530921********0351",
    "phone": "138****8000",
    "personal_data": "masked",
    "joined_on": "2026-03-02",
    "membership_years": 0,
}
CARD_EXAMPLE = {
    "member_no": "5309212026000001",
    "token": "eyJhbGciOiJFZERTQSIsImtpZCI6…",
    "expires_at": "2027-03-02T00:00:00Z",
    "public_key_url": service.CARD_KEY_URL,
}
TRAININGS_EXAMPLE = {
    "member_no": "5309212026000001",
    "enrolments": {
        "items": [
            {
                "id": "0193a1c2-8e2f-7b4c-8d6e-2f3a4b5c6d7e",
                "status": "completed",
                "session": {
                    "course_title": "电焊工职业技能培训",
                    "starts_at": "2026-03-10T01:00:00Z",
                    "place": "凤山镇职业技能实训基地",
                    "status": "completed",
                },
            }
        ],
        "next_cursor": None,
    },
    "certificates": {
        "items": [{"number": "530921-2026-000001-X", "status": "valid", "issued_on": "2026-03-12"}],
        "next_cursor": None,
    },
}
APPLY_BODY = {
    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
    "name": "李春华",
    "id_number": "530921198807150351",
    "phone": "13800138000",
    "household_type": "rural",
    "category": "migrant_worker",
    "employer": "凤庆县滇红茶厂",
}


@router.get("", responses=_json_example(MEMBER_EXAMPLE))
async def my_membership(caller: MemberCallerDep, upstreams: UpstreamsDep) -> Response:
    """My membership record, with ID number and phone masked as membership masks them."""
    return relay(await service.membership(upstreams, caller))


@router.get("/card", responses=_json_example(CARD_EXAMPLE))
async def my_card(caller: MemberCallerDep, upstreams: UpstreamsDep) -> Response:
    """My member card (会员证): a token freshly signed with the county seal, shown at stations."""
    response = await service.card(upstreams, caller)
    if response.is_error:
        return relay(response)
    return JSONResponse(service.card_for_gateway(response.json()), headers=_NO_STORE)


@router.get(
    "/card.png",
    response_class=Response,
    responses={200: {"description": "QR code of the card token", "content": {"image/png": {}}}},
)
async def my_card_qr(caller: MemberCallerDep, upstreams: UpstreamsDep) -> Response:
    """My member card as a QR code (PNG) that a station scans and verifies offline."""
    response = await service.card(upstreams, caller)
    if response.is_error:
        return relay(response)
    # ~0.1 s of CPU for a card-sized code: off the event loop.
    image = await run_in_threadpool(qr_png, response.json()["token"])
    return Response(image, media_type="image/png", headers=_NO_STORE)


@router.get("/trainings", responses=_json_example(TRAININGS_EXAMPLE))
async def my_trainings(
    caller: MemberCallerDep,
    upstreams: UpstreamsDep,
    limit: Annotated[int, Query(ge=1, le=500, description="items per list")] = 100,
) -> Response:
    """My enrolments (with their sessions) and my certificates; page on with training's lists."""
    enrolments, certificates = await service.trainings(upstreams, caller, limit)
    for response in (enrolments, certificates):
        if response.is_error:
            return relay(response)
    return JSONResponse(
        {
            "member_no": caller.principal.member_no,
            "enrolments": enrolments.json(),
            "certificates": certificates.json(),
        }
    )


@router.get("/stations/nearby")
async def stations_near_me(
    request: Request,
    caller: MemberCallerDep,
    upstreams: UpstreamsDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude, in `crs`")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude, in `crs`")],
) -> Response:
    """Stations within walking minutes of a point, nearest first: stations' nearby search.

    Every other parameter of `/v1/stations/stations/nearby` (`crs`, `minutes`, `radius_m`,
    `amenity`, `open_now`, `type`, `limit`, `cursor` …) is passed on as given.
    """
    return relay(await service.nearby(upstreams, caller, request))


@router.post(
    "/apply",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "membership's `SelfApplicationCreate`",
            "content": {"application/json": {"example": APPLY_BODY}},
        }
    },
)
async def apply_to_join(
    request: Request, caller: MemberCallerDep, upstreams: UpstreamsDep
) -> Response:
    """Apply to join a union, for myself (logged in by phone, not a member yet)."""

    async def handler() -> Response:
        return relay(await service.apply(upstreams, caller, request))

    return await idempotent(request, caller.principal.subject, handler)
