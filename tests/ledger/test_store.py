"""The ledger behaves the same on SQLite and PostgreSQL: forward-only, audited, idempotent."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from pipeline.compose import ID_SCHEMES, KEYED_IDS, UNKEYED_IDS
from pipeline.ledger import Delivery, Event, FileAccount, Ledger, LedgerError, NewStatement, QuarantineRow
from pipeline.ledger.notices import NoticeStatus
from pipeline.ledger.sql import SQL_DIR, Migration, migrations
from pipeline.ledger.statuses import ALLOWED_FROM, TERMINAL, Status


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


def test_a_batch_moves_what_its_statuses_allow_and_records_the_rest_as_ignored(ledger: Ledger) -> None:
    from pipeline.ledger import Transition

    ids = [f"st-2026-11-b{i}" for i in range(3)]
    ledger.add_statements([_statement(sid) for sid in ids])
    ledger.transition(ids[2], Status.RENDERED, "rendered")
    ledger.transition(ids[2], Status.QUEUED, "queued", pool="pool_a")
    moved = ledger.apply([Transition(sid, Status.RENDERED, "rendered", {"pages": 2},
                                     {"sha256": "ab", "pages": 2}) for sid in ids])
    assert moved == 2
    for sid in ids[:2]:
        row = ledger.statement(sid)
        assert (row["status"], row["pages"], row["sha256"]) == ("rendered", 2, "ab")
        assert [e["event"] for e in ledger.timeline(sid)] == ["composed", "rendered"]
    assert ledger.statement(ids[2])["status"] == "queued"
    assert ledger.timeline(ids[2])[-1]["event"] == "rendered_ignored"
    with pytest.raises(LedgerError, match="not in the ledger"):
        ledger.apply([Transition(ids[0], Status.QUEUED, "queued", {}, {"pool": "pool_a"}),
                      Transition("st-2026-11-nobody", Status.QUEUED, "queued", {}, {})])
    assert ledger.statement(ids[0])["status"] == "rendered", "a refused batch changes nothing"


def test_a_batch_raced_by_another_writer_is_applied_one_by_one(postgres_schema_url: str) -> None:
    """Between the batch's read and its write another process moves one statement: nothing of
    the batch's write stands, and each transition is decided again on the status it finds."""
    from pipeline.ledger import Transition

    ledger, other = Ledger.open(postgres_schema_url), Ledger.open(postgres_schema_url)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 2)
    ids = [f"st-2026-11-r{i}" for i in range(3)]
    ledger.add_statements([_statement(sid) for sid in ids])
    for sid in ids:
        ledger.transition(sid, Status.RENDERED, "rendered")
    real_now = ledger.now
    raced: list[bool] = []

    def now_after_a_concurrent_move() -> str:  # runs between the batch's read and its write
        if not raced:
            raced.append(other.transition(ids[1], Status.PAPER_QUEUED, "paper_queued"))
        return real_now()

    ledger.now = now_after_a_concurrent_move  # type: ignore[method-assign]
    moved = ledger.apply([Transition(sid, Status.QUEUED, "queued", {"pool": "pool_a"}, {"pool": "pool_a"})
                          for sid in ids])
    assert raced == [True] and moved == 2
    assert [ledger.statement(sid)["status"] for sid in ids] == ["queued", "paper_queued", "queued"]
    assert [e["event"] for e in ledger.timeline(ids[1])] == ["composed", "rendered", "paper_queued",
                                                            "queued_ignored"]
    ledger.close()
    other.close()


def test_composing_twice_inserts_once(ledger: Ledger) -> None:
    assert ledger.add_statements([_statement(), _statement("st-2026-11-bbbb")]) == 2
    assert ledger.add_statements([_statement(), _statement("st-2026-11-bbbb")]) == 0
    assert ledger.status_counts("eob-2026-11") == {"composed": 2}
    assert len(ledger.timeline("st-2026-11-aaaa")) == 1


