"""Signing in and out: sessions end for real, idle sessions time out, guessing is slowed by a
per-address rate limit and stopped by the account lockout, and a refusal never says which part
was wrong."""

from __future__ import annotations

from pathlib import Path

from pipeline.desk.accounts import set_active
from pipeline.desk.audit import entries
from pipeline.web.csrf import FORM_FIELD, SIGNIN_COOKIE
from pipeline.web.sessions import SESSION_COOKIE
from tests.web.conftest import PASSWORD, Desk, World, csrf_of, token_in


def test_sign_in_lands_on_the_roles_first_page_with_a_strict_secure_cookie(desk: Desk) -> None:
    client = desk.client()
    page = client.get("/signin")
    assert page.status_code == 200 and "Sign in" in page.text
    response = client.post("/signin", data={"username": "agent", "password": PASSWORD,
                                            FORM_FIELD: token_in(page.text)})
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "domain" not in attributes
    assert client.get("/").headers["location"] == "/search"
    assert client.get("/search").status_code == 200
    finance = desk.client()
    desk.sign_in(finance, "finance")
    assert finance.get("/").headers["location"] == "/reports"
    assert [e.action for e in entries(desk.ctx.ledger, actor="agent")][:1] == ["sign_in"]


def test_signing_out_ends_the_session_so_a_copied_cookie_is_refused(desk: Desk) -> None:
    client = desk.client()
    assert desk.sign_in(client, "agent") == 303
    copied = client.cookies.get(SESSION_COOKIE)
    token = csrf_of(client)
    response = client.post("/signout", data={FORM_FIELD: token})
    assert response.status_code == 303 and response.headers["location"] == "/signin?why=signed_out"
    assert client.cookies.get(SESSION_COOKIE) is None, "the browser is told to forget the cookie"
    thief = desk.client()
    thief.cookies.set(SESSION_COOKIE, copied)
    page = thief.get("/search")
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")
    posted = thief.post("/search", data={FORM_FIELD: token, "key": "member", "term": "x",
                                         "reference": "c1", "purpose": "Complaint"})
    assert posted.status_code == 401
    assert "sign_out" in [e.action for e in entries(desk.ctx.ledger, actor="agent")]


def test_an_idle_session_is_signed_out_and_a_used_one_is_not(desk: Desk) -> None:
    idle = desk.settings.web_idle_minutes
    busy, quiet = desk.client(), desk.client()
    desk.sign_in(busy, "agent")
    desk.sign_in(quiet, "supervisor")
    for _ in range(3):  # used every two-thirds of the idle time: stays signed in
        desk.now.advance(minutes=idle * 2 / 3)
        assert busy.get("/search").status_code == 200
    page = quiet.get("/search")
    assert page.status_code == 303 and page.headers["location"] == "/signin?why=idle"
    assert "not used for a while" in quiet.get(page.headers["location"]).text
    assert quiet.get("/search").status_code == 303, "an idle session does not come back"


def test_a_session_ends_after_a_working_day_however_busy(desk: Desk) -> None:
    client = desk.client()
    desk.sign_in(client, "agent")
    for _ in range(13 * 6):
        desk.now.advance(minutes=10)
        response = client.get("/search")
        if response.status_code != 200:
            break
    assert response.headers["location"] == "/signin?why=expired"


def test_lockout_after_failed_sign_ins_refuses_even_the_right_password_until_unlocked(desk: Desk) -> None:
    client = desk.client()
    limit = desk.settings.web_max_failed_signins
    messages = set()
    for _ in range(limit):
        page = client.get("/signin")
        response = client.post("/signin", data={"username": "agent", "password": "not the password!",
                                                FORM_FIELD: token_in(page.text)})
        assert response.status_code == 401
        messages.add(_message(response.text))
    assert desk.sign_in(client, "agent") == 401, "locked: the right password is refused too"
    messages.add(_message(client.post("/signin", data={
        "username": "agent", "password": PASSWORD, FORM_FIELD: token_in(client.get("/signin").text)}).text))
    unknown = client.post("/signin", data={"username": "nobody", "password": "whatever it is",
                                           FORM_FIELD: token_in(client.get("/signin").text)})
    messages.add(_message(unknown.text))
    assert len(messages) == 1, f"one message for every refusal, got {messages}"
    admin = desk.client()
    desk.sign_in(admin, "admin")
    assert admin.post("/users/agent/unlock", data={FORM_FIELD: csrf_of(admin)}).status_code == 303
    assert desk.sign_in(client, "agent") == 303


def test_lockout_ends_by_itself_after_the_lockout_time(desk: Desk) -> None:
    client = desk.client()
    for _ in range(desk.settings.web_max_failed_signins):
        desk.sign_in(client, "supervisor", "wrong password here")
        desk.now.advance(seconds=10)
    assert desk.sign_in(client, "supervisor") == 401
    desk.now.advance(minutes=desk.settings.web_lockout_minutes + 1)
    assert desk.sign_in(client, "supervisor") == 303


def test_sign_in_attempts_are_rate_limited_per_client_address(desk_world: World, tmp_path: Path) -> None:
    desk = Desk(desk_world, tmp_path, web_signins_per_minute=3)
    try:
        client = desk.client()
        codes = [desk.sign_in(client, "nobody", "a wrong password") for _ in range(3)]
        assert codes == [401, 401, 401]
        page = client.get("/signin")
        refused = client.post("/signin", data={"username": "agent", "password": PASSWORD,
                                               FORM_FIELD: token_in(page.text)})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
        assert "Too many sign-in attempts" in refused.text
        desk.now.advance(seconds=61)
        assert desk.sign_in(client, "agent") == 303
    finally:
        desk.close()


def test_the_sign_in_form_needs_its_own_token_and_cookie(desk: Desk) -> None:
    client = desk.client()
    page = client.get("/signin")
    token = token_in(page.text)
    bare = client.post("/signin", data={"username": "agent", "password": PASSWORD})
    assert bare.status_code == 403
    other = desk.client()  # a token from another browser's form (another sign-in cookie)
    other_token = token_in(other.get("/signin").text)
    assert client.post("/signin", data={"username": "agent", "password": PASSWORD,
                                        FORM_FIELD: other_token}).status_code == 403
    client.cookies.delete(SIGNIN_COOKIE)
    assert client.post("/signin", data={"username": "agent", "password": PASSWORD,
                                        FORM_FIELD: token}).status_code == 403
    assert desk.sign_in(client, "agent") == 303


def test_a_user_disabled_elsewhere_is_signed_out_on_their_next_page(desk: Desk) -> None:
    target = desk.client()
    desk.sign_in(target, "target")
    assert target.get("/search").status_code == 200
    set_active(desk.ctx.ledger, "target", False, actor="admin")  # as `eob users disable` does
    assert target.get("/search").headers["location"] == "/signin?why=account_changed"
    assert desk.sign_in(desk.client(), "target") == 401


def _message(html: str) -> str:
    start = html.index('role="alert">') + len('role="alert">')
    return html[start:html.index("</div>", start)]
