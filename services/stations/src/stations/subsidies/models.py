"""The monthly subsidy ledger per station (村级工会服务点: 100 yuan a month)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stations.base import Base, Timestamped, id_column


class Subsidy(Timestamped, Base):
    __tablename__ = "subsidies"
    __table_args__ = (UniqueConstraint("station_id", "period"),)

    id: Mapped[str] = id_column()
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    host_org_path: Mapped[str] = mapped_column(String(800), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="unpaid")  # unpaid, paid
    paid_on: Mapped[date | None] = mapped_column(Date)
    paid_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))
