"""Who may do what, as data: role -> the actions it may take within its scope.

Scope is separate: every action applies only inside the principal's org
subtree (a village chair sees only its village), and the `member` role only to
its own membership. Endpoints name one action each and call
`Principal.require(action, org_path)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    platform_admin = "platform_admin"  # operators of the platform: every county
    county_admin = "county_admin"  # 县总工会 staff: their county's whole tree
    org_chair = "org_chair"  # chair of a township/village/enterprise union
    station_operator = "station_operator"  # runs a service station
    member = "member"  # a union member using the mobile app
    gov_system = "gov_system"  # another government system, by API key


class Action(StrEnum):
    orgs_read = "orgs.read"
    orgs_write = "orgs.write"
    units_write = "units.write"
    applications_submit = "applications.submit"
    applications_read = "applications.read"
    applications_decide = "applications.decide"
    # A person with no membership yet (logged in by phone) applies to join, for themself only.
    applications_apply_self = "applications.apply_self"
    members_read = "members.read"
    members_read_personal = "members.read_personal"  # unmasked ID number and phone
    # Find active members by phone number: the gateway's one-time-code login, and nobody else.
    members_lookup = "members.lookup"
    members_transfer = "members.transfer"
    members_end = "members.end"  # withdrawal, lapse, expulsion
    rosters_import = "rosters.import"
    rosters_export = "rosters.export"
    cadres_read = "cadres.read"
    cadres_write = "cadres.write"
    cards_read = "cards.read"
    # training
    courses_write = "courses.write"
    sessions_read = "sessions.read"
    sessions_write = "sessions.write"  # schedule, open, start, cancel, complete
    enrolments_write = "enrolments.write"  # enrol anyone in scope, cancel
    enrol_self = "enrol.self"  # a member enrols themself
    attendance_write = "attendance.write"  # staff check-in, QR tokens
    attend_self = "attend.self"  # a member checks in by scanning the QR token
    certificates_revoke = "certificates.revoke"
    budget_write = "budget.write"
    competitions_write = "competitions.write"
    reports_read = "reports.read"
    # stations
    stations_read = "stations.read"
    stations_write = "stations.write"  # open, update, suspend, close
    visits_write = "visits.write"
    subsidies_write = "subsidies.write"  # record and pay the monthly subsidy
    # gateway
    accounts_write = "accounts.write"  # create, list and change user accounts in scope
    api_keys_write = "api_keys.write"  # create, list and revoke government systems' API keys
    dashboards_read = "dashboards.read"
    # every service
    audit_read = "audit.read"  # the audit log of requests, within the org scope
    bus_admin = "bus.admin"  # read and replay dead letters, within the org scope


_ALL = frozenset(Action)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.platform_admin: _ALL,
    # members.lookup answers "who owns this phone" across every county: only the platform
    # (in practice, the gateway's own short-lived token) may ask it.
    Role.county_admin: _ALL - {Action.members_lookup},
    Role.org_chair: frozenset(
        {
            Action.orgs_read,
            Action.orgs_write,
            Action.applications_submit,
            Action.applications_read,
            Action.members_read,
            Action.members_transfer,
            Action.members_end,
            Action.rosters_import,
            Action.rosters_export,
            Action.cadres_read,
            Action.cadres_write,
            Action.cards_read,
            Action.courses_write,
            Action.sessions_read,
            Action.sessions_write,
            Action.enrolments_write,
            Action.attendance_write,
            Action.budget_write,
            Action.competitions_write,
            Action.reports_read,
            Action.stations_read,
            Action.stations_write,
            Action.visits_write,
            Action.dashboards_read,
        }
    ),
    Role.station_operator: frozenset(
        {
            Action.orgs_read,
            Action.sessions_read,
            Action.attendance_write,
            Action.stations_read,
            Action.visits_write,
        }
    ),
    Role.member: frozenset(
        {
            Action.applications_apply_self,
            Action.members_read,
            Action.members_transfer,
            Action.cards_read,
            Action.sessions_read,
            Action.enrol_self,
            Action.attend_self,
            Action.stations_read,
        }
    ),
    Role.gov_system: frozenset(
        {
            Action.orgs_read,
            Action.members_read,
            Action.rosters_import,
            Action.rosters_export,
            Action.cadres_read,
            Action.sessions_read,
            Action.reports_read,
            Action.stations_read,
            Action.dashboards_read,
        }
    ),
}


class ApiScope(StrEnum):
    """The named scopes a county admin grants a government system's API key."""

    dashboards_read = "dashboards:read"
    members_read_masked = "members:read_masked"
    rosters_import = "rosters:import"


# What each named scope lets a key do. A key's principal may take an action only if its role
# (gov_system) holds it AND one of the key's scopes maps to it; gov_system never holds
# members.read_personal, so "members:read_masked" stays masked whatever else is granted.
SCOPE_ACTIONS: dict[ApiScope, frozenset[Action]] = {
    ApiScope.dashboards_read: frozenset({Action.dashboards_read}),
    ApiScope.members_read_masked: frozenset({Action.orgs_read, Action.members_read}),
    ApiScope.rosters_import: frozenset({Action.orgs_read, Action.rosters_import}),
}


def scope_actions(scopes: Iterable[ApiScope]) -> frozenset[Action]:
    """The actions a set of named scopes allows, together."""
    return frozenset().union(*(SCOPE_ACTIONS[ApiScope(s)] for s in scopes))
