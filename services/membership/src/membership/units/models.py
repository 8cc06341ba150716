"""Administrative units (行政区划): the townships and villages a county must cover."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from membership.base import Base, Timestamped


class AdminUnit(Timestamped, Base):
    __tablename__ = "admin_units"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))  # county, township, village
    parent_code: Mapped[str | None] = mapped_column(String(12), index=True)
    # 城乡分类代码 (111 主城区 … 220 村庄); villages only.
    urban_rural_code: Mapped[str | None] = mapped_column(String(3))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
