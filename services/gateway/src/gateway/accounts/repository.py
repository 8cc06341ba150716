"""Queries on accounts, refresh tokens, revoked tokens, API keys and one-time codes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Update, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.models import Account, ApiKey, OtpCode, RefreshToken, RevokedToken
from gonghui_shared.db import insert_ignoring_conflicts
from gonghui_shared.pagination import paginate


async def _changed(session: AsyncSession, statement: Update) -> int:
    """Run an UPDATE and say how many rows it changed (the guard of a compare-and-set)."""
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount or 0)


# -- accounts -------------------------------------------------------------------------------


async def account_by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.username == username))


async def account_by_id(
    session: AsyncSession, account_id: str, *, lock: bool = False
) -> Account | None:
    query = select(Account).where(Account.id == account_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def mobile_account(session: AsyncSession, phone_hash: str) -> Account | None:
    """The phone-login account of this phone (staff accounts with the phone are not it)."""
    return await session.scalar(
        select(Account).where(Account.phone_hash == phone_hash, Account.username.is_(None))
    )


async def list_accounts(
    session: AsyncSession,
    *,
    within_path: str | None,
    role: str | None,
    active: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Account]:
    query = select(Account)
    if within_path is not None:
        query = query.where(Account.org_path.startswith(within_path, autoescape=True))
    if role is not None:
        query = query.where(Account.role == role)
    if active is not None:
        query = query.where(Account.active == active)
    return (await session.scalars(paginate(query, Account.id, cursor, limit))).all()


# -- refresh tokens -------------------------------------------------------------------------


async def refresh_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


async def claim_refresh(session: AsyncSession, grant_id: str, now: datetime) -> bool:
    """Mark the refresh token used, if nobody did first (two racing refreshes: one wins)."""
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.id == grant_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    return await _changed(session, statement) == 1


async def revoke_grants(
    session: AsyncSession,
    now: datetime,
    *,
    family_id: str | None = None,
    account_id: str | None = None,
) -> list[tuple[str, datetime]]:
    """Revoke a family (or every family of an account); returns its live access tokens."""
    where = (
        [RefreshToken.family_id == family_id]
        if family_id is not None
        else [RefreshToken.account_id == account_id]
    )
    live = await session.execute(
        select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
            *where, RefreshToken.access_expires_at > now
        )
    )
    tokens = [(row.access_jti, row.access_expires_at) for row in live]
    await session.execute(
        update(RefreshToken).where(*where, RefreshToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return tokens


async def revoke_sessions(
    session: AsyncSession,
    now: datetime,
    *,
    family_id: str | None = None,
    account_id: str | None = None,
) -> list[tuple[str, datetime]]:
    """Revoke a family (or all of an account's) and its live access tokens; returns those."""
    tokens = await revoke_grants(session, now, family_id=family_id, account_id=account_id)
    await revoke_access_tokens(session, tokens, now)
    return tokens


# -- revoked access tokens ------------------------------------------------------------------


async def revoke_access_tokens(
    session: AsyncSession, tokens: Sequence[tuple[str, datetime]], now: datetime
) -> None:
    if not tokens:
        return
    rows = [{"jti": jti, "expires_at": exp, "revoked_at": now} for jti, exp in tokens]
    await session.execute(insert_ignoring_conflicts(session, RevokedToken.__table__), rows)


async def forget_expired_revocations(session: AsyncSession, now: datetime) -> None:
    """An expired token is refused anyway: its revocation row has done its work."""
    await session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))


async def live_revoked_jtis(session: AsyncSession, now: datetime) -> Sequence[str]:
    return (
        await session.scalars(select(RevokedToken.jti).where(RevokedToken.expires_at > now))
    ).all()


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    return await session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


# -- API keys -------------------------------------------------------------------------------


async def key_by_secret_hash(session: AsyncSession, secret_hash: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash))


async def key_by_id(session: AsyncSession, key_id: str, *, lock: bool = False) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.id == key_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def list_keys(
    session: AsyncSession,
    *,
    within_path: str | None,
    revoked: bool | None,
    cursor: str | None,
    limit: int,
) -> Sequence[ApiKey]:
    query = select(ApiKey)
    if within_path is not None:
        query = query.where(ApiKey.org_path.startswith(within_path, autoescape=True))
    if revoked is not None:
        query = query.where(
            ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None)
        )
    return (await session.scalars(paginate(query, ApiKey.id, cursor, limit))).all()


# -- one-time codes -------------------------------------------------------------------------


async def latest_code(session: AsyncSession, phone_hash: str) -> OtpCode | None:
    return await session.scalar(
        select(OtpCode)
        .where(OtpCode.phone_hash == phone_hash)
        .order_by(OtpCode.created_at.desc(), OtpCode.id.desc())
        .limit(1)
    )


async def supersede_codes(session: AsyncSession, phone_hash: str, now: datetime) -> None:
    """A new code makes the older ones of the phone useless."""
    await session.execute(
        update(OtpCode)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )


async def take_attempt(session: AsyncSession, code_id: str, now: datetime, limit: int) -> bool:
    """Count one guess against a live code, unless its guesses are used up."""
    statement = (
        update(OtpCode)
        .where(
            OtpCode.id == code_id,
            OtpCode.attempts < limit,
            OtpCode.consumed_at.is_(None),
            OtpCode.expires_at > now,
        )
        .values(attempts=OtpCode.attempts + 1)
    )
    return await _changed(session, statement) == 1


async def consume_code(session: AsyncSession, code_id: str, now: datetime) -> bool:
    statement = (
        update(OtpCode)
        .where(OtpCode.id == code_id, OtpCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    return await _changed(session, statement) == 1
