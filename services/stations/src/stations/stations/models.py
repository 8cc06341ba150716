"""Stations (驿站/服务站点): where outdoor workers rest, drink, charge a phone and get help."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Date, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from stations.base import Base, Timestamped, id_column


class StationType(StrEnum):
    outdoor_worker_station = "outdoor_worker_station"  # 工会户外劳动者服务站点/爱心驿站
    worker_home = "worker_home"  # 职工之家
    village_service_point = "village_service_point"  # 村级工会服务点
    liaison_station = "liaison_station"  # 联络站
    other = "other"


class StationStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    closed = "closed"


class Station(Timestamped, Base):
    __tablename__ = "stations"
    __table_args__ = (
        # The spatial index: nearby search looks up the H3 cells around a point, and checks
        # the circle's bounding box on the index entries before it reads any row.
        Index("ix_stations_h3_r7_status_lat_lon", "h3_r7", "status", "lat", "lon"),
        Index("ix_stations_h3_r9", "h3_r9"),
    )

    id: Mapped[str] = id_column()
    station_type: Mapped[str] = mapped_column(String(30), index=True)
    name: Mapped[str] = mapped_column(String(200))
    host_org_id: Mapped[str] = mapped_column(String(36), index=True)
    host_org_path: Mapped[str] = mapped_column(String(800), index=True)
    host_partner: Mapped[str | None] = mapped_column(String(200))  # e.g. 中国邮政村邮乐购
    address: Mapped[str | None] = mapped_column(String(300))
    region_code: Mapped[str | None] = mapped_column(String(12), index=True)
    lon: Mapped[float] = mapped_column(Float)  # WGS-84, always
    lat: Mapped[float] = mapped_column(Float)
    h3_r7: Mapped[str] = mapped_column(String(16))  # ~1.2 km edge
    h3_r9: Mapped[str] = mapped_column(String(16))  # ~0.17 km edge
    contact_name: Mapped[str | None] = mapped_column(String(50))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=StationStatus.active)
    amenities: Mapped[list[str]] = mapped_column(JSON, default=list)
    opening_hours: Mapped[str] = mapped_column(String(300), default="24/7")  # OSM syntax
    timezone: Mapped[str] = mapped_column(String(40), default="Asia/Shanghai")
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    checked_on: Mapped[date | None] = mapped_column(Date)  # hours and amenities last checked
    monthly_subsidy_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status_reason: Mapped[str | None] = mapped_column(String(500))
