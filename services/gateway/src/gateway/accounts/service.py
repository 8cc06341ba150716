"""Accounts and API keys: who may create and change them, and where.

The rules: accounts and API keys are managed by platform admins everywhere and by
county admins inside their own org subtree (`accounts.write`, `api_keys.write`).
Only a platform admin makes a platform admin. An account's org is resolved by
membership with the caller's own token, so both sides apply the scope. Staff
accounts have one of the staff roles; members sign in by phone (their accounts
appear at the first login) and government systems use API keys.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import repository
from gateway.accounts.caller import Caller
from gateway.accounts.deps import AccountsState, key_scopes, secret_hash
from gateway.accounts.models import Account, ApiKey
from gateway.accounts.passwords import hash_password
from gateway.accounts.schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    ApiKeyCreate,
    ApiKeyRead,
)
from gateway.base import utcnow
from gonghui_shared.auth import Principal
from gonghui_shared.errors import Conflict, Forbidden, NotFound, OutOfScope, Unprocessable
from gonghui_shared.identity import InvalidPhone, normalize_phone
from gonghui_shared.permissions import Action, Role
from gonghui_shared.pii import PiiCipher, mask_phone

STAFF_ROLES = (Role.platform_admin, Role.county_admin, Role.org_chair, Role.station_operator)
API_KEY_PREFIX = "ghk_"


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "Account not found"
    message_zh = "账号不存在"


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "Another account has this username"
    message_zh = "该用户名已被使用"


class RoleNotAssignable(Unprocessable):
    code = "role_not_assignable"
    message = (
        "Accounts are for staff (platform_admin, county_admin, org_chair, station_operator): "
        "members sign in by phone and government systems use API keys"
    )
    message_zh = "账号仅用于工作人员；会员通过手机号登录，政府系统使用 API 密钥"


class OrgRequired(Unprocessable):
    code = "org_required"
    message = "This role acts for an org: give org_id"
    message_zh = "该角色需要指定所属组织（org_id）"


class PlatformAdminHasNoOrg(Unprocessable):
    code = "platform_admin_has_no_org"
    message = "A platform admin acts for every county and has no org"
    message_zh = "平台管理员管理所有县，不属于某个组织"


class OwnAccount(Conflict):
    code = "own_account"
    message = "You may not deactivate your own account or change your own role or org"
    message_zh = "不能停用自己的账号或修改自己的角色、组织"


class PhoneAccount(Conflict):
    code = "phone_account"
    message = "A phone-login account stays a member's and has no password"
    message_zh = "手机号登录的账号只能是会员账号，且没有密码"


class InvalidPhoneNumber(Unprocessable):
    code = "invalid_phone"
    message = "The phone number is not valid"
    message_zh = "手机号码无效"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    message = "API key not found"
    message_zh = "API 密钥不存在"


def normalise_phone(text: str) -> str:
    """The phone in E.164, as membership stores it, or a 422 naming the field."""
    try:
        return normalize_phone(text)
    except InvalidPhone as exc:
        raise InvalidPhoneNumber(exc.message, exc.message_zh, details={"field": "phone"}) from None


def phone_columns(pii: PiiCipher, phone: str) -> dict[str, str]:
    """An E.164 phone as stored: encrypted, keyed hash for lookup, masked for display."""
    return {
        "phone_encrypted": pii.encrypt(phone),
        "phone_hash": pii.lookup_hash(phone),
        "phone_masked": mask_phone(phone),
    }


def principal_of(account: Account) -> Principal:
    return Principal(
        subject=account.id,
        role=Role(account.role),
        org_id=account.org_id,
        org_path=account.org_path,
        member_no=account.member_no,
    )


def to_read(account: Account) -> AccountRead:
    return AccountRead(
        id=account.id,
        username=account.username,
        role=Role(account.role),
        org_id=account.org_id,
        org_path=account.org_path,
        member_no=account.member_no,
        phone=account.phone_masked,
        active=account.active,
        created_by=account.created_by,
        last_login_at=account.last_login_at,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action()` once the request's transaction has committed (never if it rolls back)."""
    event.listen(session.sync_session, "after_commit", lambda _: action(), once=True)


async def _placement(
    state: AccountsState, caller: Caller, role: Role, org_id: str | None, action: Action
) -> tuple[str | None, str | None]:
    """The org id and path an account of `role` gets, if the caller may place it there."""
    principal = caller.principal
    if role is Role.platform_admin:
        if principal.role is not Role.platform_admin:
            raise Forbidden(
                "Only a platform admin may make a platform admin",
                "只有平台管理员可以设置平台管理员",
            )
        if org_id is not None:
            raise PlatformAdminHasNoOrg(details={"field": "org_id"})
        return None, None
    if role not in STAFF_ROLES:
        raise RoleNotAssignable(details={"field": "role"})
    if not org_id:
        raise OrgRequired(details={"field": "org_id"})
    org = await state.directory.org(org_id, caller.upstream_token)
    principal.require(action, org.path)
    return org.id, org.path


def _require_manages(principal: Principal, account: Account) -> None:
    """Accounts without an org (platform admins, phone logins) are the platform's to manage."""
    principal.require(Action.accounts_write)
    if account.org_path is None:
        if principal.role is not Role.platform_admin:
            raise OutOfScope()
    else:
        principal.require(Action.accounts_write, account.org_path)


