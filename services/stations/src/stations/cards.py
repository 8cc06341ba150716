"""Member cards (会员证) verified offline, with membership's public key: no call to membership.

Membership signs each card with the county seal (an Ed25519 key, EdDSA JWT, claims
iss "gonghui-membership", sub = member number, county, category, iat, exp). A station
holds only the public key: `STATIONS_CARD_PUBLIC_KEY`, or in development the shared dev
key file membership signs with (`<data_dir>/dev-keys/card_ed25519.pem`). What a
signature cannot say, whether the membership has ended since the card was issued,
comes from the member replica (membership's events), again without a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, Request
from jwt.types import Options

from gonghui_shared import keys
from gonghui_shared.errors import Unprocessable
from stations.config import StationsSettings

ISSUER = "gonghui-membership"  # membership's cards/service.py
CARD_KEY_FILE = "card_ed25519.pem"  # the dev seal membership generates and signs with
MAX_TOKEN_LENGTH = 4096


class CardRejection(StrEnum):
    bad_signature = "bad_signature"  # not signed by the county seal, or altered after signing
    expired = "expired"  # genuine, but past its expiry
    malformed = "malformed"  # not a JWT, or a seal-signed token that is not a member card


class InvalidMemberCard(Unprocessable):
    code = "invalid_member_card"
    message = "The member card is not valid"
    message_zh = "会员证无效"

    _TEXTS = {
        CardRejection.bad_signature: (
            "The member card's signature does not match the county seal",
            "会员证签名与县总工会印章不符（伪造或被篡改）",
        ),
        CardRejection.expired: ("The member card has expired", "会员证已过期"),
        CardRejection.malformed: ("This is not a member card", "这不是有效格式的会员证"),
    }

    @classmethod
    def because(cls, reason: CardRejection) -> InvalidMemberCard:
        message, message_zh = cls._TEXTS[reason]
        return cls(message, message_zh, details={"field": "member_card", "reason": reason.value})


class MemberCardRevoked(Unprocessable):
    code = "member_card_revoked"
    message = "The card is genuine but the membership has ended"
    message_zh = "会员证真实，但该会员资格已终止"


@dataclass(frozen=True)
class CardFacts:
    """What a verified card tells a station; the holder's name stays on the card."""

    member_no: str
    county: str | None
    category: str | None
    expires_at: datetime


@dataclass(frozen=True)
class CardVerifier:
    """Checks member cards against membership's public key (the county seal)."""

    public_key: Ed25519PublicKey

    def verify(self, token: str) -> CardFacts:
        """The card's facts, or InvalidMemberCard with the reason."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidMemberCard.because(CardRejection.malformed)
        options: Options = {"require": ["iss", "sub", "iat", "exp"]}
        try:
            claims = jwt.decode(
                token, self.public_key, algorithms=["EdDSA"], issuer=ISSUER, options=options
            )
        except jwt.ExpiredSignatureError:
            # PyJWT checks the signature before the expiry: only a genuine card gets here.
            raise InvalidMemberCard.because(CardRejection.expired) from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise InvalidMemberCard.because(CardRejection.bad_signature) from None
        except jwt.InvalidTokenError:
            # Not three base64url parts; or signed by the seal but another issuer's token,
            # claims missing, not yet valid: whatever it is, it is not a member card.
            raise InvalidMemberCard.because(CardRejection.malformed) from None
        member_no, exp = claims.get("sub"), claims.get("exp")
        if (
            not isinstance(member_no, str)
            or not member_no.isascii()
            or not member_no.isdigit()
            or len(member_no) > 16
        ):
            raise InvalidMemberCard.because(CardRejection.malformed)
        try:
            expires_at = datetime.fromtimestamp(int(exp), UTC)  # type: ignore[arg-type]
        except (OverflowError, OSError, ValueError):
            raise InvalidMemberCard.because(CardRejection.malformed) from None
        county, category = claims.get("county"), claims.get("category")
        return CardFacts(
            member_no=member_no,
            county=county if isinstance(county, str) else None,
            category=category if isinstance(category, str) else None,
            expires_at=expires_at,
        )


def card_public_key(settings: StationsSettings) -> Ed25519PublicKey:
    """The configured public key, or the public half of the shared dev seal."""
    if settings.card_public_key:
        return keys.load_public_key(settings.card_public_key)
    # The same file membership signs with (generated by whichever service starts first);
    # refused in production, where the key must be configured.
    pem = keys.dev_key(
        settings.data_dir, CARD_KEY_FILE, keys.new_ed25519_pem, production=settings.production
    )
    return keys.load_private_key(pem).public_key()


def load_card_verifier(settings: StationsSettings) -> CardVerifier:
    return CardVerifier(card_public_key(settings))


async def get_card_verifier(request: Request) -> CardVerifier:
    verifier: CardVerifier = request.app.state.card_verifier
    return verifier


CardVerifierDep = Annotated[CardVerifier, Depends(get_card_verifier)]
