"""dashboards: read models built from the services' events

Counters per (org, metric, month, dimension), the entity state the handlers derive them
from, and the small registers (orgs, units, stations, cadres, persons seen, sources) the
dashboards read directly. See gateway/dashboards/models.py.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:13:15.532093
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dash_cadres",
        sa.Column("cadre_id", sa.String(length=36), nullable=False),
        sa.Column("member_no", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.PrimaryKeyConstraint("cadre_id", name=op.f("pk_dash_cadres")),
    )
    op.create_index("ix_dash_cadres_member_no", "dash_cadres", ["member_no"], unique=False)
    op.create_index("ix_dash_cadres_org_id", "dash_cadres", ["org_id"], unique=False)
    op.create_table(
        "dash_cadres_trained",
        sa.Column("member_no", sa.String(length=16), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("member_no", name=op.f("pk_dash_cadres_trained")),
    )
    op.create_table(
        "dash_certificates",
        sa.Column("certificate_id", sa.String(length=36), nullable=False),
        sa.Column("host_org_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("issued", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_dash_certificates")),
    )
    op.create_table(
        "dash_counters",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("dimension", sa.String(length=60), nullable=False),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "period", "metric", "dimension", name=op.f("pk_dash_counters")
        ),
    )
    op.create_index(
        "ix_dash_counters_org_id_metric",
        "dash_counters",
        ["org_id", "metric", "period"],
        unique=False,
    )
    op.create_table(
        "dash_member_moves",
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("member_no", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("from_org_id", sa.String(length=36), nullable=False),
        sa.Column("to_org_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_dash_member_moves")),
    )
    op.create_index(
        "ix_dash_member_moves_member_no", "dash_member_moves", ["member_no"], unique=False
    )
    op.create_table(
        "dash_members",
        sa.Column("member_no", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("approved_org_id", sa.String(length=36), nullable=True),
        sa.Column("approved_month", sa.String(length=7), nullable=True),
        sa.Column("ended_status", sa.String(length=20), nullable=True),
        sa.Column("ended_org_id", sa.String(length=36), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_month", sa.String(length=7), nullable=True),
        sa.PrimaryKeyConstraint("member_no", name=op.f("pk_dash_members")),
    )
    op.create_table(
        "dash_orgs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column(
            "path",
            sa.String(length=800).with_variant(sa.String(length=800, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("org_type", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_orgs")),
    )
    op.create_index("ix_dash_orgs_parent_id", "dash_orgs", ["parent_id"], unique=False)
    op.create_index("ix_dash_orgs_path", "dash_orgs", ["path"], unique=False)
    op.create_index("ix_dash_orgs_region_code", "dash_orgs", ["region_code"], unique=False)
    op.create_table(
        "dash_persons_seen",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("person_key", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "period", "person_key", name=op.f("pk_dash_persons_seen")
        ),
    )
    op.create_table(
        "dash_sessions",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("host_org_id", sa.String(length=36), nullable=False),
        sa.Column("course_category", sa.String(length=40), nullable=True),
        sa.Column("start_month", sa.String(length=7), nullable=True),
        sa.Column("end_month", sa.String(length=7), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_month", sa.String(length=7), nullable=True),
        sa.Column(
            "spent_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_dash_sessions")),
    )
    op.create_table(
        "dash_sources",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "events_applied", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_dash_sources")),
    )
    op.create_table(
        "dash_stations",
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("host_org_id", sa.String(length=36), nullable=False),
        sa.Column("station_type", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("place_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_dash_stations")),
    )
    op.create_index("ix_dash_stations_host_org_id", "dash_stations", ["host_org_id"], unique=False)
    op.create_index("ix_dash_stations_lat", "dash_stations", ["lat"], unique=False)
    op.create_table(
        "dash_units",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dash_units")),
    )
    op.create_index("ix_dash_units_parent_code", "dash_units", ["parent_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dash_units_parent_code", table_name="dash_units")
    op.drop_table("dash_units")
    op.drop_index("ix_dash_stations_lat", table_name="dash_stations")
    op.drop_index("ix_dash_stations_host_org_id", table_name="dash_stations")
    op.drop_table("dash_stations")
    op.drop_table("dash_sources")
    op.drop_table("dash_sessions")
    op.drop_table("dash_persons_seen")
    op.drop_index("ix_dash_orgs_region_code", table_name="dash_orgs")
    op.drop_index("ix_dash_orgs_path", table_name="dash_orgs")
    op.drop_index("ix_dash_orgs_parent_id", table_name="dash_orgs")
    op.drop_table("dash_orgs")
    op.drop_table("dash_members")
    op.drop_index("ix_dash_member_moves_member_no", table_name="dash_member_moves")
    op.drop_table("dash_member_moves")
    op.drop_index("ix_dash_counters_org_id_metric", table_name="dash_counters")
    op.drop_table("dash_counters")
    op.drop_table("dash_certificates")
    op.drop_table("dash_cadres_trained")
    op.drop_index("ix_dash_cadres_org_id", table_name="dash_cadres")
    op.drop_index("ix_dash_cadres_member_no", table_name="dash_cadres")
    op.drop_table("dash_cadres")
