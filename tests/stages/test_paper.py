"""The paper stages on a real ledger: the day's batches delivered to the vendor's drop, the
vendor's acknowledgement and tracking closing the loop, and the checks that alert.

What operations and support would notice: every paper statement is batched once, mailed, or in
a named exception; a returned letter reaches verification; a vendor's rejection, an unknown id
and a missing acknowledgement each do what docs/paper.md says; a re-run changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path

import pikepdf
import pytest

from pipeline.demo.print_vendor import PrintVendor, write_ack, write_tracking
from pipeline.paper import AckRow, TrackingRow
from pipeline.stages import (
    BatchFilesChanged,
    BatchNotCancellable,
    PaperOverdue,
    cancel_batch,
    paper_batch_stage,
    paper_checks_stage,
    paper_vendor_files_stage,
    redrop_batch,
    report_stage,
)
from tests.support.paper import DAY, PERIOD, events, paper_context, queue_paper, statuses
from tests.support.send import WallClock
from tests.support.sshd import SshServer, requires_sshd


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


def drop(ctx) -> Path:  # type: ignore[no-untyped-def]
    return ctx.settings.workspace / "vendor-drop"


def manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_paper_queue_becomes_delivered_batches_each_statement_once(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock, paper_batch_max_pieces=4)
    ids = queue_paper(ctx, 10)
    result = paper_batch_stage(ctx, DAY)
    assert result["batches"] == 3 and result["pieces"] == 10 and result["address_exceptions"] == 0
    assert set(statuses(ctx, ids).values()) == {"batched"}
    folder = drop(ctx)
    controls = sorted(folder.glob("*.control.json"))
    assert [c.name for c in controls] == [f"EOB-20261203-FIRST-00{n}.control.json" for n in (1, 2, 3)]
    listed = []
    for control in controls:
        totals = json.loads(control.read_text())
        for entry in totals["files"]:
            data = (folder / entry["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], "the vendor got the bytes we hashed"
        rows = manifest(folder / totals["files"][1]["name"])
        with pikepdf.open(folder / totals["files"][0]["name"]) as pdf:
            assert len(pdf.pages) == totals["pages"] == sum(int(r["pages"]) for r in rows)
        listed += [r["statement_id"] for r in rows]
    assert sorted(listed) == sorted(ids)
    serials = [r["imb_serial"] for c in controls
               for r in manifest(folder / json.loads(c.read_text())["files"][1]["name"])]
    assert len(set(serials)) == 10, "every piece has its own barcode serial"
    assert "batched" in events(ctx, ids[0])
    again = paper_batch_stage(ctx, DAY)
    assert again["candidates"] == 0 and again["batches"] == 0, "a re-run batches nothing twice"


def test_an_address_that_cannot_be_mailed_is_an_exception_with_its_reason(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock)
    bad = {1: ("12 Oak St", "", "Springfield", "IL", "90210"),   # a California ZIP in Illinois
           2: ("", "", "Madison", "WI", "53703")}                # no street
    ids = queue_paper(ctx, 4, bad=bad)
    result = paper_batch_stage(ctx, DAY)
    assert result["address_exceptions"] == 2 and result["pieces"] == 2
    rows = {sid: ctx.ledger.statement(sid) for sid in ids}
    assert rows[ids[1]]["status"] == rows[ids[2]]["status"] == "paper_exception"  # type: ignore[index]
    assert rows[ids[1]]["last_reason"] == "mailing address: state_zip_mismatch"  # type: ignore[index]
    assert rows[ids[2]]["last_reason"] == "mailing address: incomplete"  # type: ignore[index]
    batched = [r["statement_id"] for m in drop(ctx).glob("*.manifest.csv") for r in manifest(m)]
    assert sorted(batched) == sorted([ids[0], ids[3]])


def test_an_address_exception_asks_support_to_act_without_failing_the_run_s_reconciliation(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock)
    queue_paper(ctx, 3, bad={1: ("", "", "Madison", "WI", "53703")})
    paper_batch_stage(ctx, DAY)
    summary = report_stage(ctx, PERIOD)
    assert summary["attention_checks"] == ["every paper statement has a printable address"]
    assert "every paper statement has a printable address" not in summary["failed_checks"]
    html = Path(summary["html"]).read_text(encoding="utf-8")
    assert "✘ to act on" in html and "1 statements wait for support" in html


def test_dry_run_plans_without_delivering(tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock)
    ids = queue_paper(ctx, 3)
    result = paper_batch_stage(ctx, DAY, dry_run=True)
    assert result["pieces"] == 3 and result["dry_run"]
    assert set(statuses(ctx, ids).values()) == {"paper_queued"}
    assert not list(drop(ctx).glob("*.pdf"))


def test_the_vendor_s_files_move_pieces_to_mailed_and_returns_to_verification(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock)
    ids = queue_paper(ctx, 40)
    paper_batch_stage(ctx, DAY)
    vendor = PrintVendor(drop(ctx), return_share=0.15, forward_share=0.1, mail_date=date(2026, 12, 4))
    done = vendor.process()
    assert done["accepted"] == 40
    counts = paper_vendor_files_stage(ctx)
    assert counts["printed"] == 40 and counts["mailed"] == 40
    final = statuses(ctx, ids)
    returned = [sid for sid in ids if final[sid] == "verification_pending"]
    assert len(returned) == done["returned"] >= 1
    assert all("returned_to_sender" in events(ctx, sid) for sid in returned)
    assert set(final.values()) == {"mailed", "verification_pending"}
    from sqlalchemy import text

    with ctx.ledger.engine.connect() as conn:
        kept = conn.execute(text("SELECT COUNT(*) FROM paper_forwarding")).scalar()
    assert counts.get("forwarded", 0) == done["forwarded"] == kept, "each new address kept for verification"
    assert not list((drop(ctx) / "outbound").glob("*.csv")), "every vendor file archived"
    assert paper_vendor_files_stage(ctx).get("files", 0) == 0, "each file is applied once"


def test_a_rejection_returns_the_piece_an_unknown_id_is_ignored_and_pages_are_checked(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock)
    ids = queue_paper(ctx, 3)
    paper_batch_stage(ctx, DAY)
    [batch] = [p.name.removesuffix(".manifest.csv") for p in drop(ctx).glob("*.manifest.csv")]
    rows = manifest(drop(ctx) / f"{batch}.manifest.csv")
    pages = {r["statement_id"]: int(r["pages"]) for r in rows}
    seq = {r["statement_id"]: int(r["sequence"]) for r in rows}
    serial = {r["statement_id"]: r["imb_serial"] for r in rows}
    write_ack(drop(ctx) / "outbound", batch, [
        AckRow(ids[0], seq[ids[0]], "accepted", pages[ids[0]]),
        AckRow(ids[1], seq[ids[1]], "rejected", pages[ids[1]], "paper jam, sheet damaged"),
        AckRow(ids[2], seq[ids[2]], "accepted", pages[ids[2]] + 1),
        AckRow("st-2026-11-ffffffffffffffff", 9, "accepted", 2),
    ])
    ack = (drop(ctx) / "outbound" / f"{batch}.ack.csv").read_bytes()
    counts = paper_vendor_files_stage(ctx)
    assert counts["printed"] == 2 and counts["vendor_rejected"] == 1
    assert counts["unknown_piece"] == 1 and counts["page_count_mismatch"] == 1
    (drop(ctx) / "outbound" / f"{batch}.ack.csv").write_bytes(ack)  # the vendor sends it again
    repeated = paper_vendor_files_stage(ctx)
    assert repeated.get("printed", 0) == 0 and repeated["already_answered"] == 2
    row = ctx.ledger.fetch_one("paper_batch", batch_name=batch)
    assert (row["accepted"], row["rejected"]) == (2, 1), "totals are not counted twice"  # type: ignore[index]
    final = statuses(ctx, ids)
    assert final == {ids[0]: "printed", ids[1]: "paper_queued", ids[2]: "printed"}
    assert "page_count_mismatch" in events(ctx, ids[2])
    assert ctx.ledger.statement(ids[1])["last_reason"] == "print vendor: paper jam, sheet damaged"  # type: ignore[index]
    clock.advance(days=1)
    again = paper_batch_stage(ctx, "2026-12-04")
    assert again["pieces"] == 1, "the rejected piece goes out in the next day's batch"
    mailed = TrackingRow(ids[0], serial[ids[0]], "mailed", date(2026, 12, 4))
    stale = TrackingRow(ids[2], "999999999", "returned_to_sender", date(2026, 12, 4))
    write_tracking(drop(ctx) / "outbound", [mailed, mailed, stale], day=date(2026, 12, 4))
    tracked = paper_vendor_files_stage(ctx)
    assert tracked["mailed"] == 1 and tracked["tracking_ignored"] == 1, "a repeated line changes nothing"
    assert tracked["earlier_mailing"] == 1 and statuses(ctx, [ids[2]]) == {ids[2]: "printed"}, \
        "a letter of another mailing (another serial) does not move this one"


def test_a_batch_without_acknowledgement_and_late_mail_fail_the_checks(
        tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock, paper_ack_hours=24, paper_mail_days=10)
    ids = queue_paper(ctx, 2)
    paper_batch_stage(ctx, DAY)
    assert paper_checks_stage(ctx) == {"batches_unacknowledged": 0, "statements_escalated": 0}
    clock.advance(hours=25)
    with pytest.raises(PaperOverdue, match=r"1 batch\(es\).*EOB-20261203-FIRST-001"):
        paper_checks_stage(ctx)
    from pipeline.report import build_report

    checks = {c.name: c for c in build_report(ctx.ledger, "eob-2026-11").checks}
    check = checks["every print batch acknowledged by the vendor in time"]
    assert not check.ok and "EOB-20261203-FIRST-001" in check.detail
    clock.advance(days=10)
    with pytest.raises(PaperOverdue, match="2 statement"):
        paper_checks_stage(ctx)
    assert events(ctx, ids[0]).count("paper_overdue") == 1
    with pytest.raises(PaperOverdue) as again:
        paper_checks_stage(ctx)
    assert "statement" not in str(again.value), "each statement is escalated once"


def test_cancel_within_the_window_and_redrop_with_the_same_files(tmp_path: Path, clock: WallClock) -> None:
    ctx = paper_context(tmp_path / "ws", clock, paper_cancel_hours=4)
    ids = queue_paper(ctx, 3)
    paper_batch_stage(ctx, DAY)
    name = "EOB-20261203-FIRST-001"
    pdf = drop(ctx) / f"{name}.pdf"
    pdf.unlink()  # the vendor lost it
    files = redrop_batch(ctx, name, actor="ops")
    assert pdf.is_file() and hashlib.sha256(pdf.read_bytes()).hexdigest() == files[0]["sha256"]
    (ctx.settings.work_dir / "paper" / DAY / f"{name}.pdf").write_bytes(b"%PDF-1.7 something else")
    with pytest.raises(BatchFilesChanged, match="not the file first made"):
        redrop_batch(ctx, name, actor="ops")
    assert cancel_batch(ctx, name, actor="ops") == 3
    assert set(statuses(ctx, ids).values()) == {"paper_queued"}
    assert json.loads((drop(ctx) / f"{name}.cancel.json").read_text())["pieces"] == 3, "the vendor is told"
    PrintVendor(drop(ctx), mail_date=date(2026, 12, 4)).process()  # confirms: nothing printed
    assert paper_vendor_files_stage(ctx)["ack_of_cancelled_batch"] == 1
    assert set(statuses(ctx, ids).values()) == {"paper_queued"}
    with pytest.raises(BatchNotCancellable, match="cancelled"):
        cancel_batch(ctx, name, actor="ops")
    clock.advance(hours=1)
    paper_batch_stage(ctx, DAY)
    clock.advance(hours=5)
    with pytest.raises(BatchNotCancellable, match="past its cancellation window"):
        cancel_batch(ctx, "EOB-20261203-FIRST-002", actor="ops")


def test_a_returned_letter_is_never_printed_again_to_the_same_address(
        tmp_path: Path, clock: WallClock) -> None:
    """Returned → verification; nobody confirms it in time → a paper exception, not the paper
    queue; the same address in the member file keeps it there; a corrected one sends it again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.stages import sweep_stage
    from tests.support.paper import RUN_ID

    ctx = paper_context(tmp_path / "ws", clock, verification_days=7)
    [sid] = queue_paper(ctx, 1)
    paper_batch_stage(ctx, DAY)
    vendor = PrintVendor(drop(ctx), return_share=1.0, forward_share=0.0, mail_date=date(2026, 12, 4))
    vendor.process()
    paper_vendor_files_stage(ctx)
    assert ctx.ledger.statement(sid)["status"] == "verification_pending"  # type: ignore[index]
    clock.advance(days=8)
    sweep_stage(ctx)
    row = ctx.ledger.statement(sid)
    assert row["status"] == "paper_exception"  # type: ignore[index]
    assert row["last_reason"] == "mailing address: returned_mail"  # type: ignore[index]
    assert paper_batch_stage(ctx, "2026-12-11")["corrected"] == 0, "the same address: not printed again"
    members = ctx.settings.work_dir / RUN_ID / "members.parquet"
    table = pq.read_table(members).to_pylist()
    table[0].update(address_line1="5 Harbor View Rd", address_line2="", city="Portland", state="ME",
                    postal_code="04101")
    pq.write_table(pa.Table.from_pylist(table), members)
    again = paper_batch_stage(ctx, "2026-12-11")
    assert again["corrected"] == 1 and again["pieces"] == 1
    assert ctx.ledger.statement(sid)["status"] == "batched"  # type: ignore[index]
    assert "address_corrected" in events(ctx, sid)


