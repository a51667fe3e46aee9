"""`eob lookup`: the desk's statement view in a terminal, found by any of the desk's keys, every
look and search audited (a search by its keyed hash) as the login running it from this machine, a
search opening a member contact like the desk's search page, the email address never printed."""

from __future__ import annotations

import getpass
import socket
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


CONTACT = ("--reference", "CALL-2291", "--purpose", "Statement not received")


def _lookup(*args: str, actor: str | None = "agent.alice") -> Result:
    from pipeline.cli.main import app

    return CliRunner().invoke(app, ["lookup", *args, *(("--actor", actor) if actor else ())])


def _contacts(desk: SmallDesk) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import text

    with desk.ctx.ledger.begin() as conn:
        return [tuple(row) for row in conn.execute(text(  # type: ignore[misc]
            "SELECT actor, member_id, reference, purpose FROM desk_contacts ORDER BY opened_at"))]


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
    member, email, claim = desk.member_of(sid), desk.emails[sid], desk.claims[sid]
    for option, term, key in (("--member", member, SearchKey.MEMBER),
                              ("--claim", claim, SearchKey.CLAIM),
                              ("--email", email.upper(), SearchKey.EMAIL)):
        shown = _lookup(option, term, *CONTACT)
        assert shown.exit_code == 0, shown.output
        assert f"{sid} · 2026-11" in shown.output and term not in shown.output
        lookup, contact, searched = entries(desk.ctx.ledger, limit=3)
        assert (lookup.action, lookup.statement_id, lookup.detail) == ("lookup", sid, {"by": key.value})
        assert (contact.action, contact.reason) == ("contact_opened", "Statement not received")
        assert searched.action == "search" and searched.detail == {
            "key": key.value, "term_hash": term_digest(desk.ctx, key, term), "found": 1}
    assert _contacts(desk) == [("agent.alice", member, "CALL-2291", "Statement not received")] * 3
    assert email not in "".join(str(e.detail) for e in entries(desk.ctx.ledger))


@pytest.mark.parametrize("option", ["--member", "--claim", "--email"])
def test_a_search_needs_the_contact_it_answers(desk: SmallDesk, option: str) -> None:
    sid = desk.statements[Status.PAPER_QUEUED]
    term = {"--member": desk.member_of(sid), "--claim": desk.claims[sid], "--email": desk.emails[sid]}[option]
    for partial in ((), ("--reference", "CALL-2291"), ("--purpose", "Statement not received")):
        refused = _lookup(option, term, *partial)
        assert refused.exit_code == 2 and "--reference" in refused.output, refused.output
        assert sid not in refused.output
    refused = _lookup(option, term, "--reference", "CALL-2291", "--purpose", "born 04/12/1961")
    assert refused.exit_code == 2 and "must not hold the member's details" in refused.output
    assert entries(desk.ctx.ledger) == [] and _contacts(desk) == []


def test_a_lookup_by_statement_id_opens_a_contact_when_given_one(desk: SmallDesk) -> None:
    sid = desk.statements[Status.RETRY_SCHEDULED]
    assert _lookup(sid).exit_code == 0 and _contacts(desk) == []
    assert _lookup(sid, *CONTACT).exit_code == 0
    assert _contacts(desk) == [("agent.alice", desk.member_of(sid), "CALL-2291", "Statement not received")]


def test_the_actor_is_the_login_and_the_source_this_machine_by_default(desk: SmallDesk) -> None:
    sid = desk.statements[Status.RETRY_SCHEDULED]
    assert _lookup(sid, actor=None).exit_code == 0
    entry = entries(desk.ctx.ledger)[0]
    assert (entry.action, entry.actor, entry.source) == ("lookup", getpass.getuser(),
                                                         f"cli@{socket.gethostname()}")


def test_one_key_is_needed_and_nothing_found_says_so(desk: SmallDesk) -> None:
    assert _lookup().exit_code == 2
    both = _lookup(desk.statements[Status.PAPER_QUEUED], "--member", "M000000001", *CONTACT)
    assert both.exit_code == 2 and "give one of" in both.output
    missing = _lookup("st-2026-11-0000000000000000")
    assert missing.exit_code == 1 and "no statement found by that statement" in missing.output
    assert entries(desk.ctx.ledger)[0].detail["found"] == 0
    assert _lookup("--email", "nobody@example.org", *CONTACT).exit_code == 1
    assert _contacts(desk) == []  # nobody found: no contact


def test_the_help_says_a_subscribers_member_id_lists_the_subscribers_statements_only(desk: SmallDesk) -> None:
    from pipeline.cli.main import app

    shown = CliRunner().invoke(app, ["lookup", "--help"])
    assert shown.exit_code == 0
    assert "lists the subscriber's statements, never a patient's" in shown.output
    assert "their patients' own" not in shown.output
