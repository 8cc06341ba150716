"""Mobile self-service: a member's own records, fetched from the services as the member.

Every call carries the caller's upstream token, so the services' own checks decide
what a member may see (their own membership, card, enrolments and certificates);
the gateway only picks the member number from the token and shapes the answers.
A service's refusal (404, 403, 409 …) is handed back as the service gave it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
from fastapi import Depends, Request

from gateway.accounts.caller import Caller, CallerDep
from gateway.routing.service import forwarded_for
from gateway.routing.upstreams import Upstreams
from gonghui_shared.audit import mark_audited_upstream
from gonghui_shared.errors import Conflict, Forbidden, NotFound, PayloadTooLarge
from gonghui_shared.permissions import Role

T = TypeVar("T")

# Where the card's verification key is, as the gateway serves it (membership's body names
# its own path, `/v1/cards/public-key`, which is not a gateway path).
CARD_KEY_URL = "/v1/membership/cards/public-key"
APPLICATION_MAX_BYTES = 16 * 1024


class MembersOnly(Forbidden):
    message = "The /v1/me endpoints are for members and applicants of the mobile app"
    message_zh = "“我的”接口仅供会员及入会申请人使用"


class NotAMemberYet(NotFound):
    code = "not_a_member"
    message = "You are not a member yet: apply to join with POST /v1/me/apply"
    message_zh = "您还不是会员，请通过 POST /v1/me/apply 申请入会"


class AlreadyAMember(Conflict):
    code = "already_member"
    message = "You are already a member"
    message_zh = "您已是会员"


async def member_caller(caller: CallerDep) -> Caller:
    """The caller, if a member (or applicant) of the mobile app."""
    if caller.principal.role is not Role.member:
        raise MembersOnly()
    return caller


MemberCallerDep = Annotated[Caller, Depends(member_caller)]


def member_no_of(caller: Caller) -> str:
    if caller.principal.member_no is None:
        raise NotAMemberYet()
    return caller.principal.member_no


async def gather_or_cancel(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await calls together; if one fails, the others are cancelled rather than left running."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


async def membership(upstreams: Upstreams, caller: Caller) -> httpx.Response:
    member_no = member_no_of(caller)
    return await upstreams["membership"].call(
        "GET", f"/v1/members/{quote(member_no, safe='')}", token=caller.upstream_token
    )


async def card(upstreams: Upstreams, caller: Caller) -> httpx.Response:
    member_no = member_no_of(caller)
    return await upstreams["membership"].call(
        "GET", f"/v1/members/{quote(member_no, safe='')}/card", token=caller.upstream_token
    )


def card_for_gateway(body: dict[str, Any]) -> dict[str, Any]:
    """Membership's card body with the key's URL as the gateway serves it."""
    return body | {"public_key_url": CARD_KEY_URL}


async def trainings(
    upstreams: Upstreams, caller: Caller, limit: int
) -> tuple[httpx.Response, httpx.Response]:
    """Training's enrolments and certificates of the member, fetched together."""
    params = {"member_no": member_no_of(caller), "limit": limit}
    training = upstreams["training"]
    enrolments, certificates = await gather_or_cancel(
        [
            training.call("GET", "/v1/enrolments", token=caller.upstream_token, params=params),
            training.call("GET", "/v1/certificates", token=caller.upstream_token, params=params),
        ]
    )
    return enrolments, certificates


async def nearby(upstreams: Upstreams, caller: Caller, request: Request) -> httpx.Response:
    """Stations' nearby search with the caller's query string, as it came."""
    return await upstreams["stations"].call(
        "GET",
        "/v1/stations/nearby",
        token=caller.upstream_token,
        params=list(request.query_params.multi_items()),
    )


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(details={"max_bytes": limit})
    return bytes(body)


async def apply(upstreams: Upstreams, caller: Caller, request: Request) -> httpx.Response:
    """Hand an applicant's own application to membership, which validates and records it."""
    if caller.principal.member_no is not None:
        raise AlreadyAMember(details={"member_no": caller.principal.member_no})
    body = await _body(request, APPLICATION_MAX_BYTES)
    response = await upstreams["membership"].call(
        "POST",
        "/v1/applications/self",
        token=caller.upstream_token,
        content=body,
        headers={
            "content-type": request.headers.get("content-type", "application/json"),
            **forwarded_for(request),
        },
    )
    mark_audited_upstream()  # membership's audit log has it, with the applicant's address
    return response
