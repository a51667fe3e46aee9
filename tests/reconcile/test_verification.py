"""The verification queue: a work list without statement content, outcomes imported back."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from pipeline.delivery.suppression import is_suppressed
from pipeline.reconcile.verification import (
    COLUMNS,
    VerificationError,
    export_worklist,
    import_outcomes,
    mask_address,
    resend_verified,
)
from pipeline.stages.reconcile import process_document
from tests.support.reconcile import (
    RUN_ID,
    SECRET,
    FakeNow,
    add_sent,
    address,
    dsn,
    events_of,
    make_context,
    member,
    sid,
    status_of,
    write_members,
)


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    now = FakeNow()
    context = make_context(tmp_path, now)
    write_members(context, [1, 2, 3, 4])
    for n in (1, 2, 3, 4):
        add_sent(context, n)
        process_document(context, dsn(n), "rfc822", "maildir")
    assert all(status_of(context, n) == "verification_pending" for n in (1, 2, 3, 4))
    yield context
    context.ledger.close()


def _fill(path: Path, outcomes: dict[str, list[str]]) -> Path:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        row[7:11] = outcomes.get(row[0], ["", "", "", ""])
    out = path.with_name("filled.csv")
    with out.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return out


def test_masked_hint_lets_a_member_recognise_the_address_and_no_more() -> None:
    assert mask_address("jordan.alvarez@gmail.com") == "j***@g***.com"
    assert mask_address(None, "example.org") == "***@e***.org"
    assert mask_address("", None) == ""


def test_the_work_list_has_ids_reason_hint_and_deadline_and_nothing_else(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "worklist.xlsx"
    assert export_worklist(ctx, out, actor="alice") == 4
    sheet = load_workbook(out).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert tuple(rows[0]) == COLUMNS
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first["statement_id"] == sid(1) and first["member_id"] == member(1)
    assert first["reason"] == "mailbox does not exist"
    assert first["contact_hint"] == "m***@e***.org"
    assert first["respond_by"] == "2026-12-08"
    text = " ".join(str(v) for row in rows for v in row if v)
    assert address(1) not in text, "the full address must not be on the work list"
    assert "verification_listed" in events_of(ctx, 1)
    assert any(a["action"] == "verification_export" for a in ctx.ledger.fetch("audit_chain"))


def test_outcomes_verified_resends_to_the_confirmed_address_failed_goes_to_paper(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worklist = tmp_path / "worklist.csv"
    export_worklist(ctx, worklist, actor="alice")
    assert is_suppressed(ctx.ledger, address(1), SECRET)
    filled = _fill(worklist, {
        sid(1): ["verified", "new.address@example.net", "phone", "agent-7"],
        sid(2): ["failed", "", "secure_sms", "agent-7"],
        sid(3): ["verified", "not an address", "phone", "agent-7"],  # a bad row
        # sid(4) left blank: still pending
    })
    result = import_outcomes(ctx, filled, actor="alice")
    assert (result.verified, result.failed, result.unchanged) == (1, 1, 1)
    assert result.problems == [(4, "verified_email is not a valid address")]
    assert [status_of(ctx, n) for n in (1, 2, 3, 4)] == [
        "verified", "paper_queued", "verification_pending", "verification_pending"]
    members = pq.read_table(ctx.settings.work_dir / RUN_ID / "members.parquet").to_pylist()
    assert next(m for m in members if m["member_id"] == member(1))["email"] == "new.address@example.net"
    # the next reconcile cycle resends it (the sender reads the corrected contact file)
    assert resend_verified(ctx)["resend_queued"] == 1
    assert status_of(ctx, 1) == "queued"
    assert events_of(ctx, 1)[-2:] == ["address_verified", "resend_queued"]
    assert import_outcomes(ctx, filled, actor="alice").verified == 0, "a re-import changes nothing"


def test_a_confirmed_suppressed_address_is_lifted_with_the_verification_as_reason(
        ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worklist = tmp_path / "w.csv"
    export_worklist(ctx, worklist, actor="alice")
    filled = _fill(worklist, {sid(1): ["verified", address(1), "phone", "agent-7"]})
    import_outcomes(ctx, filled, actor="alice")
    assert not is_suppressed(ctx.ledger, address(1), SECRET)
    lifts = [a for a in ctx.ledger.fetch("audit_chain") if a["action"] == "suppression_lifted"]
    assert len(lifts) == 1 and "confirmed by the member via phone" in lifts[0]["reason"]


def test_a_verified_statement_waits_when_the_contact_is_not_the_verified_one(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worklist = tmp_path / "w.csv"
    export_worklist(ctx, worklist, actor="alice")
    import_outcomes(ctx, _fill(worklist, {sid(1): ["verified", "x@example.net", "phone", "a"]}),
                    actor="alice")
    write_members(ctx, [1, 2, 3, 4])  # someone re-ran ingest: the old (bad) address is back
    assert resend_verified(ctx) == {"resend_queued": 0, "resend_waiting": 1, "resend_paper": 0}
    assert status_of(ctx, 1) == "verified", "never resend to an address nobody verified"


def test_a_file_without_the_outcome_columns_is_refused(tmp_path: Path, ctx) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.csv"
    bad.write_text("statement_id,member_id\nx,y\n")
    with pytest.raises(VerificationError, match="lacks the columns"):
        import_outcomes(ctx, bad, actor="alice")


def test_xlsx_round_trip(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "w.xlsx"
    export_worklist(ctx, out, actor="alice")
    book = load_workbook(out)
    sheet = book.active
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == sid(2):
            row[7].value, row[9].value, row[10].value = "failed", "phone", "agent-1"
    book.save(out)
    assert import_outcomes(ctx, out, actor="alice").failed == 1
    assert status_of(ctx, 2) == "paper_queued"


def test_a_corrected_contact_keeps_the_files_row_groups_and_every_other_member(ctx) -> None:  # type: ignore[no-untyped-def]
    from pipeline.reconcile.verification import correct_contact

    path = ctx.settings.work_dir / RUN_ID / "members.parquet"
    before = pq.read_table(path)
    pq.write_table(before, path, row_group_size=1)  # one row group per bucket, as ingest writes it
    correct_contact(ctx, RUN_ID, member(2), "new.address@example.net")
    after = pq.ParquetFile(path)
    assert after.metadata.num_row_groups == before.num_rows and after.schema_arrow == before.schema
    rows = {row["member_id"]: row for row in after.read().to_pylist()}
    assert rows[member(2)]["email"] == "new.address@example.net"
    assert [rows[member(n)]["email"] for n in (1, 3, 4)] == [address(n) for n in (1, 3, 4)]
    with pytest.raises(VerificationError, match="not in the run's contact file"):
        correct_contact(ctx, RUN_ID, "M-nobody", "x@example.net")
    assert not list(path.parent.glob(".members-*"))  # no temporary file left behind