def test_a_chunk_partly_in_the_ledger_adds_only_the_new_ones_each_with_one_event(ledger: Ledger) -> None:
    """Compose adds a month in chunks: a re-run's chunk mixes known and new statements, and a
    chunk naming one statement twice (the batch cannot say which) is added row by row."""
    ledger.add_statements([_statement("st-2026-11-c1")])
    mixed = [_statement(f"st-2026-11-c{i}") for i in range(1, 6)]
    assert ledger.add_statements(mixed) == 4
    twice = [_statement("st-2026-11-c7"), _statement("st-2026-11-c6"), _statement("st-2026-11-c7")]
    assert ledger.add_statements(twice) == 2
    assert ledger.status_counts("eob-2026-11") == {"composed": 7}
    for i in range(1, 8):
        timeline = ledger.timeline(f"st-2026-11-c{i}")
        assert [(e["event"], e["detail"]) for e in timeline] == [("composed", {"shard": 0, "lines": 4})]


def test_schema_refuses_a_status_outside_the_vocabulary(ledger: Ledger) -> None:
    ledger.add_statements([_statement()])
    with pytest.raises(IntegrityError), ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = 'lost' WHERE statement_id = :s"),
                     {"s": "st-2026-11-aaaa"})


def _status_check(ledger: Ledger) -> str:
    checks = [c["sqltext"] for c in inspect(ledger.engine).get_check_constraints("statements")
              if "'composed'" in c["sqltext"]]
    assert len(checks) == 1, checks
    return checks[0]


def test_schema_check_matches_python_vocabulary(ledger: Ledger) -> None:
    """The migrated database's constraint, on each dialect, is the Python vocabulary."""
    assert set(re.findall(r"'(\w+)'", _status_check(ledger))) == {s.value for s in Status}
    assert set(ALLOWED_FROM) == set(Status)


def _newest_status_check(dialect: str, table: str) -> set[str]:
    """The values of the last CHECK (status IN (...)) the migrations give `table`."""
    defining = [stmt for m in migrations(dialect) for stmt in m.statements
                if re.search(r"CHECK \(status IN \(", stmt)
                and re.search(rf"(?:CREATE|ALTER) TABLE {table}(?:_new)?\s", stmt)]
    block = re.search(r"CHECK \(status IN \((.*?)\)\)", defining[-1], re.S)
    assert block, f"{table}.status CHECK constraint not found"
    return set(re.findall(r"'(\w+)'", block.group(1)))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_newest_status_check_in_the_migrations_matches_python_vocabulary(dialect: str) -> None:
    assert _newest_status_check(dialect, "statements") == {s.value for s in Status}
    assert _newest_status_check(dialect, "prompt_notices") == {s.value for s in NoticeStatus}


def test_schema_accepts_every_status_of_the_vocabulary(ledger: Ledger) -> None:
    ledger.add_statements([_statement()])
    for status in Status:
        with ledger.begin() as conn:
            conn.execute(text("UPDATE statements SET status = :status WHERE statement_id = :s"),
                         {"status": status.value, "s": "st-2026-11-aaaa"})
        assert ledger.statement("st-2026-11-aaaa")["status"] == status.value


def test_superseded_only_closes_a_statement_not_yet_out(ledger: Ledger) -> None:
    ledger.add_statements([_statement(), _statement("st-2026-11-bbbb"), _statement("st-2026-11-cccc")])
    assert ledger.transition("st-2026-11-aaaa", Status.SUPERSEDED, "superseded", detail={"by": "v2"})
    assert ledger.transition("st-2026-11-bbbb", Status.RENDERED, "rendered")
    assert ledger.transition("st-2026-11-bbbb", Status.QUEUED, "queued")
    assert ledger.transition("st-2026-11-bbbb", Status.SUPERSEDED, "superseded")  # queued, not yet sent
    assert ledger.transition("st-2026-11-cccc", Status.RENDERED, "rendered")
    assert ledger.transition("st-2026-11-cccc", Status.QUEUED, "queued")
    assert ledger.transition("st-2026-11-cccc", Status.SENT, "sent")
    assert not ledger.transition("st-2026-11-cccc", Status.SUPERSEDED, "superseded")  # already out
    assert not ledger.transition("st-2026-11-aaaa", Status.RENDERED, "rendered")  # terminal
    assert not ledger.transition("st-2026-11-bbbb", Status.SENT, "sent")  # a late 250: recorded only
    assert ledger.timeline("st-2026-11-bbbb")[-1]["event"] == "sent_ignored"
    assert ledger.status_counts("eob-2026-11") == {"superseded": 2, "sent": 1}
    assert Status.SUPERSEDED in TERMINAL