@requires_sshd
def test_batches_reach_a_real_sftp_drop_and_an_unreachable_drop_changes_nothing(
        tmp_path: Path, clock: WallClock) -> None:
    """The drop is a real OpenSSH server. While it cannot be reached the day's run fails loudly
    before making or recording anything; the re-run delivers, and the files on the server match
    the hashes the ledger keeps and the manifest names every statement."""
    from pipeline.paper import DropUnreachable
    from tests.support.postfix import free_port

    with SshServer("127.0.0.91") as server:
        remote = server.root / "vendor"
        remote.mkdir()
        settings = {"paper_sftp_key_file": server.client_key, "paper_sftp_known_hosts": server.known_hosts}
        closed = f"sftp://{server.user}@127.0.0.91:{free_port('127.0.0.91')}{remote}"
        down = paper_context(tmp_path / "ws", clock, **settings, paper_drop_url=closed)
        ids = queue_paper(down, 5)
        with pytest.raises(DropUnreachable):
            paper_batch_stage(down, DAY)
        assert set(statuses(down, ids).values()) == {"paper_queued"}, "nothing recorded"
        assert not (down.settings.work_dir / "paper" / DAY).exists(), "no batch made for nobody"
        ctx = paper_context(tmp_path / "ws", clock, **settings, paper_drop_url=server.url(remote))
        assert paper_batch_stage(ctx, DAY)["pieces"] == 5
        [batch] = ctx.ledger.fetch("paper_batches")
        row = ctx.ledger.fetch_one("paper_batch", batch_name=batch["batch_name"])
        recorded = json.loads(row["files"])  # type: ignore[index]
        for entry in recorded:
            on_server = (remote / entry["name"]).read_bytes()
            assert hashlib.sha256(on_server).hexdigest() == entry["sha256"]
        rows = manifest(remote / f"{batch['batch_name']}.manifest.csv")
        assert sorted(r["statement_id"] for r in rows) == sorted(ids)
        assert set(statuses(ctx, ids).values()) == {"batched"}


