"""Every route against every role, table-driven from the permission matrix: a role the matrix
grants the route's permission gets the page (200) or its redirect (303), any other gets 403;
nobody signed in gets sent to sign in (pages) or refused (forms); and no form is accepted without
the session's own CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipeline.desk.actions import request_address_change
from pipeline.desk.permissions import MATRIX, Permission, Role
from pipeline.web.access import PUBLIC, route_permissions
from pipeline.web.csrf import FORM_FIELD
from tests.web.conftest import USERS, Desk, World, csrf_of

PUBLIC_ROUTES = {("GET", "/signin"), ("POST", "/signin")}
PAGES_THAT_REDIRECT = {("GET", "/")}
FORMS_THAT_ANSWER = {("POST", "/search")}
"""Forms answered with a page (the search's results) rather than a redirect."""


@pytest.fixture(scope="module")
def shared(desk_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One desk for the whole matrix: every request here either only reads or is one whose
    outcome (done or refused) is a redirect either way. It has a run report and an address
    change waiting for a supervisor, so the routes that show or decide one have one."""
    desk = Desk(desk_world, tmp_path_factory.mktemp("matrix"))
    reports = desk.settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "eob-2026-11-summary.csv").write_text("run_id,metric,value\neob-2026-11,statements,25\n")
    request_address_change(desk.ctx, desk.world.statements["retry"], "new.address@example.org",
                           actor="agent", reason="member confirmed on the phone", verified_via="phone",
                           source="127.0.0.1")
    yield desk
    desk.close()


def _routes(desk: Desk) -> dict[tuple[str, str], Permission | str | None]:
    return route_permissions(desk.app)


def _concrete(desk: Desk, path: str) -> str:
    waiting = desk.ctx.ledger.fetch("desk_pending_changes")
    change = waiting[0]["change_id"] if waiting else "decided-already"
    return (path.replace("{statement_id}", desk.world.statements["sent"])
            .replace("{change_id}", change).replace("{username}", "target")
            .replace("{name}", "eob-2026-11"))


def test_every_route_declares_a_permission_or_is_the_sign_in(shared: Desk) -> None:
    table = _routes(shared)
    assert "missing" not in table.values(), [k for k, v in table.items() if v == "missing"]
    assert {route for route, need in table.items() if need == PUBLIC} == PUBLIC_ROUTES
    assert set(Permission) <= {need for need in table.values() if isinstance(need, Permission)}, \
        "every permission of the matrix guards at least one route"


def test_every_route_refuses_a_visitor_who_is_not_signed_in(shared: Desk) -> None:
    client = shared.client()
    for (method, path), need in _routes(shared).items():
        if need == PUBLIC:
            continue
        response = client.request(method, _concrete(shared, path), data={FORM_FIELD: "x"})
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/signin"), (method, path)
        else:
            assert response.status_code == 401, (method, path)
            assert "not signed in" in response.text


def _matrix_cases() -> list[tuple[Role]]:
    return [(role,) for role in Role]


@pytest.mark.parametrize(("role",), _matrix_cases(), ids=[role.value for role in Role])
def test_each_role_gets_exactly_the_routes_the_matrix_grants(shared: Desk, role: Role) -> None:
    outcomes = {}
    for (method, path), need in sorted(_routes(shared).items(), key=lambda item: item[0][1]):
        if need == PUBLIC:
            continue
        client = shared.as_user(USERS[role])  # a fresh session each time: sign-out is a route too
        data = {FORM_FIELD: csrf_of(client), **_filled(shared, path)} if method == "POST" else None
        response = client.request(method, _concrete(shared, path), data=data)
        granted = need is None or (isinstance(need, Permission) and need in MATRIX[role])
        if not granted:
            expected = {403}
        elif (method, path) in FORMS_THAT_ANSWER:
            expected = {200}
        elif method == "POST" or (method, path) in PAGES_THAT_REDIRECT:
            expected = {303}
        else:
            expected = {200}
        outcomes[(method, path)] = response.status_code
        assert response.status_code in expected, (role.value, method, path, response.status_code)
        if response.status_code == 403:
            assert "Not allowed for your role" in response.text
    assert outcomes


def _filled(desk: Desk, path: str) -> dict[str, str]:
    if path == "/search":
        return {"key": "statement", "term": desk.world.statements["sent"], "reference": "call-1",
                "purpose": "Complaint"}
    return {"reason": "the member asked for it"}


def _posts(desk: Desk) -> list[tuple[str, Permission | None]]:
    return [(path, need) for (method, path), need in _routes(desk).items()
            if method == "POST" and need != PUBLIC and not isinstance(need, str)]


def _granted_user(need: Permission | None) -> str:
    return next(USERS[role] for role in Role if need is None or need in MATRIX[role])


def test_a_form_without_the_sessions_token_is_refused(shared: Desk) -> None:
    for path, need in _posts(shared):
        client = shared.as_user(_granted_user(need))
        response = client.post(_concrete(shared, path), data={"reason": "because the member asked"})
        assert response.status_code == 403, path
        assert "Form not accepted" in response.text


def test_a_form_with_another_sessions_token_is_refused(shared: Desk) -> None:
    for path, need in _posts(shared):
        user = _granted_user(need)
        stolen = csrf_of(shared.as_user(user))  # the same user's other session
        client = shared.as_user(user)
        response = client.post(_concrete(shared, path), data={FORM_FIELD: stolen,
                                                              "reason": "because the member asked"})
        assert response.status_code == 403, path


def test_a_refused_form_changes_nothing(desk: Desk) -> None:
    agent = desk.as_user("agent")
    sid = desk.world.statements["sent"]
    before = agent.get(f"/statements/{sid}").text
    forged = agent.post(f"/statements/{sid}/paper", data={"reason": "moved by another site"})
    assert forged.status_code == 403
    after = agent.get(f"/statements/{sid}").text
    assert "Moved to paper" not in after and "Move to paper" in before and "Move to paper" in after


def _client_for(desk: Desk, role: Role) -> TestClient:
    return desk.as_user(USERS[role])


def test_the_page_offers_only_the_actions_the_role_may_take(desk: Desk) -> None:
    sid = desk.world.statements["suppressed"]
    agent = _client_for(desk, Role.AGENT).get(f"/statements/{sid}").text
    supervisor = _client_for(desk, Role.SUPERVISOR).get(f"/statements/{sid}").text
    assert "Lift suppression" in supervisor and "Lift suppression" not in agent
    sent = desk.world.statements["sent"]
    for role in (Role.AGENT, Role.SUPERVISOR):
        assert "Move to paper" in _client_for(desk, role).get(f"/statements/{sent}").text
    agent_nav = _client_for(desk, Role.AGENT).get("/search").text
    assert 'href="/approvals"' not in agent_nav and 'href="/audit"' not in agent_nav
    finance = _client_for(desk, Role.FINANCE)
    assert finance.get(f"/statements/{sid}").status_code == 403
    assert finance.get("/search").status_code == 403


def test_the_route_table_is_read_from_the_app(shared: Desk, tmp_path: Path) -> None:
    """A route added without a permission shows up as missing (so the first test catches it)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/forgotten")
    def forgotten() -> str:
        return "no permission declared"

    assert route_permissions(app) == {("GET", "/forgotten"): "missing"}
