"""Who is calling the gateway, and the token to show the services on their behalf.

The one place that resolves the caller. A caller presents either

* a bearer JWT (a person): verified with the gateway's key and refused if its `jti`
  was revoked (logout, deactivation, refresh-token reuse); the services get the
  same token; or
* an `X-API-Key` header (another government system): looked up by hash, refused if
  revoked; the principal is gov_system with the key's org scope and named scopes,
  and the services get a short-lived JWT minted for this call.

Routed calls carry `upstream_token` to the services, which verify it themselves. The
principal is also left on the request, for the gateway's audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.accounts.deps import get_accounts
from gateway.limits import get_limits
from gonghui_shared.auth import Principal, TokenVerifier, bearer_token
from gonghui_shared.errors import Unauthorized


class TokenRevoked(Unauthorized):
    code = "token_revoked"
    message = "The token was revoked; sign in again"
    message_zh = "令牌已被撤销，请重新登录"


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    message = "The API key is unknown or revoked"
    message_zh = "API 密钥无效或已被撤销"


class AmbiguousCredentials(Unauthorized):
    code = "ambiguous_credentials"
    message = "Present either a bearer token or an API key, not both"
    message_zh = "请只提供访问令牌或 API 密钥其中之一"


@dataclass(frozen=True)
class Caller:
    principal: Principal
    upstream_token: str
    # For a bearer token: its id and expiry (seconds since the epoch), and the login
    # (refresh-token family) it came from, so logout can revoke them. None for an API key.
    token_id: str | None = None
    token_expires_at: int | None = None
    session_id: str | None = None


_bearer = HTTPBearer(auto_error=False, description="JWT from POST /v1/auth/token")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="a government system's key (POST /v1/api-keys)"
)
_API_KEY_HEADER = _api_key.model.name.lower().encode("latin-1")  # as ASGI servers give it


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Caller:
    return await _caller(request, None if credentials is None else credentials.credentials, api_key)


async def _caller(request: Request, bearer: str | None, api_key: str | None) -> Caller:
    state = get_accounts(request)
    if bearer is not None and api_key:
        raise AmbiguousCredentials()
    if api_key:
        principal = await state.api_keys.principal(api_key)
        if principal is None:
            raise InvalidApiKey()
        request.state.principal = principal  # who the audit row names
        get_limits(request).caller(principal.subject)
        upstream = state.issuer.issue(principal, state.settings.upstream_token_ttl_seconds)
        return Caller(principal=principal, upstream_token=upstream)
    if bearer is None:
        raise Unauthorized()
    verifier: TokenVerifier = request.app.state.runtime.verifier
    token = verifier.decode(bearer)
    if token.jti is None:
        raise Unauthorized("The token has no id and cannot be revoked", "令牌缺少编号，无法撤销")
    if await state.revocations.is_revoked(token.jti):
        raise TokenRevoked()
    request.state.principal = token.principal  # who the audit row names
    get_limits(request).caller(token.principal.subject)
    session_id = token.claims.get("sid")
    return Caller(
        principal=token.principal,
        upstream_token=bearer,
        token_id=token.jti,
        token_expires_at=token.expires_at,
        session_id=session_id if isinstance(session_id, str) else None,
    )


CallerDep = Annotated[Caller, Depends(current_caller)]


async def caller_of(request: Request) -> Caller:
    """The caller exactly as `CallerDep` resolves it, without FastAPI's dependency
    machinery: for the routed calls, the gateway's bulk, where that machinery cost more
    than the rest of knowing who calls. (Their documents name the same security schemes,
    `SECURITY`.)"""
    return await _caller(request, bearer_token(request), _api_key_of(request))


def _api_key_of(request: Request) -> str | None:
    """The `X-API-Key` header as `_api_key` reads it (the first one; none if empty), from
    the raw headers. `_api_key` asks `headers.get`, which looks up the header and, when it
    is missing, as it is on every call with a token, raises and catches a KeyError: a
    twentieth of the gateway's CPU time per cached dashboard answer."""
    for name, value in request.scope["headers"]:
        if name == _API_KEY_HEADER:
            return value.decode("latin-1") or None
    return None


# The OpenAPI security requirement of a route that takes `CallerDep`, for a route that
# resolves its caller with `caller_of`.
SECURITY: list[dict[str, list[str]]] = [{_bearer.scheme_name: []}, {_api_key.scheme_name: []}]


async def caller_principal(caller: CallerDep) -> Principal:
    """The caller's principal, for endpoints shared with the services (`GET /v1/audit`):
    resolved as every gateway call is, revocation checked and API keys accepted."""
    return caller.principal
