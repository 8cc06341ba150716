"""Signing in and out: the password grant, refresh rotation, one-time codes, logout.

These functions own their transactions (they take the database, not a session):
some failures must leave a trace that survives the error answer, such as a
refresh-token family revoked on reuse or a wrong guess counted against a code.
Password hashing runs outside any transaction, in a thread.

Errors keep the house shape; `details.oauth_error` carries the RFC 6749 error code
for OAuth2 clients.

A sign-in comes without a principal, so it names its actor for the audit row: the
account once known, else what it was tried with (`username:…`, or a phone masked as
`phone:138****8000`), never the password, token or code.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import repository
from gateway.accounts.caller import Caller
from gateway.accounts.deps import AccountsState, secret_hash
from gateway.accounts.directory import MemberMatch
from gateway.accounts.models import Account, OtpCode, RefreshToken
from gateway.accounts.otp import new_code
from gateway.accounts.passwords import verify_password
from gateway.accounts.schemas import OtpAccepted, OtpVerify, TokenResponse
from gateway.accounts.service import normalise_phone, phone_columns, principal_of
from gateway.base import utcnow
from gonghui_shared.audit import note_actor
from gonghui_shared.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
)
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from gonghui_shared.pii import mask_phone

log = logging.getLogger(__name__)

REFRESH_PREFIX = "ghr_"
# The audit row's actor of a sign-in whose account is not known (yet).
USERNAME_ACTOR = "username:"
PHONE_ACTOR = "phone:"


def _oauth(error: str) -> dict[str, str]:
    return {"oauth_error": error}


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Wrong username or password"
    message_zh = "用户名或密码错误"


class AccountDisabled(Forbidden):
    code = "account_disabled"
    message = "This account is deactivated; ask your administrator"
    message_zh = "该账号已停用，请联系管理员"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "The refresh token is invalid, expired or already used; sign in again"
    message_zh = "刷新令牌无效、已过期或已使用，请重新登录"


class InvalidTokenRequest(BadRequest):
    code = "invalid_request"
    message = "The token request is missing a field its grant type needs"
    message_zh = "令牌请求缺少该授权类型所需的字段"


class UnsupportedGrantType(BadRequest):
    code = "unsupported_grant_type"
    message = "grant_type must be password or refresh_token"
    message_zh = "grant_type 只能是 password 或 refresh_token"


class NotASession(BadRequest):
    code = "not_a_session"
    message = "Only a signed-in person signs out; API keys are revoked at /v1/api-keys"
    message_zh = "只有登录用户可以退出；API 密钥请在 /v1/api-keys 撤销"


class InvalidCode(Unauthorized):
    code = "invalid_code"
    message = "The code is wrong or has expired; check it or request a new one"
    message_zh = "验证码错误或已过期，请核对或重新获取"


class TooManyAttempts(AppError):
    status_code = 429
    code = "too_many_attempts"
    message = "Too many wrong codes; request a new one"
    message_zh = "验证码错误次数过多，请重新获取"


class MemberChoiceRequired(Conflict):
    code = "member_choice_required"
    message = "Several members share this phone; send again with the member number to sign in as"
    message_zh = "该手机号对应多名会员，请注明会员编号后重新提交"


class CodeNotSent(ServiceUnavailable):
    code = "code_not_sent"
    message = "The code could not be sent; try again shortly"
    message_zh = "验证码发送失败，请稍后再试"


def _at(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


async def _grant(
    session: AsyncSession, state: AccountsState, account: Account, family_id: str | None
) -> TokenResponse:
    """An access token and a refresh token for the account, recorded as one grant."""
    note_actor(account.id, account.role, account.org_path)
    settings = state.settings
    family = family_id or new_id()
    issued = state.issuer.issue_token(
        principal_of(account), settings.access_token_ttl_seconds, claims={"sid": family}
    )
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            family_id=family,
            account_id=account.id,
            token_hash=secret_hash(refresh),
            access_jti=issued.jti,
            access_expires_at=_at(issued.expires_at),
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    await session.flush()
    return TokenResponse(
        access_token=issued.token,
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh,
    )


async def password_grant(state: AccountsState, username: str, password: str) -> TokenResponse:
    """Sign in with username and password; the same answer for a wrong password or user."""
    async with state.db.transaction() as session:
        account = await repository.account_by_username(session, username.lower())
        stored = account.password_hash if account is not None else None
        account_id = account.id if account is not None else None
    n = state.settings.password_scrypt_n
    if not await asyncio.to_thread(verify_password, password, stored, n=n) or not account_id:
        raise InvalidCredentials(details=_oauth("invalid_grant"))
    async with state.db.transaction() as session:
        account = await repository.account_by_id(session, account_id, lock=True)
        if account is None or account.password_hash != stored:  # changed while we checked
            raise InvalidCredentials(details=_oauth("invalid_grant"))
        if not account.active:
            raise AccountDisabled(details=_oauth("invalid_grant"))
        account.last_login_at = utcnow()
        return await _grant(session, state, account, None)


async def refresh_grant(state: AccountsState, refresh_token: str) -> TokenResponse:
    """Rotate: the refresh token is used up and a new pair issued in the same family.

    A refresh token presented a second time was copied: the whole family is revoked,
    with its live access tokens, so the thief and the owner both sign in again.
    """
    now = utcnow()
    revoked: list[tuple[str, datetime]] = []
    outcome: TokenResponse | AppError
    async with state.db.transaction() as session:
        grant = await repository.refresh_by_hash(session, secret_hash(refresh_token))
        if grant is not None:
            note_actor(grant.account_id)  # whose token it was, even when refused
        if grant is None or grant.revoked_at is not None:
            outcome = InvalidRefreshToken(details=_oauth("invalid_grant"))
        elif grant.used_at is not None or (
            grant.expires_at > now and not await repository.claim_refresh(session, grant.id, now)
        ):
            log.warning(
                "refresh token reused: family revoked",
                extra={"family_id": grant.family_id, "account_id": grant.account_id},
            )
            revoked = await repository.revoke_sessions(session, now, family_id=grant.family_id)
            outcome = InvalidRefreshToken(details=_oauth("invalid_grant"))
        elif grant.expires_at <= now:
            outcome = InvalidRefreshToken(details=_oauth("invalid_grant"))
        else:
            account = await repository.account_by_id(session, grant.account_id)
            if account is None or not account.active:
                revoked = await repository.revoke_sessions(session, now, family_id=grant.family_id)
                outcome = InvalidRefreshToken(details=_oauth("invalid_grant"))
            else:
                outcome = await _grant(session, state, account, grant.family_id)
    state.revocations.add(revoked)
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


async def sign_out(state: AccountsState, caller: Caller, refresh_token: str | None) -> None:
    """Revoke the presented access token and its login's refresh family (and `refresh_token`'s)."""
    if caller.token_id is None or caller.token_expires_at is None:
        raise NotASession()
    now = utcnow()
    tokens = {caller.token_id: _at(caller.token_expires_at)}
    async with state.db.transaction() as session:
        if caller.session_id is not None:
            tokens.update(
                await repository.revoke_sessions(session, now, family_id=caller.session_id)
            )
        if refresh_token:
            grant = await repository.refresh_by_hash(session, secret_hash(refresh_token))
            if grant is not None and grant.account_id == caller.principal.subject:
                tokens.update(
                    await repository.revoke_sessions(session, now, family_id=grant.family_id)
                )
        await repository.revoke_access_tokens(session, list(tokens.items()), now)
        await repository.forget_expired_revocations(session, now)
    state.revocations.add(tokens.items())


# -- one-time codes -------------------------------------------------------------------------


def _code_hash(state: AccountsState, code_id: str, code: str) -> str:
    # Keyed: a million codes are quickly tried against a plain hash taken from a backup.
    return state.pii.lookup_hash(f"otp:{code_id}:{code}")


async def send_code(state: AccountsState, phone_text: str) -> OtpAccepted:
    """Send a login code to the phone, whoever owns it (the answer never says)."""
    settings = state.settings
    phone = normalise_phone(phone_text)
    note_actor(PHONE_ACTOR + mask_phone(phone))
    phone_hash = state.pii.lookup_hash(phone)
    now = utcnow()
    accepted = OtpAccepted(expires_in=settings.otp_ttl_seconds)
    code = new_code()
    async with state.db.transaction() as session:
        last = await repository.latest_code(session, phone_hash)
        if (
            last is not None
            and last.consumed_at is None
            and now - last.created_at < timedelta(seconds=settings.otp_resend_seconds)
        ):
            return accepted  # the code sent a moment ago is still good; no message storm
        await repository.supersede_codes(session, phone_hash, now)
        row = OtpCode(
            id=new_id(),
            phone_hash=phone_hash,
            attempts=0,
            expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        )
        row.code_hash = _code_hash(state, row.id, code)
        session.add(row)
    try:
        await state.sender.send(phone, code)
    except Exception as exc:  # noqa: BLE001 - any sender failure is the same 503
        # The exception's text might quote the message, and with it the code: name it only.
        log.error("one-time code not sent: %s", type(exc).__name__)
        raise CodeNotSent() from None
    return accepted


def _choose(matches: list[MemberMatch], wanted: str | None) -> str | None:
    """The member number to sign in as: none for an applicant, else the one (or chosen) match."""
    if not matches:
        return None
    numbers = [m.member_no for m in matches]
    if wanted in numbers:
        return wanted
    if len(numbers) == 1 and wanted is None:
        return numbers[0]
    raise MemberChoiceRequired(details={"member_nos": numbers})


async def verify_code(state: AccountsState, body: OtpVerify) -> TokenResponse:
    """Sign a mobile user in with the code: a member, or an applicant without member number."""
    settings = state.settings
    phone = normalise_phone(body.phone)
    note_actor(PHONE_ACTOR + mask_phone(phone))
    phone_hash = state.pii.lookup_hash(phone)
    now = utcnow()
    failure: AppError | None = None
    async with state.db.transaction() as session:  # the guess is counted even when wrong
        row = await repository.latest_code(session, phone_hash)
        if row is None or row.consumed_at is not None or row.expires_at <= now:
            failure = InvalidCode()
        elif not await repository.take_attempt(session, row.id, now, settings.otp_max_attempts):
            failure = TooManyAttempts()
        elif not hmac.compare_digest(row.code_hash, _code_hash(state, row.id, body.code)):
            failure = InvalidCode()
    if failure is not None or row is None:
        raise failure or InvalidCode()
    code_id = row.id
    member_no = _choose(await state.directory.members_by_phone(phone), body.member_no)
    async with state.db.transaction() as session:
        if not await repository.consume_code(session, code_id, utcnow()):
            raise InvalidCode()  # a concurrent request used it first
        account = await _mobile_account(session, phone_columns(state.pii, phone))
        if not account.active:
            raise AccountDisabled()
        account.member_no = member_no
        account.last_login_at = utcnow()
        return await _grant(session, state, account, None)


async def _mobile_account(session: AsyncSession, phone: dict[str, str]) -> Account:
    """The phone's login account, created on its first login."""
    account = await repository.mobile_account(session, phone["phone_hash"])
    if account is not None:
        return account
    account = Account(
        role=Role.member.value,
        phone_encrypted=phone["phone_encrypted"],
        phone_hash=phone["phone_hash"],
        phone_masked=phone["phone_masked"],
        active=True,
        created_by="otp",
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError:  # the same phone's first login, twice at once: use the other one
        found = await repository.mobile_account(session, phone["phone_hash"])
        assert found is not None
        return found
    return account