async def create_account(
    session: AsyncSession, state: AccountsState, caller: Caller, body: AccountCreate
) -> Account:
    caller.principal.require(Action.accounts_write)
    org_id, org_path = await _placement(
        state, caller, body.role, body.org_id, Action.accounts_write
    )
    if await repository.account_by_username(session, body.username) is not None:
        raise UsernameTaken(details={"field": "username"})
    password_hash = await asyncio.to_thread(
        hash_password, body.password, n=state.settings.password_scrypt_n
    )
    phone = phone_columns(state.pii, normalise_phone(body.phone)) if body.phone else {}
    account = Account(
        username=body.username,
        password_hash=password_hash,
        role=body.role.value,
        org_id=org_id,
        org_path=org_path,
        member_no=body.member_no,
        active=True,
        created_by=caller.principal.subject,
        **phone,
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:  # the same username, created a moment ago
        raise UsernameTaken(details={"field": "username"}) from None
    return account


async def list_accounts(
    session: AsyncSession,
    principal: Principal,
    *,
    role: Role | None,
    active: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Account]:
    principal.require(Action.accounts_write)
    within = None
    if principal.role is not Role.platform_admin:
        if principal.org_path is None:
            raise OutOfScope()
        within = principal.org_path
    return await repository.list_accounts(
        session,
        within_path=within,
        role=role.value if role else None,
        active=active,
        cursor=cursor,
        limit=limit,
    )


async def update_account(
    session: AsyncSession,
    state: AccountsState,
    caller: Caller,
    account_id: str,
    body: AccountUpdate,
) -> Account:
    """Deactivate, reset the password, move role or org; any of these but reactivation signs
    the account out everywhere."""
    principal = caller.principal
    principal.require(Action.accounts_write)
    account = await repository.account_by_id(session, account_id, lock=True)
    if account is None:
        raise AccountNotFound()
    _require_manages(principal, account)
    own = account.id == principal.subject
    sign_out = False

    if body.role is not None or body.org_id is not None:
        role = body.role or Role(account.role)
        if account.username is None:
            raise PhoneAccount(details={"field": "role"})
        keep_org = account.org_id if role is not Role.platform_admin else None
        org_id, org_path = await _placement(
            state, caller, role, body.org_id or keep_org, Action.accounts_write
        )
        if (role.value, org_id) != (account.role, account.org_id):
            if own:
                raise OwnAccount()
            account.role, account.org_id, account.org_path = role.value, org_id, org_path
            sign_out = True

    if body.password is not None:
        if account.username is None:
            raise PhoneAccount(details={"field": "password"})
        account.password_hash = await asyncio.to_thread(
            hash_password, body.password, n=state.settings.password_scrypt_n
        )
        sign_out = True

    if body.active is not None and body.active != account.active:
        if own:
            raise OwnAccount()
        account.active = body.active
        sign_out = sign_out or not body.active

    if sign_out:
        revoked = await repository.revoke_sessions(session, utcnow(), account_id=account.id)
        after_commit(session, lambda: state.revocations.add(revoked))
    account.updated_at = utcnow()
    await session.flush()
    return account


# -- API keys -------------------------------------------------------------------------------


def key_to_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=key_scopes(key),
        org_id=key.org_id,
        org_path=key.org_path,
        created_by=key.created_by,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        revoked_by=key.revoked_by,
    )


async def create_key(
    session: AsyncSession, state: AccountsState, caller: Caller, body: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is stored only as a hash."""
    principal = caller.principal
    principal.require(Action.api_keys_write)
    if body.org_id is not None:
        org = await state.directory.org(body.org_id, caller.upstream_token)
        org_id, org_path = org.id, org.path
    elif principal.org_id is not None and principal.org_path is not None:
        org_id, org_path = principal.org_id, principal.org_path
    else:
        raise OrgRequired(details={"field": "org_id"})
    principal.require(Action.api_keys_write, org_path)
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=body.name,
        prefix=secret[:12],
        secret_hash=secret_hash(secret),
        scopes=" ".join(scope.value for scope in body.scopes),
        org_id=org_id,
        org_path=org_path,
        created_by=principal.subject,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def list_keys(
    session: AsyncSession,
    principal: Principal,
    *,
    revoked: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[ApiKey]:
    principal.require(Action.api_keys_write)
    within = None
    if principal.role is not Role.platform_admin:
        if principal.org_path is None:
            raise OutOfScope()
        within = principal.org_path
    return await repository.list_keys(
        session, within_path=within, revoked=revoked, cursor=cursor, limit=limit
    )


async def revoke_key(
    session: AsyncSession, state: AccountsState, principal: Principal, key_id: str
) -> ApiKey:
    """Revoke the key for good; revoking it again changes nothing."""
    principal.require(Action.api_keys_write)
    key = await repository.key_by_id(session, key_id, lock=True)
    if key is None:
        raise ApiKeyNotFound()
    principal.require(Action.api_keys_write, key.org_path)
    if key.revoked_at is None:
        now: datetime = utcnow()
        key.revoked_at, key.revoked_by = now, principal.subject
        await session.flush()
        after_commit(session, lambda: state.api_keys.evict(key_id))
    return key
