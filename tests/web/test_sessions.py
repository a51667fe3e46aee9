"""Desk sessions in the ledger database (SQLite and PostgreSQL): a cookie works while its session
is live and not after, whatever its signature says; only a hash of the session id is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pipeline.ledger import Ledger
from pipeline.settings import Settings
from pipeline.web.sessions import PURGE_AFTER_DAYS, Ended, Refused, Session, SessionStore, end_sessions_of
from tests.support.reconcile import FakeNow


@pytest.fixture
def store(ledger_url: str, tmp_path) -> tuple[SessionStore, Ledger, FakeNow]:  # type: ignore[no-untyped-def]
    now = FakeNow()
    ledger = Ledger.open(ledger_url, now=now)
    yield SessionStore(ledger, Settings(workspace=tmp_path, web_idle_minutes=10), now), ledger, now
    ledger.close()


def test_a_session_lives_until_it_ends_and_stores_no_usable_cookie(store) -> None:  # type: ignore[no-untyped-def]
    sessions, ledger, now = store
    cookie = sessions.start("agent", source="10.0.0.7")
    live = sessions.load(cookie)
    assert isinstance(live, Session) and live.username == "agent" and len(live.csrf_token) == 64
    session_id = cookie.rsplit(".", 1)[0]
    with ledger.begin() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM web_sessions")) for v in row)
    assert session_id not in stored and cookie not in stored
    sessions.flash(live.session_hash, "Moved to paper.")
    assert sessions.load(cookie).flash == "Moved to paper."  # type: ignore[union-attr]
    sessions.end(live.session_hash, Ended.SIGNED_OUT)
    assert sessions.load(cookie) == Refused(Ended.SIGNED_OUT)


def test_forged_and_foreign_cookies_name_no_session(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sessions, ledger, now = store
    cookie = sessions.start("agent", source=None)
    session_id = cookie.rsplit(".", 1)[0]
    assert sessions.load(session_id + ".forgedsignature") is None
    assert sessions.load("") is None and sessions.load(None) is None
    other = SessionStore(ledger, Settings(workspace=tmp_path, desk_secret="another-secret"), now)
    assert other.load(cookie) is None, "a new desk secret signs everyone out"


def test_idle_sessions_end_and_old_rows_are_purged(store) -> None:  # type: ignore[no-untyped-def]
    sessions, ledger, now = store
    cookie = sessions.start("agent", source=None)
    now.advance(minutes=9)
    assert isinstance(sessions.load(cookie), Session)
    now.advance(minutes=9)
    assert isinstance(sessions.load(cookie), Session), "used 9 minutes ago: still live"
    now.advance(minutes=11)
    assert sessions.load(cookie) == Refused(Ended.IDLE)
    now.advance(days=PURGE_AFTER_DAYS + 1)
    sessions.start("supervisor", source=None)
    assert sessions.load(cookie) is None, "a long-ended session's row is gone"
    with ledger.begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM web_sessions")).scalar() == 1


def test_ending_a_users_sessions_ends_all_of_theirs_but_the_one_kept(store) -> None:  # type: ignore[no-untyped-def]
    sessions, ledger, now = store
    first, second, kept = (sessions.start("agent", source=None) for _ in range(3))
    other = sessions.start("supervisor", source=None)
    keep = sessions.load(kept)
    assert isinstance(keep, Session)
    assert end_sessions_of(ledger, "agent", keep=keep.session_hash) == 2
    assert sessions.load(first) == Refused(Ended.ACCOUNT_CHANGED) == sessions.load(second)
    assert isinstance(sessions.load(kept), Session) and isinstance(sessions.load(other), Session)
    assert end_sessions_of(ledger, "agent") == 1, "with none kept, the last one ends too"
    assert end_sessions_of(ledger, "agent") == 0