def test_a_corrected_member_file_sets_channel_and_address_with_its_event(ledger: Ledger) -> None:
    """`set_delivery`: in place (the status and its time stay), or with a move along the state
    machine; a statement moved meanwhile is left alone; a move the machine refuses is recorded."""
    aaaa, bbbb = "st-2026-11-aaaa", "st-2026-11-bbbb"
    ledger.add_statements([_statement(aaaa), replace(_statement(bbbb), address_hash="h" * 64)])
    paper = Delivery("paper", "no_consent", None, None)
    why = {"from": "email", "to": "paper", "reason": "no_consent"}
    before = ledger.statement(aaaa)["updated_at"]
    assert ledger.set_delivery(aaaa, status=Status.COMPOSED, delivery=paper,
                               event_name=Event.CHANNEL_CHANGED, detail=why)
    row = ledger.statement(aaaa)
    assert (row["status"], row["channel"], row["paper_reason"], row["email_domain"], row["updated_at"]) == (
        "composed", "paper", "no_consent", None, before)
    last = ledger.timeline(aaaa)[-1]
    assert (last["event"], last["from_status"], last["to_status"], last["detail"]) == (
        "channel_changed", None, None, why)

    ledger.transition(bbbb, Status.RENDERED, "rendered")
    ledger.transition(bbbb, Status.QUEUED, "queued", pool="pool_a")
    assert not ledger.set_delivery(bbbb, status=Status.RENDERED, delivery=paper,  # moved on since
                                   event_name=Event.CHANNEL_CHANGED, detail=why, to=Status.PAPER_QUEUED)
    assert ledger.statement(bbbb)["channel"] == "email"
    assert ledger.set_delivery(bbbb, status=Status.QUEUED, delivery=paper, event_name=Event.CHANNEL_CHANGED,
                               detail=why, to=Status.PAPER_QUEUED)
    row = ledger.statement(bbbb)
    assert (row["status"], row["channel"], row["address_hash"], row["pool"]) == (
        "paper_queued", "paper", None, "pool_a")
    last = ledger.timeline(bbbb)[-1]
    assert (last["event"], last["from_status"], last["to_status"]) == (
        "channel_changed", "queued", "paper_queued")
    email = Delivery("email", None, "example.net", "k" * 64)
    assert ledger.set_delivery(bbbb, status=Status.PAPER_QUEUED, delivery=email,  # back to render, as email
                               event_name=Event.CHANNEL_CHANGED, detail={}, to=Status.COMPOSED)
    row = ledger.statement(bbbb)
    assert (row["status"], row["channel"], row["paper_reason"], row["email_domain"], row["address_hash"]) == (
        "composed", "email", None, "example.net", "k" * 64)
    ledger.transition(bbbb, Status.RENDERED, "rendered")
    ledger.transition(bbbb, Status.QUEUED, "queued")
    ledger.transition(bbbb, Status.SENT, "sent")
    assert not ledger.set_delivery(bbbb, status=Status.SENT, delivery=paper,  # out: never moved back
                                   event_name=Event.CHANNEL_CHANGED, detail=why, to=Status.COMPOSED)
    assert ledger.statement(bbbb)["status"] == "sent"
    assert ledger.timeline(bbbb)[-1]["event"] == "channel_changed_ignored"


