"""The membership service's tables, gathered on one metadata for Alembic.

Each module owns its models (`orgs/models.py`, …); this module imports them so
the metadata is complete, and declares the outbox and inbox.
"""

from __future__ import annotations

from membership.admissions.models import Application, MemberNumberSequence, Roster
from membership.audit.models import Transition
from membership.base import Base, inbox, outbox
from membership.cadres.models import Cadre
from membership.members.models import Member, Transfer
from membership.orgs.models import Org
from membership.units.models import AdminUnit

__all__ = [
    "AdminUnit",
    "Application",
    "Base",
    "Cadre",
    "Member",
    "MemberNumberSequence",
    "Org",
    "Roster",
    "Transfer",
    "Transition",
    "inbox",
    "outbox",
]
