"""Test support for stations: membership's events on NATS, and the API driver."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gonghui_shared import keys
from gonghui_shared.ids import new_id
from gonghui_shared.runtime import ServiceRuntime
from gonghui_shared.settings import ServiceSettings
from gonghui_shared.testing.driver import ApiDriver
from gonghui_shared.testing.feed import MembershipFeed
from stations.base import inbox
from stations.events.handlers import MEMBERSHIP
from stations.stations.models import Station


def membership_feed(runtime: ServiceRuntime) -> MembershipFeed:
    return MembershipFeed(runtime, inbox, MEMBERSHIP.durable)


class Api(ApiDriver):
    """The stations API as different principals."""


# -- member cards, signed as membership signs them --------------------------------------


def sign_member_card(
    private_key: Ed25519PrivateKey,
    member_no: str,
    *,
    category: str = "migrant_worker",
    name: str = "张三",
    org: str = "京竹林村工会委员会",
    valid_days: int = 365,
    issued_at: datetime | None = None,
) -> str:
    """A member card with membership's claims and header (membership/cards/service.py)."""
    issued = (issued_at or datetime.now(UTC)).replace(microsecond=0)
    public_raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(public_raw).rstrip(b"=").decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    claims = {
        "iss": "gonghui-membership",
        "sub": member_no,
        "name": name,
        "org": org,
        "county": member_no[:6],
        "category": category,
        "joined": "2026-01-15",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(days=valid_days)).timestamp()),
    }
    return jwt.encode(
        claims, private_key, algorithm="EdDSA", headers={"kid": kid.rstrip(b"=").decode()[:16]}
    )


def dev_card_key(settings: ServiceSettings) -> Ed25519PrivateKey:
    """The shared dev seal under `data_dir` that membership signs cards with in development."""
    pem = keys.dev_key(
        settings.data_dir, "card_ed25519.pem", keys.new_ed25519_pem, production=settings.production
    )
    return keys.load_private_key(pem)


# -- stations, straight into the database -----------------------------------------------


async def insert_station(
    runtime: ServiceRuntime, org: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A station row hosted by `org` (a feed org), for tests that need one quickly."""
    lon, lat = fields.pop("lon", 99.93), fields.pop("lat", 24.58)
    station_type = fields.pop("station_type", "outdoor_worker_station")
    station = Station(
        id=new_id(),
        station_type=station_type,
        name=fields.pop("name", "凤山镇爱心驿站"),
        host_org_id=org["id"],
        host_org_path=org["path"],
        lon=lon,
        lat=lat,
        h3_r7=h3.latlng_to_cell(lat, lon, 7),
        h3_r9=h3.latlng_to_cell(lat, lon, 9),
        status=fields.pop("status", "active"),
        amenities=fields.pop("amenities", ["drinking_water", "phone_charging"]),
        opening_hours=fields.pop("opening_hours", "24/7"),
        timezone=fields.pop("timezone", "Asia/Shanghai"),
        monthly_subsidy_fen=fields.pop(
            "monthly_subsidy_fen", 10000 if station_type == "village_service_point" else 0
        ),
        **fields,
    )
    async with runtime.db.transaction() as session:
        session.add(station)
    return {"id": station.id, "host_org_path": station.host_org_path, "name": station.name}


def station_values(
    lon: float, lat: float, *, host_org_id: str, host_org_path: str, **fields: Any
) -> dict[str, Any]:
    """The column values of one station at a WGS-84 point, with its H3 cells, for
    `insert_stations`; `fields` override the defaults (an active 24/7 outdoor-worker station)."""
    from stations.geo import cells

    h3_r7, h3_r9 = cells(lon, lat)
    now = datetime.now(UTC)
    return {
        "id": new_id(),
        "station_type": "outdoor_worker_station",
        "name": "爱心驿站",
        "host_org_id": host_org_id,
        "host_org_path": host_org_path,
        "lon": lon,
        "lat": lat,
        "h3_r7": h3_r7,
        "h3_r9": h3_r9,
        "status": "active",
        "amenities": [],
        "opening_hours": "24/7",
        "timezone": "Asia/Shanghai",
        "photos": [],
        "monthly_subsidy_fen": 0,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


async def insert_stations(
    runtime: ServiceRuntime, rows: list[dict[str, Any]], chunk: int = 2000
) -> None:
    """Bulk-insert `station_values` rows (thousands per statement), for searches at scale."""
    from sqlalchemy import insert

    for start in range(0, len(rows), chunk):
        async with runtime.db.transaction() as session:
            await session.execute(insert(Station), rows[start : start + chunk])


def point_at(lon: float, lat: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The WGS-84 point `distance_m` from (lon, lat) along `bearing_deg` (0 = north), on the
    same sphere as `geo.distance_m`: for placing stations just inside or outside a radius."""
    import math

    from stations.geo import EARTH_RADIUS_M

    d = distance_m / EARTH_RADIUS_M
    b, phi1, lmb1 = math.radians(bearing_deg), math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(d) + math.cos(phi1) * math.sin(d) * math.cos(b))
    lmb2 = lmb1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(phi1), math.cos(d) - math.sin(phi1) * math.sin(phi2)
    )
    return (math.degrees(lmb2) + 540) % 360 - 180, math.degrees(phi2)


# -- stations over the API, and the events they leave in the outbox ----------------------


def station_body(org: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A `POST /v1/stations` body for a station hosted by `org` (WGS-84 unless `crs` says)."""
    return {
        "station_type": "outdoor_worker_station",
        "name": "凤山镇爱心驿站",
        "host_org_id": org["id"],
        "lon": 99.9318,
        "lat": 24.5812,
        "amenities": ["drinking_water", "phone_charging", "seating"],
        **fields,
    }


async def outbox_events(runtime: ServiceRuntime, prefix: str = "stations.") -> list[dict[str, Any]]:
    """The envelopes in the outbox whose type starts with `prefix`, oldest first."""
    from sqlalchemy import select

    from stations.base import outbox

    async with runtime.db.sessions() as session:
        rows = await session.execute(
            select(outbox.c.payload)
            .where(outbox.c.event_type.startswith(prefix))
            .order_by(outbox.c.position)
        )
        return [json.loads(payload) for (payload,) in rows]


async def open_station(api: Api, org: dict[str, Any], status: str = "active", **body: Any) -> Any:
    """A station opened through `POST /v1/stations` (as the platform admin), hosted by `org`;
    `status="suspended"` or `"closed"` then takes it there through the API too."""
    station = await api.ok(
        "POST",
        "/v1/stations",
        json={
            "station_type": "outdoor_worker_station",
            "name": "凤山镇爱心驿站",
            "host_org_id": org["id"],
            "lon": 99.93,
            "lat": 24.58,
            "amenities": ["drinking_water", "phone_charging"],
            **body,
        },
        expect=201,
    )
    if status != "active":
        verb = {"suspended": "suspend", "closed": "close"}[status]
        station = await api.ok(
            "POST", f"/v1/stations/{station['id']}/{verb}", json={"reason": "测试"}
        )
    return station
