"""dashboard rollups: subtree counters and each village's nearest station, kept by the handlers

`dash_subtree_counters` holds `dash_counters` summed per subtree (one row per org in each
counted org's path), with station counts as a new all-time counter (`stations`,
type|status); `dash_village_cover` holds, per located village union, the distance to its
nearest active station (within 5 km), and `dash_stations.cell` the grid cell each station
is found by (gateway/dashboards/coverage.py). An overview then reads one node's rows and
no station. All are filled here from what the read model already holds, by the handlers'
rules, so an upgraded gateway answers the same figures at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The rules of gateway/dashboards/coverage.py as they were at this revision.
EARTH_RADIUS_M = 6371008.8
NEAREST_MAX_M = 5_000.0
MARGIN_LAT = NEAREST_MAX_M / (math.pi * EARTH_RADIUS_M / 180)
MARGIN_LON = 2 * MARGIN_LAT
CELL_DEGREES = 0.05


def _index(degrees: float) -> int:
    return math.floor(degrees / CELL_DEGREES)


def _cell(lon: float, lat: float) -> int:
    return (_index(lat) + 2000) * 10_000 + _index(lon) + 4000


def _around(lon: float, lat: float) -> list[int]:
    rows = range(_index(lat - MARGIN_LAT), _index(lat + MARGIN_LAT) + 1)
    columns = range(_index(lon - MARGIN_LON), _index(lon + MARGIN_LON) + 1)
    return [(r + 2000) * 10_000 + c + 4000 for r in rows for c in columns]


def _distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _nearest(lon: float, lat: float, stations: list[tuple[float, float]]) -> float | None:
    best = None
    for s_lon, s_lat in stations:
        if abs(s_lat - lat) > MARGIN_LAT or abs(s_lon - lon) > MARGIN_LON:
            continue
        d = _distance(lon, lat, s_lon, s_lat)
        if d <= NEAREST_MAX_M and (best is None or d < best):
            best = d
    return best


def _subtree_counters() -> None:
    op.create_table(
        "dash_subtree_counters",
        sa.Column("node_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("dimension", sa.String(length=60), nullable=False),
        sa.Column("value", BIG, nullable=False),
        sa.PrimaryKeyConstraint(
            "node_id", "period", "metric", "dimension", name=op.f("pk_dash_subtree_counters")
        ),
    )
    op.create_index(
        "ix_dash_subtree_counters_node_id_metric",
        "dash_subtree_counters",
        ["node_id", "metric", "period"],
        unique=False,
    )
    bind = op.get_bind()
    counters = sa.table(
        "dash_counters",
        sa.column("org_id", sa.String),
        sa.column("period", sa.String),
        sa.column("metric", sa.String),
        sa.column("dimension", sa.String),
        sa.column("value", BIG),
    )
    stations: dict[tuple[str, str], int] = {}
    for host, station_type, status in bind.execute(
        sa.text("SELECT host_org_id, station_type, status FROM dash_stations")
    ):
        key = (host, f"{station_type}|{status}")
        stations[key] = stations.get(key, 0) + 1
    bind.execute(sa.delete(counters).where(counters.c.metric == "stations"))
    rows = [
        {"org_id": o, "period": "*", "metric": "stations", "dimension": d, "value": v}
        for (o, d), v in sorted(stations.items())
    ]
    for start in range(0, len(rows), 5000):
        bind.execute(counters.insert(), rows[start : start + 5000])
    paths = dict(bind.execute(sa.text("SELECT id, path FROM dash_orgs")).all())
    nodes: dict[tuple[str, str, str, str], int] = {}
    for org_id, period, metric, dimension, value in bind.execute(sa.select(counters)):
        path = paths.get(org_id)
        if path is None or not value:
            continue
        for node_id in (part for part in path.split("/") if part):
            key = (node_id, period, metric, dimension)
            nodes[key] = nodes.get(key, 0) + value
    subtree = sa.table(
        "dash_subtree_counters",
        sa.column("node_id", sa.String),
        sa.column("period", sa.String),
        sa.column("metric", sa.String),
        sa.column("dimension", sa.String),
        sa.column("value", BIG),
    )
    items = [
        {"node_id": n, "period": p, "metric": m, "dimension": d, "value": v}
        for (n, p, m, d), v in sorted(nodes.items())
        if v
    ]
    for start in range(0, len(items), 5000):
        bind.execute(subtree.insert(), items[start : start + 5000])


def upgrade() -> None:
    _subtree_counters()
    op.add_column("dash_stations", sa.Column("cell", BIG, nullable=True))
    op.create_index("ix_dash_stations_cell", "dash_stations", ["cell"], unique=False)
    cover = op.create_table(
        "dash_village_cover",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("cell", BIG, nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("nearest_m", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_dash_village_cover")),
    )
    op.create_index("ix_dash_village_cover_cell", "dash_village_cover", ["cell"], unique=False)

    bind = op.get_bind()
    stations = sa.table(
        "dash_stations",
        sa.column("station_id", sa.String),
        sa.column("lon", sa.Float),
        sa.column("lat", sa.Float),
        sa.column("status", sa.String),
        sa.column("cell", BIG),
    )
    by_cell: dict[int, list[tuple[float, float]]] = {}
    cells = []
    for station_id, lon, lat, status in bind.execute(
        sa.select(stations.c.station_id, stations.c.lon, stations.c.lat, stations.c.status)
    ):
        cells.append({"id": station_id, "c": _cell(lon, lat)})
        if status == "active":
            by_cell.setdefault(_cell(lon, lat), []).append((lon, lat))
    if cells:
        bind.execute(
            stations.update()
            .where(stations.c.station_id == sa.bindparam("id"))
            .values(cell=sa.bindparam("c")),
            cells,
        )
    orgs = sa.table(
        "dash_orgs",
        sa.column("id", sa.String),
        sa.column("org_type", sa.String),
        sa.column("lon", sa.Float),
        sa.column("lat", sa.Float),
    )
    rows = [
        {
            "org_id": org_id,
            "cell": _cell(lon, lat),
            "lon": lon,
            "lat": lat,
            "nearest_m": _nearest(
                lon, lat, [p for c in _around(lon, lat) for p in by_cell.get(c, ())]
            ),
        }
        for org_id, lon, lat in bind.execute(
            sa.select(orgs.c.id, orgs.c.lon, orgs.c.lat).where(
                orgs.c.org_type == "village_union", orgs.c.lon.is_not(None), orgs.c.lat.is_not(None)
            )
        )
    ]
    if rows:
        bind.execute(cover.insert(), rows)


def downgrade() -> None:
    op.execute("DELETE FROM dash_counters WHERE metric = 'stations'")
    op.drop_index("ix_dash_subtree_counters_node_id_metric", table_name="dash_subtree_counters")
    op.drop_table("dash_subtree_counters")
    op.drop_index("ix_dash_village_cover_cell", table_name="dash_village_cover")
    op.drop_table("dash_village_cover")
    op.drop_index("ix_dash_stations_cell", table_name="dash_stations")
    with op.batch_alter_table("dash_stations") as batch:
        batch.drop_column("cell")
