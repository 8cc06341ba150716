"""Member card bodies: the signed token, the county seal's public key, verification."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CardToken(BaseModel):
    token: str = Field(description="JWT (EdDSA) signed with the county seal")
    expires_at: datetime


class MemberCard(CardToken):
    member_no: str = Field(examples=["5309212026000001"])
    public_key_url: str = Field(
        default="/v1/cards/public-key", description="where stations fetch the key"
    )


class Jwk(BaseModel):
    """An Ed25519 public key as a JSON Web Key (RFC 8037)."""

    kty: str = Field(default="OKP", examples=["OKP"])
    crv: str = Field(default="Ed25519", examples=["Ed25519"])
    x: str = Field(description="the public key, base64url without padding")
    kid: str
    alg: str = "EdDSA"
    use: str = "sig"


class PublicKeySet(BaseModel):
    """The county seal's public key: JWKS for libraries, PEM for everything else."""

    keys: list[Jwk]
    pem: str


class CardVerify(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "eyJhbGciOiJFZERTQSIs…"}]})

    token: str = Field(min_length=1, max_length=4096)


class VerifyReason(StrEnum):
    ok = "ok"
    expired = "expired"
    bad_signature = "bad_signature"
    unknown_member = "unknown_member"
    membership_ended = "membership_ended"


class CardCheck(BaseModel):
    """A station's live check of a card; says nothing about the person beyond the number."""

    valid: bool
    member_no: str | None
    status: str | None = Field(description="the membership's status now", examples=["active"])
    reason: VerifyReason
    checked_at: datetime
