"""Subsidy ledger bodies, and exact yuan <-> fen conversion.

Money is stored in integer fen (1 yuan = 100 fen). The API takes yuan as a JSON number
or string with at most 2 decimal places, parsed as a Decimal (never a float), and
answers with yuan strings of exactly 2 places.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_YUAN = Decimal("1000000")  # a month's subsidy of one station; a million is a typo

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Period = Annotated[
    str,
    Field(
        pattern=PERIOD_PATTERN,
        description="the month, YYYY-MM",
        examples=["2026-11"],
    ),
]
YuanIn = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_YUAN,
        max_digits=9,
        decimal_places=2,
        description="yuan, at most 2 decimal places",
        examples=["100.00"],
    ),
]
YuanOut = Annotated[
    str, Field(pattern=r"^-?\d+\.\d{2}$", description="yuan with 2 decimals", examples=["100.00"])
]


def to_fen(yuan: Decimal) -> int:
    """Yuan to fen, exactly (the schema already allows at most 2 decimal places)."""
    return int((yuan * 100).to_integral_exact())


def yuan(fen: int) -> str:
    """Fen to a yuan string with exactly 2 decimals: 10000 -> "100.00"."""
    return f"{Decimal(fen).scaleb(-2):.2f}"


class SubsidyStatus(StrEnum):
    unpaid = "unpaid"
    paid = "paid"


class SubsidyCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"period": "2026-11"},
                {"period": "2026-11", "amount": "150.00", "note": "含春节慰问加发50元"},
            ]
        },
    )

    period: Period
    amount: YuanIn | None = Field(
        None, description="yuan; default the station's monthly subsidy (100 for a village point)"
    )
    note: str | None = Field(None, max_length=500)


class SubsidyPay(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"paid_on": "2026-12-05"}]})

    paid_on: date | None = Field(None, description="default today in China; not in the future")


class SubsidyAccrue(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d", "period": "2026-11"}]
        }
    )

    org_id: str = Field(min_length=1, max_length=36, description="the org whose subtree accrues")
    period: Period


class SubsidyAccrued(BaseModel):
    """What an accrual created; running it again creates nothing more."""

    org_id: str
    period: str
    created: int = Field(description="new unpaid lines (stations that had none for the period)")
    amount: YuanOut = Field(description="the sum of the new lines")


class SubsidyRead(BaseModel):
    id: str
    station_id: str
    station_name: str
    station_type: str
    host_org_path: str
    period: str
    amount: YuanOut
    status: SubsidyStatus
    paid_on: date | None
    paid_by: str | None
    note: str | None
    created_at: datetime


class SubsidySums(BaseModel):
    recorded: YuanOut = Field(description="every ledger line, paid or not")
    paid: YuanOut
    unpaid: YuanOut
    stations: int = Field(description="distinct stations with a ledger line")
    lines: int


class PeriodSums(SubsidySums):
    period: str


class SubsidyTotals(BaseModel):
    """The ledger of an org subtree: per month and over the whole range."""

    model_config = ConfigDict(populate_by_name=True)

    org_id: str | None = Field(description="null: every org in your scope")
    from_: str | None = Field(alias="from")
    to: str | None
    periods: list[PeriodSums] = Field(description="months with at least one line, oldest first")
    total: SubsidySums
