"""The demo's print vendor answers real batches the way the contract asks a vendor to: an
acknowledgement and tracking our own parsers read, each batch once, the same answer for the same
batch, and a batch that fails its control totals rejected whole."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.demo.print_vendor import PrintVendor, write_ack, write_tracking
from pipeline.paper.addresses import prepare_address
from pipeline.paper.batches import BatchLimits, Piece, write_batches
from pipeline.paper.drops import open_drop
from pipeline.paper.vendor_files import (
    Acknowledgement,
    AckRow,
    TrackingFile,
    TrackingRow,
    classify_vendor_file,
    parse_ack,
    parse_tracking,
)
from pipeline.render import render_statement
from tests.support.factories import make_member, make_statement

MAIL_DATE = date(2026, 12, 8)


@pytest.fixture(scope="module")
def print_files() -> dict[str, bytes]:
    """Print PDFs of twelve statements, rendered once for the module."""
    files = {}
    for n in range(12):
        statement = make_statement(n_lines=2 + n % 4, member=make_member(member_id=f"M{n:09d}"))
        files[statement.statement_id] = render_statement(statement, variant="print").pdf
    return files


def deliver_batches(print_files: dict[str, bytes], root: Path) -> Path:
    """The day's batches (nine first-class pieces, three standard) written and put in a folder drop."""
    pieces = [Piece(sid, "standard" if n % 4 == 0 else "first",
                    (f"MEMBER {n}", f"{n} MAIN ST", f"SPRINGFIELD IL {62701 + n:05d}"), f"{62701 + n:05d}")
              for n, sid in enumerate(print_files)]
    run = write_batches(pieces, lambda p: print_files[p.statement_id], root / "work", day="2026-12-07",
                        limits=BatchLimits(), serial=lambda batch, seq: f"{batch:03d}{seq:06d}")
    drop = root / "drop"
    drop.mkdir()
    with open_drop(drop.as_uri()) as vendor_drop:
        for batch in run.batches:
            vendor_drop.deliver(batch.name, batch.files, batch.control)
    return drop