def test_a_delivery_that_fails_after_recording_is_finished_by_the_next_run_never_batched_twice(
        tmp_path: Path, clock: WallClock) -> None:
    """The drop refuses the batch mid-way (a different file of that name is there): the batch
    stays recorded as delivering with its pieces batched, the checks alert, and once the drop is
    cleared the next run delivers the same files and makes no second batch of those pieces."""
    from pipeline.stages import DropRefused

    ctx = paper_context(tmp_path / "ws", clock)
    ids = queue_paper(ctx, 3)
    drop(ctx).mkdir(parents=True, exist_ok=True)
    stale = drop(ctx) / "EOB-20261203-FIRST-001.manifest.csv"
    stale.write_text("someone else's file\n")
    with pytest.raises(DropRefused, match="nothing was overwritten"):
        paper_batch_stage(ctx, DAY)
    [batch] = ctx.ledger.fetch("paper_batches")
    assert batch["state"] == "delivering" and set(statuses(ctx, ids).values()) == {"batched"}
    made = (ctx.settings.work_dir / "paper" / DAY / "EOB-20261203-FIRST-001.pdf").read_bytes()
    stale.unlink()
    clock.advance(days=1)
    again = paper_batch_stage(ctx, "2026-12-04")
    assert again["candidates"] == 0 and again["batches"] == 0
    assert ctx.ledger.fetch_one("paper_batch", batch_name="EOB-20261203-FIRST-001")["state"] == "delivered"  # type: ignore[index]
    assert (drop(ctx) / "EOB-20261203-FIRST-001.pdf").read_bytes() == made
    assert len(list(drop(ctx).glob("*.control.json"))) == 1


