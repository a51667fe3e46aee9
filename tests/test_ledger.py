"""The ledger behaves the same on SQLite and PostgreSQL: forward-only, audited, idempotent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from pipeline.ledger import FileAccount, Ledger, LedgerError, NewStatement, QuarantineRow
from pipeline.sqlfiles import SQL_DIR, migrations
from pipeline.statuses import ALLOWED_FROM, Status


def _statement(sid: str = "st-2026-11-aaaa", run_id: str = "eob-2026-11") -> NewStatement:
    return NewStatement(sid, run_id, "2026-11", "M000000001", 1, 0, "email", None,
                        "gmail.com", 4, False)


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    ledger = Ledger.open(ledger_url)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 2)
    yield ledger
    ledger.close()


def test_migrations_apply_once_and_report_version(ledger_url: str) -> None:
    first = Ledger.open(ledger_url, migrate=False)
    expected = [m.version for m in migrations(first.dialect)]
    assert first.migrate() == expected
    assert first.migrate() == []
    assert first.schema_version() == expected[-1] >= 2


def test_statement_moves_forward_and_timeline_records_each_step(ledger: Ledger) -> None:
    assert ledger.add_statements([_statement()]) == 1
    assert ledger.transition("st-2026-11-aaaa", Status.RENDERED, "rendered", sha256="ab", pages=2)
    assert ledger.transition("st-2026-11-aaaa", Status.QUEUED, "queued", pool="pool_a")
    assert ledger.transition("st-2026-11-aaaa", Status.SENT, "sent", attempts_increment=1)
    row = ledger.statement("st-2026-11-aaaa")
    assert (row["status"], row["pool"], row["pages"], row["attempts"]) == ("sent", "pool_a", 2, 1)
    events = [e["event"] for e in ledger.timeline("st-2026-11-aaaa")]
    assert events == ["composed", "rendered", "queued", "sent"]


def test_a_move_backwards_is_refused_and_recorded_not_applied(ledger: Ledger) -> None:
    ledger.add_statements([_statement()])
    ledger.transition("st-2026-11-aaaa", Status.RENDERED, "rendered")
    ledger.transition("st-2026-11-aaaa", Status.QUEUED, "queued", pool="pool_a")
    ledger.transition("st-2026-11-aaaa", Status.SENT, "sent")
    # a re-run trying to queue the same statement again changes nothing
    assert not ledger.transition("st-2026-11-aaaa", Status.QUEUED, "queued", pool="pool_b")
    row = ledger.statement("st-2026-11-aaaa")
    assert (row["status"], row["pool"]) == ("sent", "pool_a")
    assert ledger.timeline("st-2026-11-aaaa")[-1]["event"] == "queued_ignored"


def test_composing_twice_inserts_once(ledger: Ledger) -> None:
    assert ledger.add_statements([_statement(), _statement("st-2026-11-bbbb")]) == 2
    assert ledger.add_statements([_statement(), _statement("st-2026-11-bbbb")]) == 0
    assert ledger.status_counts("eob-2026-11") == {"composed": 2}
    assert len(ledger.timeline("st-2026-11-aaaa")) == 1


def test_schema_refuses_a_status_outside_the_vocabulary(ledger: Ledger) -> None:
    ledger.add_statements([_statement()])
    with pytest.raises(IntegrityError), ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = 'lost' WHERE statement_id = :s"),
                     {"s": "st-2026-11-aaaa"})


def test_schema_check_matches_python_vocabulary() -> None:
    ddl = (SQL_DIR / "migrations" / "001_ledger.sql").read_text()
    block = re.search(r"status\s+TEXT NOT NULL CHECK \(status IN \((.*?)\)\)", ddl, re.S)
    assert block, "statements.status CHECK constraint not found"
    in_schema = set(re.findall(r"'(\w+)'", block.group(1)))
    assert in_schema == {s.value for s in Status}
    assert set(ALLOWED_FROM) == set(Status)


def test_ingest_accounts_are_replaced_on_rerun(ledger: Ledger) -> None:
    files = [FileAccount("claims_part1.csv", "claims", 10, 8, 2)]
    bad = [QuarantineRow("claims_part1.csv", 5, "billed", "not an amount"),
           QuarantineRow("claims_part1.csv", 9, "member_id", "required value is empty")]
    ledger.record_ingest("eob-2026-11", files, bad)
    ledger.record_ingest("eob-2026-11", files, bad)
    assert ledger.fetch("ingest_files_for_run", run_id="eob-2026-11")[0]["rows_quarantined"] == 2
    reasons = ledger.fetch("quarantine_reasons_for_run", run_id="eob-2026-11")
    assert sum(r["row_count"] for r in reasons) == 2


def test_ingest_account_that_does_not_add_up_is_refused(ledger: Ledger) -> None:
    with pytest.raises(IntegrityError):
        ledger.record_ingest("eob-2026-11", [FileAccount("claims.csv", "claims", 10, 8, 1)], [])


def test_audit_log_is_a_hash_chain_that_detects_tampering(ledger: Ledger) -> None:
    ledger.add_statements([_statement()])
    ledger.audit("support:alice", "lookup", "st-2026-11-aaaa", {"by": "statement"})
    ledger.audit("pipeline", "send", None, {"pool": "pool_a"})
    assert ledger.verify_audit_chain() == 2
    with ledger.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE actor = 'support:alice'"))
    with pytest.raises(LedgerError, match="does not match the chain"):
        ledger.verify_audit_chain()


def test_unknown_statement_is_a_clear_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="st-missing is not in the ledger"):
        ledger.transition("st-missing", Status.RENDERED, "rendered")


def test_timestamps_come_from_the_injected_clock(ledger_url: str) -> None:
    fixed = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    ledger = Ledger.open(ledger_url, now=lambda: fixed)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 2)
    ledger.add_statements([_statement()])
    assert ledger.timeline("st-2026-11-aaaa")[0]["at"].startswith("2026-12-01T06:00:00")