def test_each_superseded_statement_is_explained_by_a_replacement_or_a_withdrawal(ledger: Ledger) -> None:
    """The report's reconciliation query, on both databases."""
    ledger.add_statements([_statement(), _statement("st-2026-11-bbbb"), _statement("st-2026-11-cccc")])
    for sid in ("st-2026-11-aaaa", "st-2026-11-bbbb"):
        ledger.transition(sid, Status.SUPERSEDED, "superseded")
    ledger.transition("st-2026-11-cccc", Status.RENDERED, "rendered")
    ledger.transition("st-2026-11-cccc", Status.QUEUED, "queued")

    def unexplained() -> int:
        row = ledger.fetch_one("superseded_unexplained_for_run", run_id="eob-2026-11")
        return int(row["n"]) if row else -1

    assert unexplained() == 2
    ledger.add_statements([NewStatement("st-2026-11-dddd", "eob-2026-11", "2026-11", "M000000001", 2, 0,
                                        "email", None, "gmail.com", 4, False)])
    with ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET replaces = :old WHERE statement_id = :new"),
                     {"old": "st-2026-11-aaaa", "new": "st-2026-11-dddd"})
    assert unexplained() == 1
    ledger.record_event("st-2026-11-bbbb", "withdrawn", {})
    ledger.record_event("st-2026-11-cccc", "withdrawn_after_release", {})
    assert unexplained() == 0
    assert ledger.fetch("flagged_after_release") == [{"statement_id": "st-2026-11-cccc", "period": "2026-11"}]
    assert ledger.fetch_one("statement_flagged_after_release", statement_id="st-2026-11-cccc")
    withdrawn = ledger.fetch("withdrawn_for_run", run_id="eob-2026-11")
    assert [(r["statement_id"], r["event"], r["status"]) for r in withdrawn] == [
        ("st-2026-11-bbbb", "withdrawn", "superseded"),
        ("st-2026-11-cccc", "withdrawn_after_release", "queued")]
    ledger.record_event("st-2026-11-cccc", "reinstated", {})  # its lines came back
    assert ledger.fetch("flagged_after_release") == []
    ledger.record_event("st-2026-11-bbbb", "withdrawn_in_doubt", {})  # closed while a send was in doubt
    assert ledger.fetch("flagged_after_release") == [{"statement_id": "st-2026-11-bbbb", "period": "2026-11"}]
    assert ledger.fetch("withdrawn_for_run", run_id="eob-2026-11")[-1]["statement_id"] == "st-2026-11-bbbb"


def _schema(ledger: Ledger) -> dict[str, object]:
    """Everything about statements and the tables referencing it except the status CHECK."""
    found = inspect(ledger.engine)
    return {
        "columns": [(c["name"], str(c["type"]), c["nullable"], str(c["default"]))
                    for c in found.get_columns("statements")],
        "primary_key": found.get_pk_constraint("statements")["constrained_columns"],
        "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                          for i in found.get_indexes("statements")),
        "checks": sorted(c["sqltext"] for c in found.get_check_constraints("statements")
                         if "'composed'" not in c["sqltext"]),
        "foreign_keys": {table: sorted((tuple(k["constrained_columns"]), k["referred_table"],
                                        tuple(k["referred_columns"]))
                                       for k in found.get_foreign_keys(table))
                         for table in ("statements", "statement_events", "prompt_notices")},
    }


def _rows(ledger: Ledger) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    with ledger.begin() as conn:
        return {table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
                for table, key in (("statements", "statement_id"), ("statement_events", "event_id"),
                                   ("prompt_notices", "statement_id, claim_id"), ("audit_log", "seq"))}


def _add_as_composed_before_addresses(ledger: Ledger, *statement_ids: str) -> None:
    """Statements as compose inserted them before statements.address_hash (migration 007)."""
    with ledger.begin() as conn:
        for statement_id in statement_ids:
            conn.execute(text(
                "INSERT INTO statements (statement_id, run_id, period, member_id, version, shard, status, "
                "channel, email_domain, line_count, prompt_notice, created_at, updated_at) VALUES (:s, "
                "'eob-2026-11', '2026-11', 'M000000001', 1, 0, 'composed', 'email', 'gmail.com', 4, 0, "
                ":at, :at)"), {"s": statement_id, "at": ledger.now()})
            conn.execute(text("INSERT INTO statement_events (statement_id, at, event, to_status, detail) "
                              "VALUES (:s, :at, 'composed', 'composed', '{}')"),
                         {"s": statement_id, "at": ledger.now()})


