"""`/v1/auth/…`, `/v1/accounts`, `/v1/api-keys` and the JWKS: signing in, and who may."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, status

from gateway.accounts import service, tokens
from gateway.accounts.caller import CallerDep
from gateway.accounts.deps import AccountsDep
from gateway.accounts.schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    OtpAccepted,
    OtpRequest,
    OtpVerify,
    TokenResponse,
)
from gateway.limits import get_limits
from gonghui_shared.audit import note_actor
from gonghui_shared.deps import PageDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from gonghui_shared.keys import public_jwk
from gonghui_shared.pagination import PageOut, page_of
from gonghui_shared.permissions import Role

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


@router.post("/v1/auth/token")
async def issue_token(
    state: AccountsDep,
    request: Request,
    response: Response,
    grant_type: Annotated[str, Form(examples=["password"])],
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=128)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(description="ignored: a token carries its role")] = None,
) -> TokenResponse:
    """Sign in (OAuth2 password grant) or renew (refresh_token grant; the old one is used up)."""
    response.headers.update(_NO_STORE)
    if grant_type == "password" and username and username.isprintable():
        note_actor(tokens.USERNAME_ACTOR + username.lower())  # replaced once signed in
    get_limits(request).token(request, username if grant_type == "password" else None)
    if grant_type == "password":
        if not username or not password or "\x00" in username:
            raise tokens.InvalidTokenRequest(details={"oauth_error": "invalid_request"})
        return await tokens.password_grant(state, username, password)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise tokens.InvalidTokenRequest(details={"oauth_error": "invalid_request"})
        return await tokens.refresh_grant(state, refresh_token)
    raise tokens.UnsupportedGrantType(details={"oauth_error": "unsupported_grant_type"})


@router.post("/v1/auth/revoke", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(
    state: AccountsDep,
    caller: CallerDep,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Sign out: the presented access token and its login's refresh tokens stop working."""
    await tokens.sign_out(state, caller, refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/auth/otp", status_code=status.HTTP_202_ACCEPTED)
async def request_code(state: AccountsDep, body: OtpRequest, request: Request) -> OtpAccepted:
    """Send a six-digit login code to a phone; the answer is the same for any phone."""
    get_limits(request).otp(request, body.phone)
    return await tokens.send_code(state, body.phone)


@router.post("/v1/auth/otp/verify")
async def verify_code(
    state: AccountsDep, body: OtpVerify, request: Request, response: Response
) -> TokenResponse:
    """Sign in with the code: as the member owning the phone, or as an applicant if none."""
    get_limits(request).otp(request, body.phone)
    response.headers.update(_NO_STORE)
    return await tokens.verify_code(state, body)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request, state: AccountsDep, response: Response) -> dict[str, Any]:
    """The public keys that verify access tokens (RFC 7517; OKP/Ed25519, each with its kid):
    first the one that signs them, then any accepted beside it while keys rotate
    (`GONGHUI_JWT_ACCEPTED_PUBLIC_KEYS`)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    signing = public_jwk(state.issuer.public_key)
    accepted = [public_jwk(key) for key in request.app.state.runtime.verifier.public_keys]
    return {"keys": [signing, *(jwk for jwk in accepted if jwk["kid"] != signing["kid"])]}


@router.post("/v1/accounts", status_code=status.HTTP_201_CREATED)
async def create_account(
    body: AccountCreate, caller: CallerDep, state: AccountsDep, session: SessionDep
) -> AccountRead:
    """Create a staff account in your org subtree (platform admins: anywhere)."""
    return service.to_read(await service.create_account(session, state, caller, body))


@router.get("/v1/accounts")
async def list_accounts(
    caller: CallerDep,
    session: SessionDep,
    page: PageDep,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="only active or deactivated")] = None,
) -> PageOut[AccountRead]:
    """Accounts in your org subtree; platform admins also see platform and phone accounts."""
    rows = await service.list_accounts(
        session, caller.principal, role=role, active=active, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.to_read(a) for a in items], next_cursor=next_cursor)


@router.patch("/v1/accounts/{account_id}")
async def update_account(
    account_id: str,
    body: AccountUpdate,
    caller: CallerDep,
    state: AccountsDep,
    session: SessionDep,
) -> AccountRead:
    """Deactivate, reset the password, or change role or org (which signs the account out)."""
    account = await service.update_account(session, state, caller, account_id, body)
    return service.to_read(account)


@router.post("/v1/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, caller: CallerDep, state: AccountsDep, session: SessionDep
) -> ApiKeyCreated:
    """Create a government system's key with named scopes; the secret is shown only here."""
    key, secret = await service.create_key(session, state, caller, body)
    return ApiKeyCreated(**service.key_to_read(key).model_dump(), secret=secret)


@router.get("/v1/api-keys")
async def list_api_keys(
    caller: CallerDep,
    session: SessionDep,
    page: PageDep,
    revoked: Annotated[bool | None, Query(description="only revoked, or only usable keys")] = None,
) -> PageOut[ApiKeyRead]:
    """API keys of your org subtree (never their secrets)."""
    rows = await service.list_keys(
        session, caller.principal, revoked=revoked, cursor=page.cursor, limit=page.limit
    )
    items, next_cursor = page_of(rows, page.limit)
    return PageOut(items=[service.key_to_read(k) for k in items], next_cursor=next_cursor)


@router.post("/v1/api-keys/{key_id}/revoke")
async def revoke_api_key(
    key_id: str, caller: CallerDep, state: AccountsDep, session: SessionDep
) -> ApiKeyRead:
    """Revoke a key: it stops working at once on this gateway, within seconds on the others."""
    key = await service.revoke_key(session, state, caller.principal, key_id)
    return service.key_to_read(key)
