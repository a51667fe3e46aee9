"""A prompt notice's lifecycle, the same on SQLite and PostgreSQL: a closed vocabulary in the code
and the schema, forward-only moves with their events on the statement's timeline, the day the
notice leaves and whether that is late, and its pieces in a print batch."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from pipeline.ledger import (
    Event,
    Ledger,
    NewStatement,
    NoticeMove,
    NoticeStatus,
    UnknownNotice,
    is_notice_id,
    make_notice_id,
    move_notices,
    record_notice_event,
)
from pipeline.ledger.notices import NOTICE_ALLOWED_FROM

STATEMENT = "st-2026-11-aaaaaaaaaaaaaaaa"
KEY = b"notice-test-key"


@pytest.fixture
def ledger(ledger_url: str) -> Any:
    ledger = Ledger.open(ledger_url)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 1)
    ledger.add_statements([NewStatement(STATEMENT, "eob-2026-11", "2026-11", "M000000001", 1, 0, "email",
                                        None, "gmail.com", 4, True)])
    yield ledger
    ledger.close()


def _flag(ledger: Ledger, claim: str, due: str = "2026-12-03") -> str:
    """A claim compose flagged (as compose inserts it), its notice id given as the stage gives it."""
    notice_id = make_notice_id(STATEMENT, claim, key=KEY)
    with ledger.begin() as conn:
        conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due, channel, "
                          "statement_leaves) VALUES (:s, :c, :d, 'email', '2026-12-07')"),
                     {"s": STATEMENT, "c": claim, "d": due})
    ledger.execute("notice_assign_id", notice_id=notice_id, statement_id=STATEMENT, claim_id=claim)
    return notice_id


def _row(ledger: Ledger, notice_id: str) -> dict[str, Any]:
    with ledger.begin() as conn:
        return dict(conn.execute(text("SELECT * FROM prompt_notices WHERE notice_id = :n"),
                                 {"n": notice_id}).mappings().one())


def _notice_events(ledger: Ledger) -> list[tuple[str, dict[str, Any]]]:
    return [(e["event"], e["detail"]) for e in ledger.timeline(STATEMENT) if e["event"].startswith("notice_")]


def test_notice_ids_are_keyed_opaque_and_told_apart_from_statement_ids() -> None:
    one = make_notice_id(STATEMENT, "C1", key=KEY)
    assert one == make_notice_id(STATEMENT, "C1", key=KEY) and one.startswith("nt-") and len(one) == 19
    assert one != make_notice_id(STATEMENT, "C2", key=KEY)
    assert one != make_notice_id(STATEMENT, "C1", key=b"another key"), "without the key, not guessable"
    assert "C1" not in one and is_notice_id(one) and not is_notice_id(STATEMENT)
    with pytest.raises(ValueError, match="EOB_STATEMENT_ID_KEY"):
        make_notice_id(STATEMENT, "C1", key=b"")


def test_a_notice_starts_due_and_moves_forward_with_its_events_on_the_statements_timeline(
        ledger: Ledger) -> None:
    notice_id = _flag(ledger, "C1")
    assert _row(ledger, notice_id)["status"] == "due" and _row(ledger, notice_id)["attempts"] == 0
    moved = move_notices(ledger, [NoticeMove(notice_id, NoticeStatus.SENT, Event.NOTICE_SENT,
                                             {"pool": "pool_a"}, left_on=date(2026, 12, 3), pool="pool_a",
                                             object_key="k")])
    assert moved == 1
    row = _row(ledger, notice_id)
    assert (row["status"], row["left_on"], row["late"], row["pool"]) == ("sent", "2026-12-03", 0, "pool_a")
    assert _notice_events(ledger) == [("notice_sent", {
        "notice_id": notice_id, "claim_id": "C1", "pool": "pool_a", "notice_status": "sent",
        "left_on": "2026-12-03", "late": False})]


def test_a_move_the_lifecycle_does_not_allow_changes_nothing_and_is_kept_as_ignored(ledger: Ledger) -> None:
    notice_id = _flag(ledger, "C1")
    assert move_notices(ledger, [NoticeMove(notice_id, NoticeStatus.MAILED, Event.NOTICE_MAILED,
                                            left_on=date(2026, 12, 9))]) == 0
    row = _row(ledger, notice_id)
    assert row["status"] == "due" and row["left_on"] is None
    assert _notice_events(ledger) == [("notice_mailed_ignored", {
        "notice_id": notice_id, "claim_id": "C1", "notice_status": "due", "wanted": "mailed"})]
    with pytest.raises(UnknownNotice):
        move_notices(ledger, [NoticeMove("nt-0000000000000000", NoticeStatus.SENT, Event.NOTICE_SENT)])


def test_paper_records_the_planned_day_then_the_vendors_and_whether_it_is_late(ledger: Ledger) -> None:
    notice_id = _flag(ledger, "C1", due="2026-12-08")
    move_notices(ledger, [NoticeMove(notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                                     {"reason": "no_consent"}, left_on=date(2026, 12, 8), print_key="p",
                                     last_reason="paper: no_consent")])
    assert (_row(ledger, notice_id)["left_on"], _row(ledger, notice_id)["late"]) == ("2026-12-08", 0)
    for status, event in ((NoticeStatus.BATCHED, Event.NOTICE_BATCHED),
                          (NoticeStatus.PRINTED, Event.NOTICE_PRINTED)):
        assert move_notices(ledger, [NoticeMove(notice_id, status, event)]) == 1
    move_notices(ledger, [NoticeMove(notice_id, NoticeStatus.MAILED, Event.NOTICE_MAILED,
                                     left_on=date(2026, 12, 9))])
    row = _row(ledger, notice_id)
    assert (row["status"], row["left_on"], row["late"], row["print_key"]) == ("mailed", "2026-12-09", 1, "p")
    assert [name for name, _ in _notice_events(ledger)] == [
        "notice_paper_queued", "notice_batched", "notice_printed", "notice_mailed"]


def test_a_note_about_a_notice_changes_no_status(ledger: Ledger) -> None:
    notice_id = _flag(ledger, "C1")
    record_notice_event(ledger, notice_id, Event.NOTICE_RENDER_FAILED, {"reason": "x"}, last_reason="x")
    assert _row(ledger, notice_id)["status"] == "due" and _row(ledger, notice_id)["last_reason"] == "x"
    assert _notice_events(ledger)[-1][0] == "notice_render_failed"


def test_a_notice_is_a_piece_of_a_print_batch_and_moves_with_it(ledger: Ledger) -> None:
    notice_id = _flag(ledger, "C1")
    move_notices(ledger, [NoticeMove(notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                                     left_on=date(2026, 12, 8))])
    batch = {"batch_name": "EOB-20261207-FIRST-001", "batch_day": "2026-12-07", "mail_class": "first",
             "state": "delivering", "pieces": 1, "sheets": 1, "pages": 2, "files": "[]",
             "drop_where": "folder", "created_at": ledger.now(), "ack_due_at": ledger.now()}
    piece = {"batch_name": batch["batch_name"], "statement_id": notice_id, "sequence": 1, "pages": 2,
             "sheets": 1, "mail_class": "first", "imb_serial": 7}
    moved = ledger.record_print_batch(batch, [piece], [], [NoticeMove(notice_id, NoticeStatus.BATCHED,
                                                                      Event.NOTICE_BATCHED, {"batch": "b"})])
    assert moved == 1 and _row(ledger, notice_id)["status"] == "batched"
    assert ledger.fetch_one("paper_live_piece", statement_id=notice_id)["status"] == "batched"  # type: ignore[index]
    assert ledger.fetch_one("paper_open_pieces", batch_name=batch["batch_name"])["n"] == 1  # type: ignore[index]
    assert ledger.cancel_print_batch(batch["batch_name"], [notice_id], [], [NoticeMove(
        notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED, {"reason": "batch cancelled"})]) == 1
    assert _row(ledger, notice_id)["status"] == "paper_queued"
    assert ledger.fetch_one("paper_live_piece", statement_id=notice_id) is None


def test_a_notice_that_has_not_left_is_closed_with_its_statement_and_one_with_the_vendor_is_not(
        ledger: Ledger) -> None:
    """A corrected extract replaced the statement before it went out. Its notices still due or
    queued for paper are closed with it, on its timeline, naming the version that replaced it (one
    compose listed but nobody took yet gets its id first), and the print run no longer takes the
    queued one. One batched is with the vendor, as a batched statement would be; one a relay
    accepted is out."""
    from pipeline.ledger import Status

    due, queued, batched, sent = (_flag(ledger, claim) for claim in ("C1", "C2", "C3", "C4"))
    with ledger.begin() as conn:  # as compose lists a claim: no id until the notices stage takes it
        conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due) "
                          "VALUES (:s, 'C5', '2026-12-03')"), {"s": STATEMENT})
    listed = make_notice_id(STATEMENT, "C5", key=KEY)
    move_notices(ledger, [NoticeMove(n, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                                     left_on=date(2026, 12, 8)) for n in (queued, batched)])
    move_notices(ledger, [NoticeMove(batched, NoticeStatus.BATCHED, Event.NOTICE_BATCHED),
                          NoticeMove(sent, NoticeStatus.SENT, Event.NOTICE_SENT, left_on=date(2026, 12, 3))])
    later = "st-2026-11-bbbbbbbbbbbbbbbb"
    ledger.add_statements([NewStatement(later, "eob-2026-11", "2026-11", "M000000001", 2, 0, "email",
                                        None, "gmail.com", 4, True)])
    assert ledger.transition(STATEMENT, Status.SUPERSEDED, Event.SUPERSEDED, detail={"by": later})

    assert ledger.fetch("notice_paper_candidates", cutoff="9999-12-31") == [], \
        "never printed from a superseded statement"
    assert {(r["claim_id"], r["later_version"]) for r in ledger.fetch("notices_due")} == {
        ("C1", later), ("C5", later)}
    from pipeline.ledger import close_superseded

    assert close_superseded(ledger, key=KEY) == 3
    assert {n: _row(ledger, n)["status"] for n in (due, queued, batched, sent, listed)} == {
        due: "superseded", queued: "superseded", batched: "batched", sent: "sent", listed: "superseded"}
    closed = [(detail["claim_id"], detail["by"]) for name, detail in _notice_events(ledger)
              if name == "notice_superseded"]
    assert sorted(closed) == [("C1", later), ("C2", later), ("C5", later)]
    assert close_superseded(ledger, key=KEY) == 0, "once"
    # what a new version of the recipient does not notice again, and says was sent
    noticed = ledger.fetch("compose_noticed_claims", period="2026-11", shard=0)
    assert {(r["member_id"], r["claim_id"]) for r in noticed} == {("M000000001", "C3"), ("M000000001", "C4")}
    assert sorted((r["statement_id"], r["claim_id"]) for r in ledger.fetch(
        "notices_in_shard", run_id="eob-2026-11", shard=0)) == [
        (STATEMENT, "C3"), (STATEMENT, "C4"), (later, "C3"), (later, "C4")]
    assert move_notices(ledger, [NoticeMove(batched, NoticeStatus.SUPERSEDED, Event.NOTICE_SUPERSEDED)]) == 0
    assert _notice_events(ledger)[-1][0] == "notice_superseded_ignored"


def test_the_schema_holds_the_notice_vocabulary_exactly(ledger: Ledger) -> None:
    checks = [c["sqltext"] for c in inspect(ledger.engine).get_check_constraints("prompt_notices")
              if "'due'" in c["sqltext"]]
    assert len(checks) == 1
    assert set(NOTICE_ALLOWED_FROM) == set(NoticeStatus)
    notice_id = _flag(ledger, "C1")
    for status in NoticeStatus:
        with ledger.begin() as conn:
            conn.execute(text("UPDATE prompt_notices SET status = :s WHERE notice_id = :n"),
                         {"s": status.value, "n": notice_id})
    with pytest.raises(IntegrityError), ledger.begin() as conn:
        conn.execute(text("UPDATE prompt_notices SET status = 'lost' WHERE notice_id = :n"), {"n": notice_id})
    with pytest.raises(IntegrityError), ledger.begin() as conn:  # one notice per id
        conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due, notice_id) "
                          "VALUES (:s, 'C9', '2026-12-01', :n)"), {"s": STATEMENT, "n": notice_id})


def test_a_ledger_from_before_notices_were_sent_keeps_its_flags_as_due(ledger_url: str) -> None:
    old = Ledger.open(ledger_url, migrate=False)
    assert old.migrate(upto=13)[-1] == 13
    old.start_run("eob-2026-11", "2026-11", "extracts", 1)
    old.add_statements([NewStatement(STATEMENT, "eob-2026-11", "2026-11", "M000000001", 1, 0, "paper",
                                     "no_consent", None, 4, True)])
    with old.begin() as conn:
        conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due, channel, "
                          "statement_leaves) VALUES (:s, 'C1', '2026-12-01', 'paper', '2026-12-08')"),
                     {"s": STATEMENT})
        for batch in ("B1", "B2"):
            conn.execute(text("INSERT INTO print_batches (batch_name, batch_day, mail_class, state, pieces, "
                              "sheets, pages, files, drop_where, created_at, ack_due_at) VALUES (:b, "
                              "'2026-12-01', 'first', 'delivered', 1, 1, 1, '[]', 'f', 'x', 'x')"),
                         {"b": batch})
        conn.execute(text("INSERT INTO batch_pieces (batch_name, statement_id, sequence, pages, sheets, "
                          "mail_class, imb_serial) VALUES ('B1', :s, 1, 1, 1, 'first', 3)"), {"s": STATEMENT})
    old.close()
    ledger = Ledger.open(ledger_url, migrate=False)
    assert ledger.migrate()[0] == 14  # and the later ones
    assert ledger.fetch("notices_due")[0]["claim_id"] == "C1"
    row = ledger.fetch_one("ingest_prompt_notices_for_run", run_id="eob-2026-11")
    assert row is not None and (row["notice_status"], row["notice_id"], row["left_on"]) == ("due", None, None)
    assert ledger.fetch_one("paper_live_piece", statement_id=STATEMENT)["status"] == "composed"  # type: ignore[index]
    with ledger.begin() as conn:  # a piece may now name a notice (and statements keep their pieces)
        conn.execute(text("INSERT INTO batch_pieces (batch_name, statement_id, sequence, pages, sheets, "
                          "mail_class, imb_serial) VALUES ('B1', :n, 2, 1, 1, 'first', 4)"),
                     {"n": "nt-0123456789abcdef"})
        with pytest.raises(IntegrityError), conn.begin_nested():  # still one live piece per id
            conn.execute(text("INSERT INTO batch_pieces (batch_name, statement_id, sequence, pages, sheets, "
                              "mail_class, imb_serial) VALUES ('B2', :s, 1, 1, 1, 'first', 5)"),
                         {"s": STATEMENT})
    ledger.close()