def _audit_as_before_sources(ledger: Ledger, actor: str, action: str, statement_id: str,
                             detail: dict[str, str]) -> None:
    """An audit entry as the ledger wrote it before audit_log.source and reason (migration 016)."""
    from pipeline.ledger.audit import GENESIS, entry_hash

    at, body = ledger.now(), json.dumps(detail, sort_keys=True)
    with ledger.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")).scalar()
        prev = prev or GENESIS
        conn.execute(text("INSERT INTO audit_log (at, actor, action, statement_id, detail, prev_hash, hash) "
                          "VALUES (:at, :actor, :action, :sid, :detail, :prev, :hash)"),
                     {"at": at, "actor": actor, "action": action, "sid": statement_id, "detail": body,
                      "prev": prev, "hash": entry_hash(prev, at, actor, action, statement_id, body)})


def test_a_ledger_from_before_superseded_keeps_its_rows_and_schema(ledger_url: str) -> None:
    old = Ledger.open(ledger_url, migrate=False)
    assert old.migrate(upto=4) == [1, 2, 3, 4]
    old.start_run("eob-2026-11", "2026-11", "extracts", 2)
    _add_as_composed_before_addresses(old, "st-2026-11-aaaa", "st-2026-11-bbbb", "st-2026-11-cccc")
    old.transition("st-2026-11-aaaa", Status.FAILED, "superseded", detail={"by": "st-2026-11-bbbb"},
                   last_reason="superseded by st-2026-11-bbbb (corrected extract)")
    for status in (Status.RENDERED, Status.QUEUED, Status.SENT):
        old.transition("st-2026-11-cccc", status, status.value, pool="pool_a", sha256="ab", pages=2,
                       attempts_increment=int(status is Status.SENT))
    with old.begin() as conn:
        conn.execute(text("UPDATE statements SET content_hash = 'h2', replaces = 'st-2026-11-aaaa' "
                          "WHERE statement_id = 'st-2026-11-bbbb'"))
        conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due) "
                          "VALUES ('st-2026-11-bbbb', 'C1', '2026-11-20')"))
    _audit_as_before_sources(old, "pipeline", "reissue", "st-2026-11-bbbb", {"replaces": "st-2026-11-aaaa"})
    schema, rows = _schema(old), _rows(old)
    assert "superseded" not in _status_check(old)
    old.close()

    ledger = Ledger.open(ledger_url, migrate=False)
    assert ledger.migrate(upto=5) == [5]
    assert ledger.migrate(upto=5) == []
    assert _rows(ledger) == rows
    assert _schema(ledger) == schema
    assert "superseded" in _status_check(ledger)
    assert ledger.migrate(upto=6) == [6]  # the event index: rows as they were
    assert ledger.migrate(upto=7) == [7]  # statements.address_hash: empty for rows already there
    assert _rows(ledger)["statements"] == [(*row, None) for row in rows["statements"]]
    ledger.migrate()
    assert ledger.verify_audit_chain() == 1
    assert ledger.add_statements([_statement("st-2026-11-dddd")]) == 1
    assert ledger.transition("st-2026-11-dddd", Status.SUPERSEDED, "superseded")
    with pytest.raises(IntegrityError), ledger.begin() as conn:  # still a closed vocabulary
        conn.execute(text("UPDATE statements SET status = 'lost' WHERE statement_id = 'st-2026-11-cccc'"))
    with pytest.raises(IntegrityError), ledger.begin() as conn:  # foreign keys still enforced
        conn.execute(text("INSERT INTO statement_events (statement_id, at, event, detail) "
                          "VALUES ('st-missing', '2026-11-01', 'x', '{}')"))
    if ledger.dialect == "sqlite":
        with ledger.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            names = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
        assert "statements_new" not in names and "sqlite_autoindex_statements_1" in names
    ledger.close()


