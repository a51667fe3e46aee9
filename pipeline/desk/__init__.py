"""The support desk: find a statement, show its timeline, act on it, audit every look.

- `lookup.statement_view`: one statement with its whole timeline, queue, next action and
  deadline; the one function behind `eob lookup` and the desk's statement page.
- `search.search`: exact matches by statement id, member id, claim number or email address
  (hashed: the ledger holds neither claim numbers nor addresses).
- `actions`: an address change (two-person rule), move to paper, lift an email block, stop a
  resend; each with a reason (`reasons.checked_reason`: never the member's details), on the
  timeline and in the audit log. `changes.expire_changes`: the reconcile sweep closes address
  changes their statement can no longer use.
- `permissions`, `accounts`, `audit`, `contacts`: who may do what, who they are, what they did.

Each name loads its module on first use: `eob lookup` does not pay for argon2 or Jinja2, and the
web app not for what it never calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pipeline.desk.accounts import (
        AccountLocked,
        SignInRefused,
        User,
        authenticate,
        create_user,
        get_user,
        list_users,
        oidc_user,
        set_active,
        set_password,
        set_roles,
        unlock,
    )
    from pipeline.desk.actions import (
        cancel_resend,
        decide_address_change,
        lift_suppression,
        move_to_paper,
        request_address_change,
    )
    from pipeline.desk.audit import ChainProblem, ChainReport, access_review, entries, record, verify
    from pipeline.desk.changes import PendingChange, expire_changes, pending_changes
    from pipeline.desk.contacts import has_open_contact, open_contact
    from pipeline.desk.context import DeskContext
    from pipeline.desk.errors import ActionRefused, ChangeNotApplied, DeskError
    from pipeline.desk.lookup import StatementView, statement_view
    from pipeline.desk.permissions import MATRIX, Permission, Role, allowed
    from pipeline.desk.reasons import MAX_REASON, MIN_REASON, ReasonRefused, checked_reason
    from pipeline.desk.search import SearchHit, SearchKey, SearchRefused, search, term_digest
    from pipeline.desk.timeline import TimelineEntry, status_label

__all__ = [
    "MATRIX", "MAX_REASON", "MIN_REASON", "AccountLocked", "ActionRefused", "ChainProblem", "ChainReport",
    "ChangeNotApplied", "DeskContext", "DeskError", "PendingChange", "Permission", "ReasonRefused", "Role",
    "SearchHit", "SearchKey", "SearchRefused", "SignInRefused", "StatementView", "TimelineEntry", "User",
    "access_review", "allowed", "authenticate", "cancel_resend", "checked_reason", "create_user",
    "decide_address_change", "entries", "expire_changes", "get_user", "has_open_contact", "lift_suppression",
    "list_users", "move_to_paper", "oidc_user", "open_contact", "pending_changes", "record",
    "request_address_change", "search", "set_active", "set_password", "set_roles", "statement_view",
    "status_label", "term_digest", "unlock", "verify",
]

_MODULES = {
    "pipeline.desk.errors": ("ActionRefused", "ChangeNotApplied", "DeskError"),
    "pipeline.desk.reasons": ("MAX_REASON", "MIN_REASON", "ReasonRefused", "checked_reason"),
    "pipeline.desk.context": ("DeskContext",),
    "pipeline.desk.lookup": ("StatementView", "statement_view"),
    "pipeline.desk.timeline": ("TimelineEntry", "status_label"),
    "pipeline.desk.search": ("SearchHit", "SearchKey", "SearchRefused", "search", "term_digest"),
    "pipeline.desk.changes": ("PendingChange", "expire_changes", "pending_changes"),
    "pipeline.desk.actions": ("cancel_resend", "decide_address_change", "lift_suppression", "move_to_paper",
                              "request_address_change"),
    "pipeline.desk.permissions": ("MATRIX", "Permission", "Role", "allowed"),
    "pipeline.desk.accounts": ("AccountLocked", "SignInRefused", "User", "authenticate", "create_user",
                               "get_user", "list_users", "oidc_user", "set_active", "set_password",
                               "set_roles", "unlock"),
    "pipeline.desk.audit": ("ChainProblem", "ChainReport", "access_review", "entries", "record", "verify"),
    "pipeline.desk.contacts": ("has_open_contact", "open_contact"),
}
__getattr__ = lazy_exports(__name__, _MODULES)
