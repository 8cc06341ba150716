"""Visits: someone used a station; what services; how it was (1–5)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stations.base import Base, id_column, utcnow


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_station_day", "station_id", "day"),
        Index("ix_visits_host_path_day", "host_org_path", "day"),
        # A device's retry (the gateway forwards its Idempotency-Key) finds the first visit.
        Index("ux_visits_recorder_client_key", "recorded_by", "client_key", unique=True),
    )

    id: Mapped[str] = id_column()
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"))
    host_org_path: Mapped[str] = mapped_column(String(800))
    station_type: Mapped[str] = mapped_column(String(30))
    visited_at: Mapped[datetime] = mapped_column(default=utcnow)
    day: Mapped[date] = mapped_column(Date)  # in the station's time zone
    member_no: Mapped[str | None] = mapped_column(String(16))  # from a verified member card
    worker_category: Mapped[str | None] = mapped_column(String(20))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(100))
    client_key: Mapped[str | None] = mapped_column(String(200))
