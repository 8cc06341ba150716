"""`/v1/members/{member_no}/card` and `/v1/cards`: member cards and their verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from gonghui_shared.deps import PrincipalDep, SessionDep
from gonghui_shared.errors import ERROR_RESPONSES
from membership.cards import service
from membership.cards.schemas import CardCheck, CardVerify, MemberCard, PublicKeySet
from membership.cards.service import CardSeal


async def get_card_seal(request: Request) -> CardSeal:
    seal: CardSeal = request.app.state.card_seal
    return seal


CardSealDep = Annotated[CardSeal, Depends(get_card_seal)]

router = APIRouter(prefix="/v1", tags=["cards"], responses=ERROR_RESPONSES)


@router.get("/members/{member_no}/card")
async def get_card(
    member_no: str, principal: PrincipalDep, session: SessionDep, seal: CardSealDep
) -> MemberCard:
    """A freshly signed member card (会员证): your own, or an active member in scope."""
    return await service.card_for(session, principal, seal, member_no)


@router.get("/cards/public-key")
async def public_key(seal: CardSealDep) -> PublicKeySet:
    """The county seal's public key (JWKS and PEM), for stations that verify cards offline."""
    return seal.public_key_set()


@router.post("/cards/verify")
async def verify_card(body: CardVerify, session: SessionDep, seal: CardSealDep) -> CardCheck:
    """Check a card now: signature, expiry, membership still standing (no login)."""
    return await service.check(session, seal, body.token)