def manifest(drop: Path, batch: str) -> list[dict[str, str]]:
    with (drop / f"{batch}.manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def answers(drop: Path) -> tuple[dict[str, Acknowledgement], dict[str, TrackingFile]]:
    """What the vendor left in the drop, as the pipeline will read it."""
    acks, tracking = {}, {}
    with open_drop(drop.as_uri()) as vendor_drop:
        for file in vendor_drop.incoming():
            kind, data = classify_vendor_file(file.name), vendor_drop.read(file.name)
            if kind == "ack":
                ack = parse_ack(data, file.name)
                acks[ack.batch] = ack
            elif kind == "tracking":
                tracking[file.name] = parse_tracking(data, file.name)
    assert all(not ack.problems for ack in acks.values()) and all(not t.problems for t in tracking.values())
    return acks, tracking


def outbound_files(drop: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((drop / "outbound").iterdir())}


def test_every_piece_is_acknowledged_and_every_accepted_piece_tracked(
        print_files: dict[str, bytes], tmp_path: Path) -> None:
    drop = deliver_batches(print_files, tmp_path)
    vendor = PrintVendor(drop, return_share=0.25, forward_share=0.25, reject_share=0.2, mail_date=MAIL_DATE)
    counts = vendor.process()
    acks, tracking = answers(drop)
    assert sorted(acks) == ["EOB-20261207-FIRST-001", "EOB-20261207-STANDARD-002"]
    assert list(tracking) == ["tracking-20261208-001.csv", "tracking-20261208-002.csv"]

    serials = {}
    for name, ack in acks.items():
        rows = manifest(drop, name)
        assert [(a.statement_id, a.sequence, a.pages) for a in ack.rows] == [
            (r["statement_id"], int(r["sequence"]), int(r["pages"])) for r in rows]
        serials |= {r["statement_id"]: r["imb_serial"] for r in rows}
    acked = [row for ack in acks.values() for row in ack.rows]
    rejected = [row for row in acked if row.status == "rejected"]
    assert all(row.reason == "damaged in print" for row in rejected)

    events = [row for t in tracking.values() for row in t.rows]
    by_piece: dict[str, list[TrackingRow]] = {}
    for event in events:
        assert event.imb_serial == serials[event.statement_id]
        by_piece.setdefault(event.statement_id, []).append(event)
    accepted = {row.statement_id for row in acked if row.status == "accepted"}
    assert set(by_piece) == accepted, "every accepted piece is tracked, and only those"
    after = {"delivered": 3, "forwarded": 4, "returned_to_sender": 5}
    for rows in by_piece.values():
        mailed, outcome = rows
        assert (mailed.event, mailed.event_date) == ("mailed", MAIL_DATE)
        assert outcome.event_date == MAIL_DATE + timedelta(days=after[outcome.event])
        assert bool(outcome.new_address) == (outcome.event == "forwarded")
    outcomes = Counter(rows[1].event for rows in by_piece.values())

    assert counts == {"batches": 2, "pieces": 12, "accepted": len(accepted), "rejected": len(rejected),
                      "returned": outcomes["returned_to_sender"], "forwarded": outcomes["forwarded"],
                      "failed_control": 0}
    assert min(counts["rejected"], outcomes["returned_to_sender"], outcomes["forwarded"],
               outcomes["delivered"]) > 0, "these shares should give every fate at least once"


def test_a_forwarding_address_passes_the_address_checks(
        print_files: dict[str, bytes], tmp_path: Path) -> None:
    drop = deliver_batches(print_files, tmp_path)
    counts = PrintVendor(drop, return_share=0, forward_share=1, mail_date=MAIL_DATE).process()
    assert counts["forwarded"] == 12
    _, tracking = answers(drop)
    for row in (row for t in tracking.values() for row in t.rows if row.event == "forwarded"):
        name, street, last = row.new_address
        city, state, zip5 = last.rsplit(" ", 2)
        assert prepare_address(name, street, None, city, state, zip5).lines == row.new_address


def test_the_same_batches_get_the_same_answer(print_files: dict[str, bytes], tmp_path: Path) -> None:
    first, second = (deliver_batches(print_files, tmp_path / run) for run in ("a", "b"))
    for drop in (first, second):
        PrintVendor(drop, return_share=0.3, forward_share=0.2, reject_share=0.1,
                    mail_date=MAIL_DATE).process()
    assert outbound_files(first) == outbound_files(second)


def test_a_pdf_changed_after_delivery_gets_the_whole_batch_rejected(
        print_files: dict[str, bytes], tmp_path: Path) -> None:
    drop = deliver_batches(print_files, tmp_path)
    pdf = drop / "EOB-20261207-FIRST-001.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))

    counts = PrintVendor(drop, return_share=0, forward_share=0, mail_date=MAIL_DATE).process()
    acks, tracking = answers(drop)
    tampered = acks["EOB-20261207-FIRST-001"]
    assert len(tampered.rows) == 9 and {row.status for row in tampered.rows} == {"rejected"}
    assert {row.reason for row in tampered.rows} == {"batch failed control check: pdf sha256"}
    assert {row.status for row in acks["EOB-20261207-STANDARD-002"].rows} == {"accepted"}
    assert {row.statement_id for t in tracking.values() for row in t.rows} == {
        row.statement_id for row in acks["EOB-20261207-STANDARD-002"].rows}, "nothing of it mailed"
    assert counts["failed_control"] == 1 and counts["rejected"] == 9 and counts["accepted"] == 3


def test_a_batch_is_answered_once_and_only_once_its_control_file_is_there(
        print_files: dict[str, bytes], tmp_path: Path) -> None:
    drop = deliver_batches(print_files, tmp_path)
    control = drop / "EOB-20261207-STANDARD-002.control.json"
    held_back = control.read_bytes()
    control.unlink()
    vendor = PrintVendor(drop, mail_date=MAIL_DATE)
    assert vendor.process()["batches"] == 1
    assert sorted(outbound_files(drop)) == ["EOB-20261207-FIRST-001.ack.csv", "tracking-20261208-001.csv"]

    again = vendor.process()
    assert again == dict.fromkeys(again, 0), "nothing new: nothing answered again"
    control.write_bytes(held_back)
    assert PrintVendor(drop, mail_date=MAIL_DATE).process()["batches"] == 1, "the record outlives the object"
    assert sorted(outbound_files(drop)) == [
        "EOB-20261207-FIRST-001.ack.csv", "EOB-20261207-STANDARD-002.ack.csv",
        "tracking-20261208-001.csv", "tracking-20261208-002.csv"]
    assert PrintVendor(drop, mail_date=MAIL_DATE).process()["batches"] == 0


def test_crafted_files_for_other_tests_are_read_as_written(tmp_path: Path) -> None:
    outbound = tmp_path / "outbound"
    rows = [AckRow("st-2026-11-unknown", 1, "accepted", 2), AckRow("s-1", 2, "accepted", 2),
            AckRow("s-1", 2, "accepted", 2), AckRow("s-2", 3, "accepted", 99),
            AckRow("s-3", 4, "rejected", 1, 'torn, "refed" twice')]
    path = write_ack(outbound, "EOB-20261207-FIRST-001", rows)
    assert parse_ack(path.read_bytes(), path.name) == Acknowledgement("EOB-20261207-FIRST-001", tuple(rows))

    forwarded_to = ("A B", "1 C ST", "SPRINGFIELD IL 62704")
    events = [TrackingRow("s-1", "001000001", "mailed", MAIL_DATE),
              TrackingRow("s-1", "001000001", "forwarded", MAIL_DATE, forwarded_to)]
    (outbound / "processed").mkdir()
    (outbound / "processed" / "tracking-20261208-004.csv").write_bytes(b"")
    path = write_tracking(outbound, events, day=MAIL_DATE)
    assert path.name == "tracking-20261208-005.csv", "a number used before, even archived, is not reused"
    assert parse_tracking(path.read_bytes(), path.name).rows == tuple(events)
    assert write_tracking(outbound, events[:1], day=MAIL_DATE).name == "tracking-20261208-006.csv"
    assert not [p for p in outbound.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_shares_outside_zero_to_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reject_share"):
        PrintVendor(tmp_path, reject_share=1.5, mail_date=MAIL_DATE)
    with pytest.raises(ValueError, match="together"):
        PrintVendor(tmp_path, return_share=0.6, forward_share=0.6, mail_date=MAIL_DATE)
