"""The run report's prompt notices, rebuilt from the ledger: each flagged claim's notice with its
status, the day it left and whether late, and the counts finance and operations read."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import text

from pipeline.ledger import (
    Event,
    Ledger,
    NewStatement,
    NoticeMove,
    NoticeStatus,
    make_notice_id,
    move_notices,
)
from pipeline.report import build_report, write_report

RUN = "eob-2026-11"


def _ledger(tmp_path: Path) -> Ledger:
    """Four flagged claims: one notice emailed on time, one emailed late, one on paper (late, not yet
    mailed), one not sent yet."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.start_run(RUN, "2026-11", "extracts", 1)
    ledger.add_statements([NewStatement(f"st-2026-11-{n:016x}", RUN, "2026-11", f"M{n:09d}", 1, 0, "email",
                                        None, "gmail.com", 3, True) for n in range(2)])
    first, second = "st-2026-11-0000000000000000", "st-2026-11-0000000000000001"
    flagged = [(first, "C1", "2026-12-07"), (first, "C2", "2026-12-01"),
               (second, "C3", "2026-12-02"), (second, "C4", "2026-12-03")]
    ids = {claim: make_notice_id(statement_id, claim, key=b"k") for statement_id, claim, _ in flagged}
    with ledger.begin() as conn:
        for statement_id, claim, due in flagged:
            conn.execute(text("INSERT INTO prompt_notices (statement_id, claim_id, notice_due, channel, "
                              "statement_leaves, notice_id) VALUES (:s, :c, :d, 'email', '2026-12-08', :n)"),
                         {"s": statement_id, "c": claim, "d": due, "n": ids[claim]})
    move_notices(ledger, [
        NoticeMove(ids["C1"], NoticeStatus.SENT, Event.NOTICE_SENT, left_on=date(2026, 12, 7)),
        NoticeMove(ids["C2"], NoticeStatus.SENT, Event.NOTICE_SENT, left_on=date(2026, 12, 7)),
        NoticeMove(ids["C3"], NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                   left_on=date(2026, 12, 8))])
    return ledger


def test_the_report_counts_notices_due_sent_on_paper_waiting_and_late(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    report = build_report(ledger, RUN)
    summary = report.summary()
    assert {key: summary[key] for key in summary if key.startswith("notices_")} == {
        "notices_due": 4, "notices_sent": 2, "notices_on_paper": 1, "notices_waiting": 1, "notices_late": 2}
    assert summary["prompt_notice_claims"] == 4


def test_the_listing_gives_each_notice_its_status_day_and_lateness(tmp_path: Path) -> None:
    paths = write_report(build_report(_ledger(tmp_path), RUN), tmp_path / "reports")
    rows = {row["claim_id"]: row for row in csv.DictReader(paths["prompt_notices"].open())}
    assert {claim: (row["status"], row["left"], row["late"]) for claim, row in rows.items()} == {
        "C1": ("sent", "2026-12-07", "no"), "C2": ("sent", "2026-12-07", "yes"),
        "C3": ("paper_queued", "2026-12-08", "yes"), "C4": ("due", "", "")}
    assert {row["statement_status"] for row in rows.values()} == {"composed"}
    assert all(row["notice_id"].startswith("nt-") for row in rows.values())
    html = paths["html"].read_text()
    assert '<td>late (left, or leave on paper, after their due date)</td><td class="n">2</td>' in html
    assert "<td>paper_queued</td><td>2026-12-08</td><td>yes</td>" in html


def test_a_notice_closed_with_its_superseded_statement_is_not_due(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    waiting = make_notice_id("st-2026-11-0000000000000001", "C4", key=b"k")
    move_notices(ledger, [NoticeMove(waiting, NoticeStatus.SUPERSEDED, Event.NOTICE_SUPERSEDED)])
    summary = build_report(ledger, RUN).summary()
    assert (summary["notices_due"], summary["notices_waiting"]) == (3, 0)
    assert summary["notices_due"] == summary["notices_sent"] + summary["notices_on_paper"]


def test_the_report_counts_accumulator_overruns_and_the_statements_held_for_them(tmp_path: Path) -> None:
    """Before: an overrun was only a log line and compose's count, and a held statement was one
    more `failed` with nothing saying why or whether every held one was accounted for."""
    from pipeline.ledger import Status

    ledger = _ledger(tmp_path)
    shown, held = "st-2026-11-0000000000000000", "st-2026-11-0000000000000001"
    ledger.audit("pipeline", "accumulator_overrun", None,
                 {"run_id": RUN, "statement_ids": [shown, held], "action": "hold"})
    ledger.audit("pipeline", "accumulator_overrun", None,  # another run's flag is not this run's
                 {"run_id": "eob-2026-10", "statement_ids": ["st-2026-10-0000000000000009"],
                  "action": "hold"})
    assert ledger.transition(held, Status.FAILED, Event.RENDER_FAILED, detail=
                             {"error": "StatementHeld",
                              "reason": "StatementHeld: held (accumulator_overrun)"})
    report = build_report(ledger, RUN)
    summary = report.summary()
    assert (summary["accumulator_overrun"], summary["held_accumulator_overrun"]) == (2, 1)
    check = next(c for c in report.checks if c.name.startswith("every held statement"))
    assert check.ok, check.detail
    paths = write_report(report, tmp_path / "reports")
    rows = list(csv.DictReader(paths["accumulator_overruns"].open()))
    assert rows == [{"statement_id": shown, "held": "no", "status": ""},
                    {"statement_id": held, "held": "yes", "status": "failed"}]
    figures = {row["metric"]: row["value"] for row in csv.DictReader(paths["csv"].open())}
    assert (figures["accumulator_overrun"], figures["held_accumulator_overrun"]) == ("2", "1")
    assert "Accumulator overruns" in paths["html"].read_text()


def test_a_held_statement_no_flag_accounts_for_fails_the_reconciliation(tmp_path: Path) -> None:
    from pipeline.ledger import Status

    ledger = _ledger(tmp_path)
    held = "st-2026-11-0000000000000001"
    assert ledger.transition(held, Status.FAILED, Event.RENDER_FAILED, detail={"error": "StatementHeld"})
    check = next(c for c in build_report(ledger, RUN).checks
                 if c.name.startswith("every held statement"))
    assert not check.ok and "1 held without a flag" in check.detail
