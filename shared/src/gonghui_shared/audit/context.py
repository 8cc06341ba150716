"""What the request being audited has learnt about itself while it ran.

The audit middleware opens an `AuditContext` per request; code deeper down adds to it
without needing the request: `mark_personal_data_read` when it shows personal data
unmasked, and `Principal.require` notes the org the request acted on. The context is
a mutable object held in a context variable, so what a handler writes is seen by the
middleware even when the handler ran in a copied context (a thread, a task).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class AuditContext:
    personal_data: bool = False
    # The org the request acted on: the first org path a permission check was made against.
    target_org_path: str | None = None


audit_context_var: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def mark_personal_data_read(org_path: str | None = None) -> None:
    """Record that this request shows personal data unmasked (ID number, phone, birth date).

    Call it where the unmasked value is produced; `org_path` is the org of the person whose
    data it is, when known. Outside an audited request it does nothing.
    """
    context = audit_context_var.get()
    if context is None:
        return
    context.personal_data = True
    note_target_org(org_path)


def note_target_org(org_path: str | None) -> None:
    """Remember the org the request acts on (the first one named wins)."""
    context = audit_context_var.get()
    if context is not None and org_path and context.target_org_path is None:
        context.target_org_path = org_path
