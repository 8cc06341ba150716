"""The request audit trail every service keeps: who did what, when, from where.

`audit_table(metadata)` declares a service's append-only `audit_log`;
`create_audit_table(op)` is its migration; `create_service_app(..., audit=table)`
installs the middleware that writes it and the `GET /v1/audit` query endpoint.
Code that shows personal data unmasked calls `mark_personal_data_read()`; a sign-in names
its actor with `note_actor()`, and the gateway leaves forwarded requests to the services
with `mark_audited_upstream()`.
(The middleware and the endpoint are imported from their modules: `auth` imports
this package, and they import `auth`.)
"""

from gonghui_shared.audit.context import (
    mark_audited_upstream,
    mark_personal_data_read,
    note_actor,
    note_target_org,
)
from gonghui_shared.audit.tables import (
    APPEND_ONLY,
    AUDIT_TABLE,
    audit_table,
    create_append_only_guard,
    create_audit_table,
    drop_append_only_guard,
    drop_audit_table,
)

__all__ = [
    "APPEND_ONLY",
    "AUDIT_TABLE",
    "audit_table",
    "create_append_only_guard",
    "create_audit_table",
    "drop_append_only_guard",
    "drop_audit_table",
    "mark_audited_upstream",
    "mark_personal_data_read",
    "note_actor",
    "note_target_org",
]
