"""The first account, made by `gonghui-gateway create-admin` (which `make run` calls).

It is a platform admin, not a county admin: on a fresh installation no county
exists yet (membership creates it, and a county admin's scope is a county's org),
so the first person must act above every county. They create the county in
membership, then county admin accounts scoped to it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from gateway.accounts import repository
from gateway.accounts.models import Account
from gateway.accounts.passwords import hash_password
from gateway.config import GatewaySettings
from gonghui_shared.db import Database
from gonghui_shared.permissions import Role

ADMIN_USERNAME = "admin"
MIN_PASSWORD = 10


@dataclass(frozen=True)
class AdminOutcome:
    created: bool
    generated_password: str | None  # only when created without GONGHUI_ADMIN_PASSWORD


async def create_first_admin(db: Database, settings: GatewaySettings) -> AdminOutcome:
    """Create `admin` unless an account of that name exists (then change nothing)."""
    async with db.transaction() as session:
        if await repository.account_by_username(session, ADMIN_USERNAME) is not None:
            return AdminOutcome(created=False, generated_password=None)
    generated = None
    password = settings.admin_password
    if not password:
        password = generated = secrets.token_urlsafe(18)
    elif len(password) < MIN_PASSWORD:
        raise ValueError(f"GONGHUI_ADMIN_PASSWORD must have at least {MIN_PASSWORD} characters")
    password_hash = await asyncio.to_thread(hash_password, password, n=settings.password_scrypt_n)
    try:
        async with db.transaction() as session:
            session.add(
                Account(
                    username=ADMIN_USERNAME,
                    password_hash=password_hash,
                    role=Role.platform_admin.value,
                    active=True,
                    created_by="gonghui-gateway create-admin",
                )
            )
    except IntegrityError:  # another create-admin won the race; theirs stands
        return AdminOutcome(created=False, generated_password=None)
    return AdminOutcome(created=True, generated_password=generated)
