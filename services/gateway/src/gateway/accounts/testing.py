"""Test support for the gateway's accounts: a fake membership and a small API driver.

`FakeMembership` stands in for membership over HTTP (put it on
`app.state.accounts.directory.transport`); `Gateway` signs in and calls the accounts API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.accounts.admin import create_first_admin
from gonghui_shared.auth import Principal
from gonghui_shared.errors import AppError
from gonghui_shared.identity import normalize_phone
from gonghui_shared.permissions import Action

ADMIN_PASSWORD = "admin-password-for-tests"
COUNTY_A = {"id": "00000000-0000-7000-8000-00000000000a", "path": "/A/", "name": "凤庆县总工会"}
VILLAGE_A = {
    "id": "00000000-0000-7000-8000-0000000000a1",
    "path": "/A/T/V/",
    "name": "东城社区工会",
}
COUNTY_B = {"id": "00000000-0000-7000-8000-00000000000b", "path": "/B/", "name": "云县总工会"}


@dataclass
class FakeMembership:
    """Membership as the gateway sees it over HTTP: orgs by id, active members by phone.

    It verifies the bearer token with the gateway's public key and applies the same
    permission and scope rules as membership, and it remembers every request.
    """

    app: FastAPI
    orgs: dict[str, dict[str, str]] = field(default_factory=dict)
    members: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # E.164 -> matches
    requests: list[httpx.Request] = field(default_factory=list)
    down: bool = False
    check_scope: bool = True  # False: answer like a membership that forgot its scope rules

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            principal: Principal = self.app.state.runtime.verifier.verify(token)
            return self._answer(request, principal)
        except AppError as exc:
            return httpx.Response(exc.status_code, json={"error": {"code": exc.code}})

    def _answer(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.startswith("/v1/orgs/"):
            org = self.orgs.get(path.removeprefix("/v1/orgs/"))
            if org is None:
                return httpx.Response(404, json={"error": {"code": "org_not_found"}})
            principal.require(Action.orgs_read, org["path"] if self.check_scope else None)
            return httpx.Response(200, json=org)
        if request.method == "POST" and path == "/v1/members/lookup":
            principal.require(Action.members_lookup)
            phone = normalize_phone(json.loads(request.content)["phone"])
            return httpx.Response(200, json={"members": self.members.get(phone, [])})
        return httpx.Response(404, json={"error": {"code": "not_found"}})

    def add_member(self, phone: str, member_no: str, org_id: str = VILLAGE_A["id"]) -> None:
        matches = self.members.setdefault(normalize_phone(phone), [])
        matches.append({"member_no": member_no, "org_id": org_id, "joined_on": "2026-01-01"})


@dataclass
class Gateway:
    """Drives the gateway's accounts API; `ok` asserts the status and returns the JSON."""

    client: httpx.AsyncClient
    app: FastAPI

    async def ok(
        self, method: str, url: str, *, token: str | None = None, expect: int = 200, **kw: Any
    ) -> Any:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.client.request(method, url, headers=headers, **kw)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    async def error(
        self, method: str, url: str, status: int, code: str, **kw: Any
    ) -> dict[str, Any]:
        """Expect the house error shape with this status and code; returns the error."""
        body = await self.ok(method, url, expect=status, **kw)
        assert body["error"]["code"] == code, body
        assert body["error"]["message"] and body["error"]["message_zh"]
        return dict(body["error"])

    async def login(self, username: str, password: str) -> dict[str, Any]:
        data = {"grant_type": "password", "username": username, "password": password}
        return dict(await self.ok("POST", "/v1/auth/token", data=data))

    async def refresh(self, refresh_token: str, expect: int = 200) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self.ok("POST", "/v1/auth/token", data=data, expect=expect)

    async def admin(self) -> str:
        """The first admin's access token (the account is created as `make run` does)."""
        settings = self.app.state.runtime.settings.model_copy(
            update={"admin_password": ADMIN_PASSWORD}
        )
        await create_first_admin(self.app.state.runtime.db, settings)
        return str((await self.login("admin", ADMIN_PASSWORD))["access_token"])

    async def account(
        self, token: str, username: str, role: str, org: dict[str, str] | None, **extra: Any
    ) -> dict[str, Any]:
        body = {"username": username, "password": f"{username}-password", "role": role}
        if org is not None:
            body["org_id"] = org["id"]
        return dict(
            await self.ok("POST", "/v1/accounts", token=token, json=body | extra, expect=201)
        )

    async def staff(self, token: str, username: str, role: str, org: dict[str, str]) -> str:
        """Create a staff account and return its access token."""
        await self.account(token, username, role, org)
        return str((await self.login(username, f"{username}-password"))["access_token"])
