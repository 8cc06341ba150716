"""Budget request and response bodies, and exact yuan <-> fen conversion.

Money is stored in integer fen (1 yuan = 100 fen). The API takes yuan as a JSON
number or string with at most 2 decimal places and parses it as a Decimal, so
0.10 + 0.20 is exactly 0.30; it answers with yuan strings of exactly 2 places.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from training.budget.models import BudgetCategory, BudgetKind

# Sessions store the planned budget in a 32-bit column: 10 million yuan fits with room.
MAX_YUAN = Decimal("10000000")

YuanIn = Annotated[
    Decimal,
    Field(
        ge=0,
        le=MAX_YUAN,
        max_digits=10,
        decimal_places=2,
        description="yuan, at most 2 decimal places",
        examples=["270000.00"],
    ),
]
YuanOut = Annotated[
    str, Field(pattern=r"^-?\d+\.\d{2}$", description="yuan with 2 decimals", examples=["0.30"])
]


def to_fen(yuan: Decimal) -> int:
    """Yuan to fen, exactly (the schema already allows at most 2 decimal places)."""
    return int((yuan * 100).to_integral_exact())


def yuan(fen: int) -> str:
    """Fen to a yuan string with exactly 2 decimals: 27000000 -> "270000.00"."""
    return f"{Decimal(fen).scaleb(-2):.2f}"


class BudgetEntryCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "kind": "spent",
                    "category": "trainer",
                    "amount": "3600.00",
                    "entry_date": "2026-03-12",
                    "note": "电焊实操师资费 3天",
                }
            ]
        },
    )

    kind: BudgetKind
    category: BudgetCategory
    amount: Annotated[YuanIn, Field(gt=0)]
    entry_date: date | None = Field(None, description="defaults to today in China")
    note: str | None = Field(None, max_length=500)


class BudgetEntryRead(BaseModel):
    id: str
    session_id: str
    kind: BudgetKind
    category: BudgetCategory
    amount: YuanOut
    entry_date: date
    note: str | None
    recorded_by: str
    recorded_at: datetime


class BudgetCategoryLine(BaseModel):
    category: BudgetCategory
    planned: YuanOut
    spent: YuanOut


class BudgetTotals(BaseModel):
    """A session's money at a glance (the full picture is at `/budget`)."""

    planned_budget: YuanOut = Field(description="the session's planned budget")
    planned_total: YuanOut = Field(description="sum of the planned entries")
    spent_total: YuanOut = Field(description="sum of the spent entries")
    over_budget: bool = Field(description="spent_total exceeds the session's planned budget")

    @classmethod
    def of(cls, sums: dict[tuple[str, str], int], planned_budget_fen: int) -> BudgetTotals:
        """From (kind, category) -> fen sums and the session's planned budget in fen."""
        planned = sum(fen for (kind, _), fen in sums.items() if kind == BudgetKind.planned)
        spent = sum(fen for (kind, _), fen in sums.items() if kind == BudgetKind.spent)
        return cls(
            planned_budget=yuan(planned_budget_fen),
            planned_total=yuan(planned),
            spent_total=yuan(spent),
            over_budget=spent > planned_budget_fen,
        )


class BudgetSummary(BudgetTotals):
    """Planned and spent money of one session, per category and in total."""

    session_id: str
    categories: list[BudgetCategoryLine] = Field(description="every category, zero when unused")
    entries: list[BudgetEntryRead]