def test_a_returned_letter_sent_back_to_paper_by_verification_is_not_printed_to_the_same_address(
        tmp_path: Path, clock: WallClock) -> None:
    from pipeline.ledger import Transition
    from pipeline.ledger.events import Event
    from pipeline.ledger.statuses import Status

    ctx = paper_context(tmp_path / "ws", clock)
    [sid] = queue_paper(ctx, 1)
    paper_batch_stage(ctx, DAY)
    PrintVendor(drop(ctx), return_share=1.0, forward_share=0.0, mail_date=date(2026, 12, 4)).process()
    paper_vendor_files_stage(ctx)
    ctx.ledger.apply([  # support could not confirm the address: the verification outcome "failed"
        Transition(sid, Status.VERIFICATION_FAILED, Event.VERIFICATION_FAILED, {}),
        Transition(sid, Status.PAPER_QUEUED, Event.PAPER_QUEUED, {"reason": "verification_failed"}),
    ])
    clock.advance(days=1)
    result = paper_batch_stage(ctx, "2026-12-04")
    assert result["pieces"] == 0 and result["address_exceptions"] == 1
    assert ctx.ledger.statement(sid)["last_reason"] == "mailing address: returned_mail"  # type: ignore[index]


def test_a_name_with_accents_is_printed_in_plain_letters_and_an_unknown_batch_is_loud(
        tmp_path: Path, clock: WallClock) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.stages import VendorFilesDisagree
    from tests.support.paper import RUN_ID

    ctx = paper_context(tmp_path / "ws", clock)
    ids = queue_paper(ctx, 2)
    members = ctx.settings.work_dir / RUN_ID / "members.parquet"
    rows = pq.read_table(members).to_pylist()
    rows[0].update(first_name="José", last_name="Núñez")
    pq.write_table(pa.Table.from_pylist(rows), members)
    assert paper_batch_stage(ctx, DAY)["pieces"] == 2
    names = [r["name"] for m in drop(ctx).glob("*.manifest.csv") for r in manifest(m)]
    assert "JOSE NUNEZ" in names and set(statuses(ctx, ids).values()) == {"batched"}
    write_ack(drop(ctx) / "outbound", "EOB-20991231-FIRST-009", [AckRow(ids[0], 1, "accepted", 2)])
    with pytest.raises(VendorFilesDisagree, match="1 batch"):
        paper_vendor_files_stage(ctx)


def test_barcode_serials_wrap_but_never_repeat_within_45_days(tmp_path: Path, clock: WallClock) -> None:
    from pipeline.stages import SerialsExhausted
    from pipeline.stages.paper import _serials

    ctx = paper_context(tmp_path / "ws", clock, imb_mailer_id="912345678")  # 9 digits: 6-digit serials
    queue_paper(ctx, 3)
    paper_batch_stage(ctx, DAY)
    serials = [r["imb_serial"] for m in drop(ctx).glob("*.manifest.csv") for r in manifest(m)]
    assert sorted(serials) == ["000001", "000002", "000003"]
    with pytest.raises(SerialsExhausted, match="1,000,000 barcode serials"):
        _serials(ctx, 999_998)
    clock.advance(days=46)
    issue = _serials(ctx, 999_999)
    assert [issue(1, n) for n in range(3)] == ["000004", "000005", "000006"]
