"""`eob lookup`: the desk's statement view in a terminal, found by any of the desk's keys, every
look and search audited (a search by its keyed hash), the email address never printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline.desk.audit import entries
from pipeline.desk.search import SearchKey, term_digest
from pipeline.desk.timeline import LABELS
from pipeline.ledger import Event, Status
from tests.support.desk import SmallDesk, small_desk


@pytest.fixture
def desk(tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDesk]:
    made = small_desk(tmp_path / "ws", [Status.RETRY_SCHEDULED, Status.PAPER_QUEUED], ledger_url=ledger_url)
    monkeypatch.setenv("EOB_WORKSPACE", str(made.ctx.settings.workspace))
    monkeypatch.setenv("EOB_LEDGER_URL", made.ctx.settings.ledger_dsn)
    monkeypatch.setenv("COLUMNS", "200")
    yield made
    made.ctx.ledger.close()


def _lookup(*args: str) -> Result:
    from pipeline.cli.main import app

    return CliRunner().invoke(app, ["lookup", *args, "--actor", "agent.alice"])


def test_a_statement_shows_its_status_queue_next_action_deadline_and_whole_timeline(desk: SmallDesk) -> None:
    sid = desk.statements[Status.RETRY_SCHEDULED]
    shown = _lookup(sid)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"{sid} · 2026-11 · version 1 · status retry_scheduled (Waiting for an email retry) · email" in out
    assert "recipient: subscriber, member \u2022\u2022\u2022\u2022\u20220001" in out
    assert "queue: retry · next: Email again (the next retry) — by 2026-12-01 " in out
    assert "delivery deadline: 2026-12-22 06:00 UTC" in out
    for event in (Event.COMPOSED, Event.RENDERED, Event.QUEUED, Event.SENT, Event.RETRY_SCHEDULED):
        assert LABELS[event] in out
    assert "Bounced: mailbox full" in out and "452" not in out  # the server's reply stays out
    entry = entries(desk.ctx.ledger)[0]
    assert (entry.action, entry.actor, entry.statement_id, entry.detail) == (
        "lookup", "agent.alice", sid, {"by": "statement"})
    assert entry.source


def test_each_search_key_finds_the_statement_and_is_audited_as_its_hash(desk: SmallDesk) -> None:
    sid = desk.statements[Status.PAPER_QUEUED]
    email, claim = desk.emails[sid], desk.claims[sid]
    for option, term, key in (("--member", desk.member_of(sid), SearchKey.MEMBER),
                              ("--claim", claim, SearchKey.CLAIM),
                              ("--email", email.upper(), SearchKey.EMAIL)):
        shown = _lookup(option, term)
        assert shown.exit_code == 0, shown.output
        assert f"{sid} · 2026-11" in shown.output and term not in shown.output
        lookup, searched = entries(desk.ctx.ledger, limit=2)
        assert (lookup.action, lookup.statement_id, lookup.detail) == ("lookup", sid, {"by": key.value})
        assert searched.action == "search" and searched.detail == {
            "key": key.value, "term_hash": term_digest(desk.ctx, key, term), "found": 1}
    assert email not in "".join(str(e.detail) for e in entries(desk.ctx.ledger))


def test_one_key_is_needed_and_nothing_found_says_so(desk: SmallDesk) -> None:
    assert _lookup().exit_code == 2
    both = _lookup(desk.statements[Status.PAPER_QUEUED], "--member", "M000000001")
    assert both.exit_code == 2 and "give one of" in both.output
    missing = _lookup("st-2026-11-0000000000000000")
    assert missing.exit_code == 1 and "no statement found by that statement" in missing.output
    assert entries(desk.ctx.ledger)[0].detail["found"] == 0
    assert _lookup("--email", "nobody@example.org").exit_code == 1
