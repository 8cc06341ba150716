"""The training service's tables, gathered on one metadata for Alembic."""

from __future__ import annotations

from training.attendance.models import Attendance
from training.base import Base, inbox, outbox
from training.budget.models import BudgetEntry
from training.certificates.models import Certificate, CertificateNumberSequence
from training.competitions.models import Competition, CompetitionEntry, CompetitionEvent
from training.courses.models import Course
from training.enrolments.models import Enrolment
from training.replicas.models import CadreReplica, MemberReplica, OrgReplica
from training.sessions.models import TrainingSession

__all__ = [
    "Attendance",
    "Base",
    "BudgetEntry",
    "CadreReplica",
    "Certificate",
    "CertificateNumberSequence",
    "Competition",
    "CompetitionEntry",
    "CompetitionEvent",
    "Course",
    "Enrolment",
    "MemberReplica",
    "OrgReplica",
    "TrainingSession",
    "inbox",
    "outbox",
]
