"""The users page ends a user's sessions when their account changes under them: a password reset,
a change of roles or a disabled account signs out every browser of theirs (and any copy of its
cookie); the administrator's own session outlives a reset of their own password."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from pipeline.web.csrf import FORM_FIELD
from tests.web.conftest import Desk, csrf_of

CHANGES = {
    "password": ("/users/target/password", {"password": "another long passphrase"}),
    "roles": ("/users/target/roles", {"roles": ["finance"]}),
    "disable": ("/users/target/active", {"active": "no"}),
}


def _signed_out(client: TestClient) -> str:
    """Where the user's next page sends them."""
    return client.get("/search").headers.get("location", "")


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_account_change_ends_the_users_sessions(desk: Desk, change: str) -> None:
    browsers = [desk.as_user("target"), desk.as_user("target")]
    bystander = desk.as_user("agent")
    admin = desk.as_user("admin")
    assert all(b.get("/search").status_code == 200 for b in browsers)
    path, form = CHANGES[change]
    assert admin.post(path, data={FORM_FIELD: csrf_of(admin), **form}).status_code == 303
    assert "Nothing was changed" not in admin.get("/users").text
    for browser in browsers:
        assert _signed_out(browser) == "/signin?why=account_changed"
    notice = browsers[0].get("/signin?why=account_changed").text
    assert "an administrator changed your account" in notice
    assert bystander.get("/search").status_code == 200, "other users stay signed in"
    assert admin.get("/users").status_code == 200


def test_an_admin_resetting_their_own_password_stays_signed_in_here_only(desk: Desk) -> None:
    here, elsewhere = desk.as_user("admin"), desk.as_user("admin")
    response = here.post("/users/admin/password",
                         data={FORM_FIELD: csrf_of(here), "password": "a brand new passphrase"})
    assert response.status_code == 303
    assert "New password set for admin" in here.get("/users").text
    assert elsewhere.get("/users").headers["location"] == "/signin?why=account_changed"


def test_enabling_an_account_again_or_unlocking_it_signs_nobody_out(desk: Desk) -> None:
    target, admin = desk.as_user("target"), desk.as_user("admin")
    for path, form in (("/users/target/unlock", {}), ("/users/target/active", {"active": "yes"})):
        admin.post(path, data={FORM_FIELD: csrf_of(admin), **form})
    assert target.get("/search").status_code == 200
