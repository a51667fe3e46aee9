"""The desk's audit trail on SQLite and PostgreSQL: who, when, from where, what, which statement
and why in every entry; a chain that names the first modified, deleted, reordered or inserted
entry; concurrent writers that never fork it; entries written before the desk still verify;
and the access review a compliance officer reads."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from pipeline.desk.audit import (
    AuditRefused,
    DeskAction,
    access_review,
    entries,
    record,
    render_access_review_html,
    verify,
    write_access_review,
)
from pipeline.desk.contacts import open_contact
from pipeline.desk.reasons import ReasonRefused
from pipeline.ledger import Ledger, LedgerError
from pipeline.ledger.audit import GENESIS, ProblemKind
from pipeline.settings import Settings
from tests.support.desk_accounts import add_statements
from tests.support.send import WallClock


def _five(ledger: Ledger, clock: WallClock) -> list[str]:
    hashes = []
    for n in range(1, 6):
        clock.advance(seconds=1)
        hashes.append(record(ledger, actor=f"agent{n}", action=DeskAction.SEARCH, source="10.0.0.5",
                             detail={"key": "member"}))
    return hashes


def _sql(ledger: Ledger, statement: str, **params: object) -> None:
    with ledger.begin() as conn:
        conn.execute(text(statement), params)


def test_an_entry_says_who_when_from_where_what_which_statement_and_why(
        ledger: Ledger, clock: WallClock) -> None:
    record(ledger, actor="alice", action=DeskAction.MOVED_TO_PAPER, source="10.0.0.7",
           statement_id="st-1", reason="member asked for paper on the call",
           detail={"channel": "paper"})
    (entry,) = entries(ledger)
    assert (entry.actor, entry.at[:19], entry.source, entry.action, entry.statement_id, entry.reason,
            entry.detail) == ("alice", "2026-12-03T10:00:00", "10.0.0.7", "moved_to_paper", "st-1",
                              "member asked for paper on the call", {"channel": "paper"})
    assert verify(ledger).intact


def test_entries_are_newest_first_and_filter_by_actor_statement_and_time(
        ledger: Ledger, clock: WallClock) -> None:
    record(ledger, actor="alice", action=DeskAction.VIEW_STATEMENT, source=None, statement_id="st-1")
    clock.advance(hours=1)
    record(ledger, actor="bob", action=DeskAction.VIEW_STATEMENT, source=None, statement_id="st-2")
    record(ledger, actor="alice", action=DeskAction.SEARCH, source=None)
    assert [e.action for e in entries(ledger, actor="alice")] == ["search", "view_statement"]
    assert [e.actor for e in entries(ledger, statement_id="st-2")] == ["bob"]
    assert [e.actor for e in entries(ledger, since=clock())] == ["alice", "bob"]
    assert len(entries(ledger, limit=1)) == 1


def test_an_unknown_action_or_a_detail_that_would_hold_personal_data_is_refused(
        ledger: Ledger) -> None:
    with pytest.raises(AuditRefused, match="not a desk audit action"):
        record(ledger, actor="alice", action="peeked", source=None)
    with pytest.raises(AuditRefused, match=r"\['email', 'term'\]"):
        record(ledger, actor="alice", action=DeskAction.SEARCH, source=None,
               detail={"term": "M000123", "email": "jo@example.com"})
    with pytest.raises(AuditRefused, match="actor"):
        record(ledger, actor=" ", action=DeskAction.SEARCH, source=None)
    assert entries(ledger) == []


def test_an_entry_without_source_or_reason_hashes_exactly_as_entries_did_before_the_desk(
        ledger: Ledger, clock: WallClock) -> None:
    digest = ledger.audit("pipeline", "send", None, {"pool": "pool_a"})
    row = ledger.fetch("audit_chain")[0]
    material = "\x1f".join([GENESIS, row["at"], "pipeline", "send", "", '{"pool": "pool_a"}'])
    assert digest == hashlib.sha256(material.encode()).hexdigest()


def test_rows_written_before_the_desk_migration_still_verify_after_it(
        ledger_url: str, clock: WallClock) -> None:
    old = Ledger.open(ledger_url, now=clock, migrate=False)
    old.migrate(upto=15)
    prev = GENESIS
    for n in range(3):  # as the ledger wrote them: no source, no reason
        at = f"2026-11-0{n + 1}T00:00:00.000000+00:00"
        body = json.dumps({"n": n})
        digest = hashlib.sha256("\x1f".join([prev, at, "pipeline", "send", "", body]).encode()).hexdigest()
        _sql(old, "INSERT INTO audit_log (at, actor, action, statement_id, detail, prev_hash, hash) "
                  "VALUES (:at, 'pipeline', 'send', NULL, :detail, :prev, :hash)",
             at=at, detail=body, prev=prev, hash=digest)
        prev = digest
    old.close()
    ledger = Ledger.open(ledger_url, now=clock)
    record(ledger, actor="alice", action=DeskAction.SIGN_IN, source="10.0.0.7")
    report = verify(ledger)
    assert report.intact and report.entries == 4
    ledger.close()


def test_a_modified_entry_is_named(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    _sql(ledger, "UPDATE audit_log SET detail = :detail WHERE seq = 3", detail='{"key": "email"}')
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (3, ProblemKind.MODIFIED)
    assert "audit entry 3" in problem.message and "agent3" in problem.message
    with pytest.raises(LedgerError, match="entry 3 does not match the chain"):
        ledger.verify_audit_chain()


def test_a_changed_source_or_reason_is_a_modified_entry(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    _sql(ledger, "UPDATE audit_log SET source = '192.168.1.1' WHERE seq = 4")
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (4, ProblemKind.MODIFIED)


def test_an_entry_rewritten_with_its_hash_recomputed_is_still_found(
        ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    row = ledger.fetch("audit_chain")[1]
    from pipeline.ledger.audit import entry_hash

    forged = entry_hash(row["prev_hash"], row["at"], "mallory", row["action"], None, row["detail"],
                        row["source"], row["reason"])
    _sql(ledger, "UPDATE audit_log SET actor = 'mallory', hash = :hash WHERE seq = 2", hash=forged)
    problem = verify(ledger).problem
    # only hashes are evidence: the original entry 2 is gone (deleted, or rewritten and rehashed)
    assert problem is not None and (problem.seq, problem.kind) == (3, ProblemKind.DELETED)
    assert "entry 2 was rewritten and its hash recomputed" in problem.message


def test_gaps_in_seq_are_no_finding_only_broken_links_are(
        ledger: Ledger, ledger_url: str, clock: WallClock) -> None:
    """PostgreSQL's identity skips the values of rolled-back inserts; seq is not hashed."""
    _five(ledger, clock)
    with pytest.raises(RuntimeError), ledger.begin() as conn:  # a writer that rolled back
        conn.execute(text("INSERT INTO audit_log (at, actor, action, statement_id, detail, prev_hash, "
                          "hash) VALUES ('x', 'x', 'x', NULL, '{}', 'rolled-back', 'rolled-back')"))
        raise RuntimeError("the request failed after its insert")
    from pipeline.ledger.audit import entry_hash

    prev = ledger.fetch("audit_chain")[-1]["hash"]  # an entry written with an explicit seq jump
    at = ledger.now()
    _sql(ledger, "INSERT INTO audit_log (seq, at, actor, action, statement_id, detail, prev_hash, "
                 "hash) VALUES (1000, :at, 'agent6', 'search', NULL, '{}', :prev, :hash)",
         at=at, prev=prev, hash=entry_hash(prev, at, "agent6", "search", None, "{}"))
    if ledger.dialect == "postgresql":  # the identity moves on past it, as after rollbacks
        _sql(ledger, "SELECT setval(pg_get_serial_sequence('audit_log', 'seq'), 1000)")
    record(ledger, actor="agent7", action=DeskAction.SEARCH, source=None)
    seqs = [row["seq"] for row in ledger.fetch("audit_chain")]
    assert seqs[-2] == 1000 and seqs[-1] > 1000
    report = verify(ledger)
    assert report.intact and report.entries == 7, report.problem
    _sql(ledger, "DELETE FROM audit_log WHERE seq = 1000")
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (seqs[-1], ProblemKind.DELETED)
    assert "after entry 5 was deleted" in problem.message


