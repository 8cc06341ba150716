"""The stations service's tables, gathered on one metadata for Alembic."""

from __future__ import annotations

from stations.base import Base, inbox, outbox
from stations.replicas.models import MemberReplica, OrgReplica
from stations.stations.models import Station
from stations.subsidies.models import Subsidy
from stations.visits.models import Visit

__all__ = ["Base", "MemberReplica", "OrgReplica", "Station", "Subsidy", "Visit", "inbox", "outbox"]
