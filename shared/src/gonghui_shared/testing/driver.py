"""Drive a service's API over HTTP as different principals, in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from gonghui_shared.permissions import Role
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing import auth_header, token_for


@dataclass
class ApiDriver:
    """Requests as a role with an org scope; `ok` asserts the status and returns the JSON."""

    client: httpx.AsyncClient
    settings: ServiceSettings

    def headers(
        self, role: Role | str, org: dict[str, Any] | None = None, **claims: Any
    ) -> dict[str, str]:
        return auth_header(
            token_for(
                self.settings,
                role,
                org_id=org["id"] if org else None,
                org_path=org["path"] if org else None,
                **claims,
            )
        )

    @property
    def platform(self) -> dict[str, str]:
        return self.headers(Role.platform_admin)

    async def ok(
        self,
        method: str,
        url: str,
        *,
        as_: dict[str, str] | None = None,
        expect: int = 200,
        **kw: Any,
    ) -> Any:
        response = await self.client.request(method, url, headers=as_ or self.platform, **kw)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None