def test_a_reason_holding_member_details_is_refused_and_nothing_is_written(
        ledger: Ledger) -> None:
    for why in ("member is jo.smith@example.com", "DOB 1961-04-12 confirmed", "ssn 123456789",
                "call 555-867-5309", "ok"):
        with pytest.raises(ReasonRefused):
            record(ledger, actor="alice", action=DeskAction.MOVED_TO_PAPER, source=None,
                   statement_id="st-1", reason=why)
    assert entries(ledger) == []
    record(ledger, actor="alice", action=DeskAction.MOVED_TO_PAPER, source=None,
           statement_id="st-1", reason="  member   asked for paper  ")
    assert entries(ledger)[0].reason == "member asked for paper"


def test_a_deleted_entry_is_found_at_its_successor(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    _sql(ledger, "DELETE FROM audit_log WHERE seq = 3")
    report = verify(ledger)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.kind) == (4, ProblemKind.DELETED)
    assert "after entry 2 was deleted" in report.problem.message
    assert report.entries == 3


def test_deleting_the_first_entry_is_found(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    _sql(ledger, "DELETE FROM audit_log WHERE seq = 1")
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (2, ProblemKind.DELETED)


def test_two_swapped_entries_are_reported_as_reordered(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    rows = {row["seq"]: row for row in ledger.fetch("audit_chain")}
    for seq, other in ((2, 4), (4, 2)):
        source = rows[other]
        _sql(ledger, "UPDATE audit_log SET at = :at, actor = :actor, action = :action, detail = :detail, "
                     "prev_hash = :prev, hash = :hash WHERE seq = :seq",
             at=source["at"], actor=source["actor"], action=source["action"], detail=source["detail"],
             prev=f"tmp{seq}", hash=f"tmp-hash{seq}", seq=seq)  # the unique indexes hold until both moved
    for seq, other in ((2, 4), (4, 2)):
        _sql(ledger, "UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE seq = :seq",
             prev=rows[other]["prev_hash"], hash=rows[other]["hash"], seq=seq)
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (2, ProblemKind.REORDERED)
    assert "belongs after entry 3, not after entry 1" in problem.message


def test_a_fork_is_refused_by_the_database_and_a_forged_branch_is_found(
        ledger: Ledger, clock: WallClock) -> None:
    hashes = _five(ledger, clock)
    fork = {"at": "2026-12-03T10:00:09.000000+00:00", "prev": hashes[1], "hash": "f" * 64}
    insert = ("INSERT INTO audit_log (seq, at, actor, action, statement_id, detail, prev_hash, hash) "
              "VALUES (100, :at, 'mallory', 'search', NULL, '{}', :prev, :hash)")
    with pytest.raises(IntegrityError):
        _sql(ledger, insert, **fork)
    _sql(ledger, "DROP INDEX audit_log_prev_hash")  # what an attacker would have to do first
    from pipeline.ledger.audit import entry_hash

    fork["hash"] = entry_hash(hashes[1], fork["at"], "mallory", "search", None, "{}")
    _sql(ledger, insert, **fork)
    problem = verify(ledger).problem
    assert problem is not None and (problem.seq, problem.kind) == (100, ProblemKind.INSERTED)
    assert "claims entry 2" in problem.message


def test_a_cut_off_end_is_found_against_a_recorded_head(ledger: Ledger, clock: WallClock) -> None:
    _five(ledger, clock)
    recorded = verify(ledger)
    assert recorded.intact and recorded.entries == 5
    record(ledger, actor="alice", action=DeskAction.SIGN_OUT, source=None)
    assert verify(ledger, expect_head=recorded.head).intact, "entries added since are fine"
    _sql(ledger, "DELETE FROM audit_log WHERE seq >= 5")
    assert verify(ledger).intact, "a shorter chain is intact on its own"
    problem = verify(ledger, expect_head=recorded.head).problem
    assert problem is not None and (problem.seq, problem.kind) == (4, ProblemKind.DELETED)
    assert "no longer in the audit log" in problem.message


def _hammer(url: str, threads: int, writes: int) -> None:
    """Each thread its own ledger (as separate web workers and Airflow tasks would be)."""
    ready = threading.Barrier(threads)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        ledger = Ledger.open(url, migrate=False)
        try:
            ready.wait()
            for m in range(writes):
                record(ledger, actor=f"worker{n}", action=DeskAction.VIEW_STATEMENT, source=f"10.0.0.{n}",
                       statement_id=f"st-{m}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            ledger.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures, failures


def test_concurrent_writers_never_fork_the_chain(ledger: Ledger, ledger_url: str) -> None:
    threads, writes = 8, 25
    _hammer(ledger_url, threads, writes)
    report = verify(ledger)
    assert report.intact, report.problem
    assert report.entries == threads * writes
    counts = ledger.fetch("audit_entries", since=None, actor="worker3", statement_id=None, limit=1000)
    assert len(counts) == writes


def test_the_access_review_counts_looks_flags_unusual_volumes_and_looks_without_a_contact(
        ledger: Ledger, clock: WallClock, tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path, audit_unusual_members_per_day=2, desk_contact_hours=1)
    add_statements(ledger, {"st-a": "M000000111", "st-a2": "M000000111~P1", "st-b": "M000000222",
                            "st-c": "M000000333", "st-d": "M000000444"})
    # alice: a caller, a contact, two looks inside it (the member's and a patient's own statement)
    open_contact(ledger, settings, actor="alice", member_id="M000000111", reference="call-1",
                 purpose="missing statement", source="10.0.0.7")
    for sid in ("st-a", "st-a2"):
        record(ledger, actor="alice", action=DeskAction.VIEW_STATEMENT, source="10.0.0.7", statement_id=sid)
    record(ledger, actor="alice", action=DeskAction.SEARCH, source="10.0.0.7", detail={"key": "member"})
    record(ledger, actor="alice", action=DeskAction.MOVED_TO_PAPER, source="10.0.0.7", statement_id="st-a",
           reason="asked on the call")
    clock.advance(hours=2)  # the contact has closed
    record(ledger, actor="alice", action=DeskAction.VIEW_STATEMENT, source="10.0.0.7", statement_id="st-a")
    # bob: three members in a day, no contact at all, one from the command line
    for sid in ("st-b", "st-c"):
        record(ledger, actor="bob", action=DeskAction.VIEW_STATEMENT, source="10.0.0.8", statement_id=sid)
    record(ledger, actor="bob", action=DeskAction.LOOKUP, source="cli@host", statement_id="st-d")
    ledger.audit("pipeline", "send", None, {"pool": "pool_a"})  # not a desk entry
    clock.advance(days=1)
    record(ledger, actor="carol", action=DeskAction.VIEW_STATEMENT, source=None, statement_id="st-b")

    review = access_review(ledger, settings, date(2026, 12, 3), date(2026, 12, 3))
    users = {u.user: u for u in review.users}
    assert set(users) == {"alice", "bob"}, "carol's look is the next day, outside the period"
    alice, bob = users["alice"], users["bob"]
    assert (alice.searches, alice.views, alice.statements, alice.members, alice.actions,
            alice.uncontacted) == (1, 3, 2, 1, 1, 1)
    assert (bob.views, bob.members, bob.busiest_day_members, bob.uncontacted) == (3, 3, 3, 3)
    assert [(v.user, v.day, v.members) for v in review.unusual] == [("bob", date(2026, 12, 3), 3)]
    flagged = [(look.user, look.statement_id, look.action, look.member_masked)
               for look in review.uncontacted]
    assert flagged == [("alice", "st-a", "view_statement", "\u2022" * 5 + "0111"),
                       ("bob", "st-b", "view_statement", "\u2022" * 5 + "0222"),
                       ("bob", "st-c", "view_statement", "\u2022" * 5 + "0333"),
                       ("bob", "st-d", "lookup", "\u2022" * 5 + "0444")]
    assert review.chain.intact

    paths = write_access_review(review, tmp_path / "reports")
    html, csv_text = paths["html"].read_text(), paths["csv"].read_text()
    assert html == render_access_review_html(review)
    head = verify(ledger)  # kept outside the database: in both files, for the compliance file
    assert head.head in html and head.head_at is not None and head.head_at[:19] in html
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {k: rows[0][k] for k in ("section", "entries", "head", "head_at", "intact")} == {
        "section": "chain_head", "entries": str(head.entries), "head": head.head,
        "head_at": head.head_at, "intact": "true"}
    assert "<script" not in html.lower() and "bob" in html and "st-d" in html
    for full_id in ("M000000111", "M000000222", "M000000444", "P1"):
        assert full_id not in html and full_id not in csv_text, "member ids only masked"
    assert "missing statement" not in html + csv_text and "call-1" not in html + csv_text
    lines = csv_text.splitlines()
    assert lines[0].startswith("section,user,day") and lines[1].startswith("chain_head,") and sum(
        line.startswith("no_open_contact,") for line in lines) == 4
    assert "unusual_volume,bob,2026-12-03" in csv_text
    assert access_review(ledger, settings, date(2026, 12, 3)).users[-1].user == "carol"
