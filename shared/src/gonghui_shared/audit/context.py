"""What the request being audited has learnt about itself while it ran.

The audit middleware opens an `AuditContext` per request; code deeper down adds to it
without needing the request: `mark_personal_data_read` when it shows personal data
unmasked, and `Principal.require` notes the org the request acted on. A request that
carries no principal may name its actor (`note_actor`: the gateway's sign-in names the
account, or the username it was tried with), and a request another service answered
and audits itself says so (`mark_audited_upstream`). The context is a mutable object
held in a context variable, so what a handler writes is seen by the middleware even
when the handler ran in a copied context (a thread, a task).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acted, as named by a handler rather than by the request's principal."""

    subject: str
    role: str | None = None
    org_path: str | None = None


@dataclass
class AuditContext:
    personal_data: bool = False
    # The org the request acted on: the first org path a permission check was made against.
    target_org_path: str | None = None
    # Used only when the request has no principal of its own (a sign-in): the last one named.
    actor: Actor | None = None
    # A service behind this one answered the request and writes its own row of it.
    audited_upstream: bool = False


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


def note_actor(subject: str, role: str | None = None, org_path: str | None = None) -> None:
    """Name who acts when the request carries no principal (the last one named wins).

    A sign-in names the account it signed in, or what it was tried with (`username:…`);
    never a password, token or code.
    """
    context = audit_context_var.get()
    if context is not None:
        context.actor = Actor(subject[:100], role, org_path)


def mark_audited_upstream() -> None:
    """The service this request was handed to answered it and audits it: write no row here."""
    context = audit_context_var.get()
    if context is not None:
        context.audited_upstream = True
