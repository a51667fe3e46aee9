"""The permission matrix: each role may do its job and nothing else, and the database accepts
exactly the roles the code knows."""

from __future__ import annotations

import re

import pytest

from pipeline.desk.permissions import MATRIX, Permission, Role, allowed, permissions
from pipeline.ledger.sql import SQL_DIR

P = Permission
AGENT = {P.SEARCH, P.VIEW_STATEMENT, P.REQUEST_ADDRESS_CHANGE, P.MOVE_TO_PAPER, P.CANCEL_RESEND}
EXPECTED = {
    Role.AGENT: AGENT,
    Role.SUPERVISOR: AGENT | {P.APPROVE_ADDRESS_CHANGE, P.LIFT_SUPPRESSION},
    Role.FINANCE: {P.VIEW_REPORTS},
    Role.AUDITOR: {P.VIEW_AUDIT},
    Role.ADMIN: {P.MANAGE_USERS},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_has_exactly_its_permissions(role: Role, permission: Permission) -> None:
    assert allowed([role], permission) is (permission in EXPECTED[role])


def test_every_role_is_in_the_matrix_and_every_permission_belongs_to_some_role() -> None:
    assert set(MATRIX) == set(Role)
    assert set().union(*MATRIX.values()) == set(Permission)


def test_member_data_is_out_of_reach_of_finance_auditors_and_admins() -> None:
    for role in (Role.FINANCE, Role.AUDITOR, Role.ADMIN):
        assert not allowed([role], P.SEARCH) and not allowed([role], P.VIEW_STATEMENT)


def test_an_agent_cannot_approve_an_address_change_a_supervisor_can() -> None:
    assert not allowed([Role.AGENT], P.APPROVE_ADDRESS_CHANGE)
    assert allowed([Role.SUPERVISOR], P.APPROVE_ADDRESS_CHANGE)


def test_several_roles_grant_the_union_and_no_role_grants_nothing() -> None:
    assert permissions([Role.FINANCE, Role.AUDITOR]) == {P.VIEW_REPORTS, P.VIEW_AUDIT}
    assert permissions([]) == frozenset()
    assert not any(allowed([], permission) for permission in Permission)


def test_the_matrix_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        MATRIX[Role.AGENT] = frozenset(Permission)  # type: ignore[index]


def test_the_database_accepts_exactly_the_roles_of_the_code() -> None:
    migration = (SQL_DIR / "migrations" / "016_desk_accounts.sql").read_text()
    check = re.search(r"role\s+TEXT NOT NULL CHECK \(role IN \(([^)]*)\)\)", migration)
    assert check is not None
    assert set(re.findall(r"'(\w+)'", check[1])) == {role.value for role in Role}
