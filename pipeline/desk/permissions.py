"""Who may do what on the support desk: the one permission matrix, read by every route and action.

A role is a job (support agent, supervisor, finance, auditor, admin), a permission one thing the
desk lets a person do. The matrix grants each role only what its job needs: finance sees
aggregate reports and no member, an auditor reads the audit log and acts on nothing, an admin
manages accounts and looks at no statement. A user may hold several roles; what they may do is
the union. The role names are also the values the ledger's `desk_user_roles` table accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    AGENT = "support_agent"
    SUPERVISOR = "supervisor"
    FINANCE = "finance"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    SEARCH = "search"
    VIEW_STATEMENT = "view_statement"
    REQUEST_ADDRESS_CHANGE = "request_address_change"
    APPROVE_ADDRESS_CHANGE = "approve_address_change"
    MOVE_TO_PAPER = "move_to_paper"
    LIFT_SUPPRESSION = "lift_suppression"
    CANCEL_RESEND = "cancel_resend"
    VIEW_REPORTS = "view_reports"
    VIEW_AUDIT = "view_audit"
    MANAGE_USERS = "manage_users"


_AGENT = frozenset({
    Permission.SEARCH, Permission.VIEW_STATEMENT, Permission.REQUEST_ADDRESS_CHANGE,
    Permission.MOVE_TO_PAPER, Permission.CANCEL_RESEND,
})

MATRIX: Mapping[Role, frozenset[Permission]] = MappingProxyType({
    Role.AGENT: _AGENT,
    # the second person of the two-person rule for addresses, and lifts a suppression (which
    # sends mail to an address that once bounced or complained)
    Role.SUPERVISOR: _AGENT | {Permission.APPROVE_ADDRESS_CHANGE, Permission.LIFT_SUPPRESSION},
    Role.FINANCE: frozenset({Permission.VIEW_REPORTS}),
    Role.AUDITOR: frozenset({Permission.VIEW_AUDIT}),
    Role.ADMIN: frozenset({Permission.MANAGE_USERS}),
})
"""Every permission of every role: the one place the desk decides who may do what."""


def permissions(roles: Iterable[Role]) -> frozenset[Permission]:
    """Everything a user holding these roles may do."""
    return frozenset().union(*(MATRIX[Role(role)] for role in roles))


def allowed(roles: Iterable[Role], permission: Permission) -> bool:
    """May a user holding these roles do this? No role, no permission."""
    return permission in permissions(roles)
