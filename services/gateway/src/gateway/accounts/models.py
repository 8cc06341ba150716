"""Accounts, refresh tokens, revoked access tokens, API keys and one-time login codes.

Nothing secret is stored in the clear: passwords as scrypt hashes, refresh tokens,
API keys and one-time codes as hashes, phones encrypted with a keyed hash for lookup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import BYTEWISE_PATH, Base, Timestamped, id_column, utcnow


class Account(Timestamped, Base):
    """A person who signs in: staff by username and password, mobile members by phone and code.

    Mobile accounts have no username or password; they are created at the first login by
    one-time code, one per phone, always with the role `member`.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        Index(
            "uq_accounts_mobile_phone",
            "phone_hash",
            unique=True,
            sqlite_where=text("username IS NULL"),
            postgresql_where=text("username IS NULL"),
        ),
    )

    id: Mapped[str] = id_column()
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    org_id: Mapped[str | None] = mapped_column(String(36))
    org_path: Mapped[str | None] = mapped_column(BYTEWISE_PATH, index=True)
    member_no: Mapped[str | None] = mapped_column(String(16))
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str | None] = mapped_column(String(100))
    last_login_at: Mapped[datetime | None]


class RefreshToken(Base):
    """One grant: a refresh token and the access token issued with it.

    Tokens of one login form a family; each refresh uses one up and adds the next. A
    used token presented again means it leaked: the whole family is revoked, with the
    access tokens of the family that have not expired yet.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = id_column()
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    access_jti: Mapped[str] = mapped_column(String(36))
    access_expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RevokedToken(Base):
    """An access token refused until it expires; the row may go once it has."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A government system's key: a role of gov_system, an org scope and named scopes."""

    __tablename__ = "api_keys"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # ApiScope values, space separated
    org_id: Mapped[str] = mapped_column(String(36))
    org_path: Mapped[str] = mapped_column(BYTEWISE_PATH, index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))


class OtpCode(Base):
    """A one-time login code sent to a phone; a newer code supersedes the older ones."""

    __tablename__ = "otp_codes"

    id: Mapped[str] = id_column()
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
