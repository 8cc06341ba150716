"""Who is calling the gateway, and the token to show the services on their behalf.

A caller presents a bearer JWT (a person) or an API key (another government system).
Routed calls carry `upstream_token` to the services, which verify it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gonghui_shared.auth import Principal, TokenVerifier
from gonghui_shared.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    principal: Principal
    upstream_token: str


_bearer = HTTPBearer(auto_error=False, description="JWT from POST /v1/auth/token")


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise Unauthorized()
    verifier: TokenVerifier = request.app.state.runtime.verifier
    principal = verifier.verify(credentials.credentials)
    return Caller(principal=principal, upstream_token=credentials.credentials)


CallerDep = Annotated[Caller, Depends(current_caller)]
