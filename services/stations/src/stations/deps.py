"""Stations's own request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gonghui_shared.pii import PiiCipher


async def get_pii(request: Request) -> PiiCipher:
    cipher: PiiCipher = request.app.state.runtime.pii
    return cipher


PiiDep = Annotated[PiiCipher, Depends(get_pii)]
