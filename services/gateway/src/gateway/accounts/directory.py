"""What the gateway asks membership over HTTP: an org's place in the tree, a phone's members.

Account and API-key scopes are checked against the org as membership knows it, asked
with the caller's own token, so membership applies its scope rules too. Phone lookups
use a token the gateway mints for itself: platform scope, one action
(`members.lookup`), a minute long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from gateway.config import GatewaySettings
from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.errors import OutOfScope, ServiceUnavailable, Unprocessable
from gonghui_shared.logging import request_id_var
from gonghui_shared.permissions import Action, Role

GATEWAY_SUBJECT = "gateway"


class UnknownOrg(Unprocessable):
    code = "unknown_org"
    message = "No union organisation has this id"
    message_zh = "不存在该工会组织"


class MembershipUnavailable(ServiceUnavailable):
    code = "membership_unavailable"
    message = "The membership service is not answering; try again shortly"
    message_zh = "会员服务暂时无法访问，请稍后再试"


@dataclass(frozen=True)
class OrgRef:
    id: str
    path: str
    name: str


@dataclass(frozen=True)
class MemberMatch:
    member_no: str
    org_id: str


class MembershipDirectory:
    def __init__(
        self,
        settings: GatewaySettings,
        issuer: TokenIssuer,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = settings.membership_url
        self.timeout = httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        )
        self.token_ttl = settings.upstream_token_ttl_seconds
        self.issuer = issuer
        self.transport = transport  # tests put a fake membership here

    async def _call(self, method: str, path: str, token: str, json: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if request_id := request_id_var.get():
            headers["X-Request-ID"] = request_id
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                transport=self.transport,
                trust_env=False,
            ) as client:
                response = await client.request(method, path, headers=headers, json=json)
        except httpx.HTTPError as exc:
            raise MembershipUnavailable() from exc
        if response.status_code >= 500 or response.status_code == 401:
            # 401: membership does not accept the gateway's key; a configuration fault.
            raise MembershipUnavailable(details={"status": response.status_code})
        return response

    async def org(self, org_id: str, token: str) -> OrgRef:
        """The org `org_id`, as the holder of `token` may see it."""
        response = await self._call("GET", f"/v1/orgs/{quote(org_id, safe='')}", token)
        if response.status_code in (404, 422):
            raise UnknownOrg(details={"field": "org_id"})
        if response.status_code == 403:
            raise OutOfScope(details={"field": "org_id"})
        if response.status_code != 200:
            raise MembershipUnavailable(details={"status": response.status_code})
        body = response.json()
        return OrgRef(id=body["id"], path=body["path"], name=body["name"])

    async def members_by_phone(self, phone: str) -> list[MemberMatch]:
        """The active members whose phone is `phone` (E.164), oldest membership first."""
        principal = Principal(
            subject=GATEWAY_SUBJECT, role=Role.platform_admin, scopes=[Action.members_lookup]
        )
        token = self.issuer.issue(principal, self.token_ttl)
        response = await self._call("POST", "/v1/members/lookup", token, json={"phone": phone})
        if response.status_code != 200:
            raise MembershipUnavailable(details={"status": response.status_code})
        return [
            MemberMatch(member_no=m["member_no"], org_id=m["org_id"])
            for m in response.json()["members"]
        ]
