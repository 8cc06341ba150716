"""Member cards (会员证): a JWT signed with the county seal, verifiable offline.

The seal is an Ed25519 key. A station that holds the public key
(`/v1/cards/public-key`) can check a card with no network; the live check
(`/v1/cards/verify`) adds what a signature cannot know: whether the membership
has ended since the card was issued. A card carries no ID number or phone.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.types import Options
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import keys
from gonghui_shared.auth import Principal
from gonghui_shared.errors import Conflict, Forbidden, NotFound
from gonghui_shared.permissions import Action, Role
from membership.admissions import repository
from membership.cards.schemas import CardCheck, Jwk, MemberCard, PublicKeySet, VerifyReason
from membership.config import MembershipSettings
from membership.members.models import Member, MemberStatus
from membership.orgs import repository as orgs_repository

ISSUER = "gonghui-membership"


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = "Member not found"
    message_zh = "会员不存在"


class MembershipNotActive(Conflict):
    code = "membership_not_active"
    message = "The membership has ended; no card is issued"
    message_zh = "该会员已不在册，不予发放会员证"


class NotYourCard(Forbidden):
    message = "A member may only fetch their own card"
    message_zh = "会员只能获取本人的会员证"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class CardSeal:
    """The county seal: the key that signs cards, and how long a card lasts."""

    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    kid: str
    valid_days: int = 365

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey, valid_days: int = 365) -> CardSeal:
        public_key = private_key.public_key()
        return cls(private_key, public_key, _thumbprint(public_key), valid_days)

    def jwk(self) -> Jwk:
        return Jwk(x=_b64url(_raw(self.public_key)), kid=self.kid)

    def public_key_set(self) -> PublicKeySet:
        return PublicKeySet(keys=[self.jwk()], pem=keys.public_pem(self.private_key))


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _thumbprint(public_key: Ed25519PublicKey) -> str:
    """The first 16 characters of the RFC 7638 JWK thumbprint: stable, derivable by any station."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:16]


def load_card_seal(settings: MembershipSettings) -> CardSeal:
    """The configured seal, or a generated dev seal (refused in production)."""
    pem = settings.card_signing_key or keys.dev_key(
        settings.data_dir, "card_ed25519.pem", keys.new_ed25519_pem, production=settings.production
    )
    return CardSeal.from_private_key(keys.load_private_key(pem), settings.card_valid_days)


def issue_card(
    seal: CardSeal,
    member: Member,
    org_name: str,
    valid_days: int,
    *,
    county_code: str | None = None,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """Sign a card for `member`; returns the token and when it stops verifying offline."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires_at = issued + timedelta(days=valid_days)
    claims = {
        "iss": ISSUER,
        "sub": member.member_no,
        "name": member.name,
        "org": org_name,
        # The number starts with the county that admitted the member.
        "county": county_code or member.member_no[:6],
        "category": member.category,
        "joined": member.joined_on.isoformat(),
        "iat": int(issued.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(claims, seal.private_key, algorithm="EdDSA", headers={"kid": seal.kid})
    return token, expires_at


async def card_for(
    session: AsyncSession, principal: Principal, seal: CardSeal, member_no: str
) -> MemberCard:
    """A fresh card for an active member: the member themself, or a role with the org in scope."""
    principal.require(Action.cards_read)
    if principal.role is Role.member and principal.member_no != member_no:
        raise NotYourCard()
    member = await repository.member_by_no(session, member_no)
    if member is None:
        raise MemberNotFound()
    if principal.role is not Role.member:
        principal.require(Action.cards_read, member.org_path)
    if member.status != MemberStatus.active:
        raise MembershipNotActive(details={"status": member.status})
    org = await orgs_repository.get(session, member.org_id)
    assert org is not None  # members.org_id is a foreign key
    token, expires_at = issue_card(
        seal, member, org.name, seal.valid_days, county_code=org.county_code
    )
    return MemberCard(member_no=member_no, token=token, expires_at=expires_at)


def _signed_claims(seal: CardSeal, token: str) -> tuple[VerifyReason, dict[str, object] | None]:
    """Check signature and expiry; an expired card's (genuine) claims are still returned."""
    options: Options = {"require": ["iss", "sub", "iat", "exp"]}
    try:
        return VerifyReason.ok, jwt.decode(
            token, seal.public_key, algorithms=["EdDSA"], issuer=ISSUER, options=options
        )
    except jwt.ExpiredSignatureError:
        # PyJWT checks the signature before the expiry, so these claims are authentic.
        claims = jwt.decode(
            token,
            seal.public_key,
            algorithms=["EdDSA"],
            issuer=ISSUER,
            options={**options, "verify_exp": False},
        )
        return VerifyReason.expired, claims
    except jwt.InvalidTokenError:
        return VerifyReason.bad_signature, None


async def check(session: AsyncSession, seal: CardSeal, token: str) -> CardCheck:
    """The live check a station makes: signature, expiry, membership still standing."""
    checked_at = datetime.now(UTC)
    reason, claims = _signed_claims(seal, token)
    if claims is None:
        return CardCheck(
            valid=False, member_no=None, status=None, reason=reason, checked_at=checked_at
        )
    member_no = str(claims["sub"])
    member = await repository.member_by_no(session, member_no)
    if member is None:
        reason = VerifyReason.unknown_member
    elif reason is VerifyReason.ok and member.status != MemberStatus.active:
        reason = VerifyReason.membership_ended
    return CardCheck(
        valid=reason is VerifyReason.ok,
        member_no=member_no,
        status=member.status if member else None,
        reason=reason,
        checked_at=checked_at,
    )