def test_sqlite_migration_that_breaks_a_foreign_key_is_rolled_back(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import pipeline.ledger.store

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    Ledger.open(url).close()
    real = migrations("sqlite")
    orphan = Migration(len(real) + 1, "orphan", (
        "INSERT INTO statement_events (statement_id, at, event, detail) "
        "VALUES ('st-missing', '2026-11-01', 'x', '{}')",))
    monkeypatch.setattr(pipeline.ledger.store, "migrations", lambda dialect: [*real, orphan])
    ledger = Ledger.open(url, migrate=False)
    with pytest.raises(LedgerError, match="foreign keys"):
        ledger.migrate()
    assert ledger.schema_version() == len(real)
    with ledger.begin() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM statement_events").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    ledger.close()


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


def test_the_latest_ingest_is_recorded_with_its_accounts_or_not_at_all(ledger: Ledger) -> None:
    """Ingest's state per run: running, then succeeded in the transaction that replaces the
    accounts, or failed with the operator's message; accounts whose block fails are not kept."""
    run = "eob-2026-11"
    assert ledger.ingest_state(run) == {"ingest_state": None, "ingest_at": None, "ingest_error": None}
    assert ledger.ingest_state("eob-2026-10") is None
    files = [FileAccount("claims_part1.csv", "claims", 10, 8, 2)]
    bad = [QuarantineRow("claims_part1.csv", 5, "billed", "not an amount"),
           QuarantineRow("claims_part1.csv", 9, "member_id", "required value is empty")]
    ledger.begin_ingest(run)
    assert ledger.ingest_state(run)["ingest_state"] == "running"
    with ledger.recording_ingest(run, files, bad):
        pass
    state = ledger.ingest_state(run)
    assert (state["ingest_state"], state["ingest_error"]) == ("succeeded", None) and state["ingest_at"]

    ledger.begin_ingest(run)
    with pytest.raises(OSError, match="swap"), ledger.recording_ingest(
            run, [FileAccount("claims_part1.csv", "claims", 12, 12, 0)], []):
        raise OSError("the swap of the outputs failed")
    assert ledger.fetch("ingest_files_for_run", run_id=run) == [
        {"source_file": "claims_part1.csv", "kind": "claims", "rows_read": 10, "rows_accepted": 8,
         "rows_quarantined": 2}]
    assert sum(r["row_count"] for r in ledger.fetch("quarantine_reasons_for_run", run_id=run)) == 2
    assert ledger.ingest_state(run)["ingest_state"] == "running"
    ledger.fail_ingest(run, "claims_part2.csv: missing column(s) billed")
    state = ledger.ingest_state(run)
    assert (state["ingest_state"], state["ingest_error"]) == (
        "failed", "claims_part2.csv: missing column(s) billed")
    with pytest.raises(IntegrityError), ledger.begin() as conn:  # a closed vocabulary
        conn.execute(text("UPDATE runs SET ingest_state = 'done' WHERE run_id = :run"), {"run": run})


def test_runs_ingested_before_the_ingest_state_count_as_succeeded(ledger_url: str) -> None:
    """Migrating: a run with ingest accounts had an ingest that succeeded; one without, none."""
    version = next(m.version for m in migrations(Ledger.open(ledger_url, migrate=False).dialect)
                   if m.name == "ingest_state")
    old = Ledger.open(ledger_url, migrate=False)
    old.migrate(upto=version - 1)
    old.start_run("eob-2026-10", "2026-10", "extracts", 2)
    old.start_run("eob-2026-11", "2026-11", "extracts", 2)
    with old.begin() as conn:  # the accounts, as ingest recorded them then
        conn.execute(text("INSERT INTO ingest_files (run_id, source_file, kind, rows_read, rows_accepted, "
                          "rows_quarantined) VALUES ('eob-2026-10', 'claims.csv', 'claims', 3, 3, 0)"))
    started = old.fetch_one("get_run", run_id="eob-2026-10")["started_at"]
    old.close()
    ledger = Ledger.open(ledger_url)
    assert ledger.ingest_state("eob-2026-10") == {"ingest_state": "succeeded", "ingest_at": started,
                                                  "ingest_error": None}
    assert ledger.ingest_state("eob-2026-11")["ingest_state"] is None
    ledger.close()


def test_runs_record_their_statement_id_scheme_and_older_runs_keep_theirs(ledger_url: str) -> None:
    """Migrating: a run that has statements had its ids made unkeyed ('sha256') and keeps that
    scheme, so a re-compose gives the same ids; a run with none yet, and every new run, is keyed."""
    version = next(m.version for m in migrations(Ledger.open(ledger_url, migrate=False).dialect)
                   if m.name == "statement_id_scheme")
    old = Ledger.open(ledger_url, migrate=False)
    old.migrate(upto=version - 1)
    old.start_run("eob-2026-10", "2026-10", "extracts", 2)
    old.start_run("eob-2026-11", "2026-11", "extracts", 2)
    old.add_statements([_statement("st-2026-10-aaaa", "eob-2026-10")])
    old.close()
    ledger = Ledger.open(ledger_url)
    assert ledger.statement_id_scheme("eob-2026-10") == UNKEYED_IDS
    assert ledger.statement_id_scheme("eob-2026-11") == KEYED_IDS
    ledger.start_run("eob-2026-12", "2026-12", "extracts", 2)
    assert ledger.statement_id_scheme("eob-2026-12") == KEYED_IDS
    assert ledger.statement_id_scheme("eob-2027-01") is None
    with pytest.raises(IntegrityError), ledger.begin() as conn:  # a closed vocabulary
        conn.execute(text("UPDATE runs SET statement_id_scheme = 'md5' WHERE run_id = 'eob-2026-12'"))
    ledger.close()


def test_the_migration_allows_exactly_the_schemes_compose_knows() -> None:
    script = next(p for p in (SQL_DIR / "migrations").glob("*.sql") if "statement_id_scheme" in p.name)
    allowed = re.search(r"statement_id_scheme IN \(([^)]*)\)", script.read_text(encoding="utf-8"))
    assert allowed is not None
    assert sorted(re.findall(r"'([^']+)'", allowed[1])) == sorted(ID_SCHEMES)


def test_a_pinned_block_reuses_its_connections_and_keeps_transactions_whole(ledger: Ledger) -> None:
    """The sender writes a few rows per message inside `pinned()`: no connection is taken from
    the pool per call, a failed transaction leaves nothing behind and the next one works, and
    another thread (the lease renewer) still gets its own connections."""
    import threading

    from sqlalchemy import event as sa_event

    from pipeline.ledger import Transition

    ids = [f"st-2026-11-p{i}" for i in range(20)]
    ledger.add_statements([_statement(sid) for sid in ids])
    checkouts: list[int] = []
    sa_event.listen(ledger.engine.pool, "checkout", lambda *_: checkouts.append(1))
    with ledger.pinned():
        for sid in ids:
            ledger.record_event(sid, Event.SEND_ATTEMPT, {"pool": "pool_a", "attempt": 1})
            assert ledger.statement(sid)["status"] == "composed"
            ledger.transition(sid, Status.RENDERED, Event.RENDERED)
        assert len(checkouts) == 2  # one in autocommit, one for transactions, for 60 calls
        with pytest.raises(ZeroDivisionError), ledger.begin() as conn:
            ledger._apply_one(conn, Transition(ids[0], Status.PAPER_QUEUED, Event.PAPER_QUEUED))
            raise ZeroDivisionError  # the transaction is rolled back
        assert ledger.statement(ids[0])["status"] == "rendered"
        ledger.record_event(ids[1], Event.SEND_ATTEMPT, {"pool": "pool_a", "attempt": 2})
        with ledger.begin() as conn:  # a transaction inside a transaction: its own connection
            ledger._apply_one(conn, Transition(ids[0], Status.PAPER_QUEUED, Event.PAPER_QUEUED))
            with ledger.begin() as inner:
                assert inner is not conn
        before_thread = len(checkouts)
        other: list[str] = []
        worker = threading.Thread(target=lambda: other.append(ledger.statement(ids[0])["status"]))
        worker.start()
        worker.join()
        assert len(checkouts) == before_thread + 1  # the other thread took its own
    assert other == ["paper_queued"]
    assert [e["event"] for e in ledger.timeline(ids[1])] == ["composed", "send_attempt", "rendered",
                                                            "send_attempt"]


def test_a_pinned_connection_that_breaks_is_replaced_and_nothing_written_is_lost(
    postgres_schema_url: str,
) -> None:
    """The database drops the sender's connections mid-run (a restart, a failover): the call
    that meets the broken link fails loudly, the next ones work on fresh connections, and what
    they write is committed (seen from another connection)."""
    from sqlalchemy import text as sql_text
    from sqlalchemy.exc import DBAPIError

    ledger = Ledger.open(f"{postgres_schema_url}&application_name=eob-pinned-test")
    observer = Ledger.open(postgres_schema_url)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 2)
    ledger.add_statements([_statement("st-2026-11-b1")])
    with ledger.pinned():
        ledger.record_event("st-2026-11-b1", Event.SEND_ATTEMPT, {"pool": "pool_a", "attempt": 1})
        ledger.transition("st-2026-11-b1", Status.RENDERED, Event.RENDERED)
        with observer.engine.connect() as conn:
            conn.execute(sql_text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name = 'eob-pinned-test'"))
        with pytest.raises(DBAPIError):
            ledger.record_event("st-2026-11-b1", Event.SEND_ATTEMPT, {"pool": "pool_a", "attempt": 2})
        with pytest.raises(DBAPIError):
            ledger.transition("st-2026-11-b1", Status.QUEUED, Event.QUEUED, pool="pool_a")
        ledger.record_event("st-2026-11-b1", Event.SEND_ATTEMPT, {"pool": "pool_a", "attempt": 3})
        ledger.transition("st-2026-11-b1", Status.QUEUED, Event.QUEUED, pool="pool_a")
        assert [e["event"] for e in observer.timeline("st-2026-11-b1")] == [
            "composed", "send_attempt", "rendered", "send_attempt", "queued"]
    assert observer.statement("st-2026-11-b1")["status"] == "queued"
    ledger.close()
    observer.close()


def test_a_transition_from_an_expected_status_moves_once_and_falls_back_when_it_changed(
    ledger: Ledger,
) -> None:
    """The sender's `sent` expects `queued`: it moves with its event as the usual path would;
    when another writer moved the statement first, it is decided on the status found instead."""
    from pipeline.ledger import Transition

    ids = ["st-2026-11-e1", "st-2026-11-e2"]
    ledger.add_statements([_statement(sid) for sid in ids])
    for sid in ids:
        ledger.transition(sid, Status.RENDERED, Event.RENDERED)
        ledger.transition(sid, Status.QUEUED, Event.QUEUED, pool="pool_a")
    ledger.transition(ids[1], Status.PAPER_QUEUED, Event.PAPER_QUEUED, channel="paper")

    def sent(sid: str) -> Transition:
        return Transition(sid, Status.SENT, Event.SENT, {"pool": "pool_a"}, {"last_reason": "250"},
                          attempts_increment=1, expected=Status.QUEUED)

    assert ledger.apply([sent(ids[0])]) == 1
    assert ledger.apply([sent(ids[0])]) == 0  # already sent: not twice
    assert ledger.apply([sent(ids[1])]) == 0
    first, second = ledger.statement(ids[0]), ledger.statement(ids[1])
    assert (first["status"], first["attempts"], first["last_reason"]) == ("sent", 1, "250")
    assert (second["status"], second["attempts"]) == ("paper_queued", 0)
    moved = ledger.timeline(ids[0])[-2]
    assert (moved["event"], moved["from_status"], moved["to_status"], moved["detail"]) == (
        "sent", "queued", "sent", {"pool": "pool_a"})
    assert [e["event"] for e in ledger.timeline(ids[0])][-1] == "sent_ignored"
    assert [e["event"] for e in ledger.timeline(ids[1])][-1] == "sent_ignored"
