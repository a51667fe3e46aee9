"""What the print vendor sends back, and the checks that keep paper honest.

`paper_vendor_files_stage` reads the drop's outbound/ folder once: acknowledgements first (a
piece accepted is `printed`, one rejected goes back to the paper queue with the vendor's reason,
a page count that differs from the manifest is flagged), then tracking files (`mailed` with its
mail date; in transit and delivered on the timeline; returned to sender → `verification_pending`,
since the address is wrong and must be confirmed another way; forwarded → the new address kept
for verification). An id the vendor names that is not a live piece of that batch, or a repeated
line, is recorded in the audit log and changes nothing. Each file is archived once handled.

`paper_checks_stage` is the alarm: a delivered batch with no acknowledgement by its due time,
and statements not mailed within `EOB_PAPER_MAIL_DAYS` of going to paper (each escalated once),
fail the task so Airflow alerts.

A prompt notice's piece (its notice id in the files) moves the notice the same way (`printed`,
back to the paper queue, `mailed` with the vendor's mail date as the day it left); a notice
returned to sender or forwarded is recorded on its statement's timeline, where the statement's
own verification of the address applies.

`cancel_batch` and `redrop_batch` are the operator's: a batch cancelled within its window is
announced to the vendor (`<BATCH>.cancel.json` in the drop) and then returns its pieces to the
queue; a batch the vendor lost is delivered again from the same files, checked
against the hashes recorded when it was first delivered.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pipeline.clock import iso
from pipeline.ledger import (
    NoticeMove,
    NoticeStatus,
    Transition,
    is_notice_id,
    move_notices,
    record_notice_event,
)
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.stages.context import Context, NeedsOperator
from pipeline.stages.paper import (
    BatchFilesChanged,
    batch_folder,
    open_vendor_drop,
    recorded_files,
)

log = logging.getLogger(__name__)

_TRACKING_MOVES = {"mailed": (Status.MAILED, Event.MAILED),
                   "returned_to_sender": (Status.VERIFICATION_PENDING, Event.RETURNED_TO_SENDER)}


class PaperOverdue(NeedsOperator):
    """A batch without acknowledgement past its due time, or statements not mailed in time."""


class BatchNotCancellable(NeedsOperator):
    """The batch is unknown, already acknowledged or cancelled, or past its cancellation window."""


class VendorFilesDisagree(NeedsOperator):
    """The vendor answered for a batch the ledger does not have, or printed pieces of a batch we
    cancelled: someone must reconcile with the vendor before anything is printed again."""


def paper_vendor_files_stage(ctx: Context) -> dict[str, int]:
    """Read, apply and archive every vendor file in the drop; returns counts (no PHI)."""
    from pipeline.paper import VendorFileError, classify_vendor_file

    counts: Counter[str] = Counter()
    with open_vendor_drop(ctx) as drop:
        files = sorted(drop.incoming(), key=lambda f: (classify_vendor_file(f.name) != "ack", f.name))
        for vendor_file in files:
            kind = classify_vendor_file(vendor_file.name)
            if kind is None:
                counts["files_not_ours"] += 1
                continue
            try:
                data = drop.read(vendor_file.name)
                if kind == "ack":
                    _apply_ack(ctx, data, vendor_file.name, counts)
                else:
                    _apply_tracking(ctx, data, vendor_file.name, counts)
            except VendorFileError as exc:
                counts["files_refused"] += 1
                ctx.ledger.audit("pipeline", "vendor_file_refused", None,
                                 {"file": vendor_file.name, "error": str(exc)[:300]})
            drop.archive(vendor_file.name)
            counts["files"] += 1
    result = dict(sorted(counts.items()))
    log.info("vendor files applied", extra=result)
    if counts["unknown_batch"] or counts["printed_after_cancel"]:
        raise VendorFilesDisagree(
            f"the print vendor answered for {counts['unknown_batch']} batch(es) the ledger does not "
            f"have and printed {counts['printed_after_cancel']} piece(s) of cancelled batches "
            "(audit log: vendor_unknown_batch, vendor_printed_after_cancel): check with the vendor "
            "what was printed before the next paper run; the files are archived, the rest applied")
    return result


def _ignore(ctx: Context, counts: Counter[str], what: str, detail: dict[str, Any]) -> None:
    counts[what] += 1
    ctx.ledger.audit("pipeline", f"vendor_{what}", None, detail)


def _apply_ack(ctx: Context, data: bytes, name: str, counts: Counter[str]) -> None:
    from pipeline.paper import parse_ack

    ack = parse_ack(data, name)
    for problem in ack.problems:
        _ignore(ctx, counts, "row_refused", {"file": name, "row": problem.row, "field": problem.field})
    batch = ctx.ledger.fetch_one("paper_batch", batch_name=ack.batch)
    if batch is None:
        _ignore(ctx, counts, "unknown_batch", {"file": name, "batch": ack.batch})
        return
    if batch["state"] == "cancelled":  # the vendor confirms our cancellation: its pieces moved on
        printed = [row.statement_id for row in ack.rows if row.status == "accepted"]
        if printed:  # too late: printed anyway, and its pieces are back in the queue
            counts["printed_after_cancel"] += len(printed)
            ctx.ledger.audit("pipeline", "vendor_printed_after_cancel", None,
                             {"file": name, "batch": ack.batch, "statement_ids": printed})
        else:
            _ignore(ctx, counts, "ack_of_cancelled_batch", {"file": name, "batch": ack.batch})
        return
    seen: set[str] = set()
    moves: list[Transition] = []
    notice_moves: list[NoticeMove] = []
    accepted = rejected = 0
    for row in ack.rows:
        piece = ctx.ledger.fetch_one("paper_live_piece", statement_id=row.statement_id)
        if row.statement_id in seen or piece is None or piece["batch_name"] != ack.batch:
            what = "duplicate_line" if row.statement_id in seen else "unknown_piece"
            _ignore(ctx, counts, what, {"file": name, "batch": ack.batch, "statement_id": row.statement_id})
            continue
        seen.add(row.statement_id)
        if piece["status"] != Status.BATCHED:  # answered by an earlier acknowledgement
            _ignore(ctx, counts, "already_answered", {"file": name, "batch": ack.batch,
                                                      "statement_id": row.statement_id})
            continue
        if row.status == "accepted":
            accepted += 1
            detail: dict[str, Any] = {"batch": ack.batch, "pages": row.pages}
            if int(row.pages) != int(piece["pages"]):
                mismatch = {"batch": ack.batch, "manifest": piece["pages"], "vendor": row.pages}
                if is_notice_id(row.statement_id):
                    record_notice_event(ctx.ledger, row.statement_id, Event.PAGE_COUNT_MISMATCH, mismatch)
                else:
                    ctx.ledger.record_event(row.statement_id, Event.PAGE_COUNT_MISMATCH, mismatch)
                counts["page_count_mismatch"] += 1
            if is_notice_id(row.statement_id):
                notice_moves.append(NoticeMove(row.statement_id, NoticeStatus.PRINTED, Event.NOTICE_PRINTED,
                                               detail))
            else:
                moves.append(Transition(row.statement_id, Status.PRINTED, Event.PRINTED, detail))
        else:
            rejected += 1
            ctx.ledger.execute("paper_end_piece", batch_name=ack.batch, statement_id=row.statement_id)
            why = {"batch": ack.batch, "reason": row.reason[:200]}
            if is_notice_id(row.statement_id):
                notice_moves.append(NoticeMove(row.statement_id, NoticeStatus.PAPER_QUEUED,
                                               Event.NOTICE_PAPER_QUEUED, {**why, "by": "print vendor"},
                                               last_reason=f"print vendor: {row.reason[:180]}"))
            else:
                moves.append(Transition(row.statement_id, Status.PAPER_QUEUED, Event.VENDOR_REJECTED, why,
                                        {"last_reason": f"print vendor: {row.reason[:180]}"}))
    counts["printed"] += ctx.ledger.apply(m for m in moves if m.to is Status.PRINTED)
    counts["vendor_rejected"] += ctx.ledger.apply(m for m in moves if m.to is Status.PAPER_QUEUED)
    counts["notices_printed"] += move_notices(ctx.ledger, (
        m for m in notice_moves if m.to is NoticeStatus.PRINTED))
    counts["notices_vendor_rejected"] += move_notices(ctx.ledger, (
        m for m in notice_moves if m.to is NoticeStatus.PAPER_QUEUED))
    still_open = int(ctx.ledger.fetch_one("paper_open_pieces", batch_name=ack.batch)["n"])  # type: ignore[index]
    ctx.ledger.execute("paper_set_batch_state", batch_name=ack.batch,
                       state=batch["state"] if still_open else "acknowledged",  # unanswered: overdue
                       acknowledged_at=None if still_open else ctx.ledger.now(), cancelled_at=None,
                       accepted=int(batch["accepted"]) + accepted, rejected=int(batch["rejected"]) + rejected)
    counts["acknowledgements"] += 1
    counts["pieces_unanswered"] += still_open


def _apply_tracking(ctx: Context, data: bytes, name: str, counts: Counter[str]) -> None:
    from pipeline.paper import ADDRESS_SEPARATOR, parse_tracking

    rows, problems = parse_tracking(data, name)
    for problem in problems:
        _ignore(ctx, counts, "row_refused", {"file": name, "row": problem.row, "field": problem.field})
    for row in rows:
        latest = ctx.ledger.fetch_one("paper_latest_serial_of", statement_id=row.statement_id)
        if latest is None:
            _ignore(ctx, counts, "unknown_piece", {"file": name, "statement_id": row.statement_id})
            continue
        if int(latest["imb_serial"]) != int(row.imb_serial):  # an earlier mailing's letter
            _ignore(ctx, counts, "earlier_mailing", {"file": name, "statement_id": row.statement_id,
                                                     "imb_serial": row.imb_serial})
            continue
        if is_notice_id(row.statement_id):
            _apply_notice_tracking(ctx, row, counts)
            continue
        detail = {"event": row.event, "date": row.event_date.isoformat(), "imb_serial": row.imb_serial}
        if row.event in _TRACKING_MOVES:
            to, event = _TRACKING_MOVES[row.event]
            fields = {"last_reason": "returned to sender: confirm the member's address"} \
                if to is Status.VERIFICATION_PENDING else {}
            if ctx.ledger.apply([Transition(row.statement_id, to, event, detail, fields)]):
                counts[row.event] += 1
                if to is Status.VERIFICATION_PENDING:  # out of its batch: it may be batched again
                    _end_piece(ctx, row.statement_id)
            else:
                counts["tracking_ignored"] += 1
        elif row.event == "forwarded":
            new_address = ADDRESS_SEPARATOR.join(row.new_address)
            if ctx.ledger.fetch_one("paper_forwarding_known", statement_id=row.statement_id,
                                    new_address=new_address):
                counts["tracking_ignored"] += 1
                continue
            ctx.ledger.execute("paper_insert_forwarding", statement_id=row.statement_id,
                               received_at=ctx.ledger.now(), new_address=new_address)
            ctx.ledger.record_event(row.statement_id, Event.FORWARDED,
                                    {"date": row.event_date.isoformat(), "new_address_to_verify": True})
            counts["forwarded"] += 1
        else:
            ctx.ledger.record_event(row.statement_id, Event.MAIL_TRACKING, detail)
            counts[row.event] += 1


def _apply_notice_tracking(ctx: Context, row: Any, counts: Counter[str]) -> None:
    """A notice's tracking line: `mailed` with the vendor's mail date as the day it left (and
    whether that is after it was due); anything else on its statement's timeline."""
    detail = {"event": row.event, "date": row.event_date.isoformat(), "imb_serial": row.imb_serial}
    if row.event == "mailed":
        moved = move_notices(ctx.ledger, [NoticeMove(row.statement_id, NoticeStatus.MAILED,
                                                     Event.NOTICE_MAILED, detail, left_on=row.event_date)])
        counts["notices_mailed" if moved else "tracking_ignored"] += 1
        return
    event = Event.NOTICE_RETURNED if row.event == "returned_to_sender" else Event.MAIL_TRACKING
    if row.event == "forwarded":  # the address is the statement's: its own verification confirms it
        detail["new_address_to_verify"] = True
    record_notice_event(ctx.ledger, row.statement_id, event, detail)
    counts[f"notices_{row.event}"] += 1


def _end_piece(ctx: Context, statement_id: str) -> None:
    piece = ctx.ledger.fetch_one("paper_live_piece", statement_id=statement_id)
    if piece is not None:
        ctx.ledger.execute("paper_end_piece", batch_name=piece["batch_name"], statement_id=statement_id)


def paper_checks_stage(ctx: Context) -> dict[str, int]:
    """Batches unacknowledged past due, statements not mailed in time: recorded, then loud."""
    now = ctx.now()
    overdue = ctx.ledger.fetch("paper_overdue_batches", now=iso(now))
    since = now - timedelta(days=ctx.settings.paper_mail_days)
    late = ctx.ledger.fetch("paper_not_mailed_since", since=iso(since))
    for row in late:
        ctx.ledger.record_event(row["statement_id"], Event.PAPER_OVERDUE,
                                {"status": row["status"], "mail_days": ctx.settings.paper_mail_days})
    result = {"batches_unacknowledged": len(overdue), "statements_escalated": len(late)}
    log.info("paper checks", extra=result)
    problems = []
    if overdue:
        names = ", ".join(r["batch_name"] for r in overdue[:10])
        problems.append(f"{len(overdue)} batch(es) delivered to the print vendor have no acknowledgement "
                        f"past their due time ({names}): ask the vendor whether they were received; "
                        f"re-drop a lost one with `eob paper redrop NAME`")
    if late:
        problems.append(f"{len(late)} statement(s) on paper were not mailed within "
                        f"{ctx.settings.paper_mail_days:g} days: see `eob paper list` and each "
                        f"statement's timeline (event paper_overdue)")
    if problems:
        raise PaperOverdue("; ".join(problems))
    return result


def cancel_batch(ctx: Context, batch_name: str, *, actor: str) -> int:
    """Cancel a batch within its window: its pieces return to the paper queue. Returns pieces."""
    batch = ctx.ledger.fetch_one("paper_batch", batch_name=batch_name)
    if batch is None or batch["state"] not in ("delivering", "delivered"):
        state = "unknown" if batch is None else batch["state"]
        raise BatchNotCancellable(f"batch {batch_name} is {state}: only a delivered, unacknowledged "
                                  f"batch can be cancelled")
    window = datetime.fromisoformat(batch["created_at"]) + timedelta(hours=ctx.settings.paper_cancel_hours)
    if ctx.now() > window:
        raise BatchNotCancellable(f"batch {batch_name} is past its cancellation window (until "
                                  f"{window.isoformat(timespec='minutes')}): ask the print vendor to "
                                  f"stop it, then record their rejection")
    pieces = [p for p in ctx.ledger.fetch("paper_batch_pieces", batch_name=batch_name) if p["live"]]
    notices = [p["statement_id"] for p in pieces if is_notice_id(p["statement_id"])]
    notice = batch_folder(ctx, batch["batch_day"]) / f"{batch_name}.cancel.json"
    notice.write_text(json.dumps({"batch": batch_name, "cancelled_by": "sender",
                                  "pieces": len(pieces)}, indent=2) + "\n", encoding="utf-8")
    with open_vendor_drop(ctx) as drop:  # the vendor is told first: no notice, no cancellation
        drop.notify(notice)
    moved = ctx.ledger.cancel_print_batch(
        batch_name, [p["statement_id"] for p in pieces],
        [Transition(p["statement_id"], Status.PAPER_QUEUED, Event.BATCH_CANCELLED,
                    {"batch": batch_name, "by": actor}) for p in pieces if p["statement_id"] not in notices],
        [NoticeMove(notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                    {"batch": batch_name, "by": actor, "reason": "batch cancelled"})
         for notice_id in notices])
    ctx.ledger.audit(actor, "paper_batch_cancelled", None, {"batch": batch_name, "pieces": moved})
    return moved


def redrop_batch(ctx: Context, batch_name: str, *, actor: str) -> list[dict[str, Any]]:
    """Deliver a recorded batch again from its files, which must be the bytes first made; only a
    batch still waiting for the vendor (a cancelled or acknowledged one would print twice)."""
    batch = ctx.ledger.fetch_one("paper_batch", batch_name=batch_name)
    if batch is None:
        raise BatchFilesChanged(f"batch {batch_name} is not in the ledger")
    if batch["state"] not in ("delivering", "delivered"):
        raise BatchNotCancellable(f"batch {batch_name} is {batch['state']}: only a batch the vendor has "
                                  "not answered may be delivered again")
    paths = recorded_files(ctx, batch)
    with open_vendor_drop(ctx) as drop:
        receipt = drop.deliver(batch_name, paths[:-1], paths[-1])
    ctx.ledger.audit(actor, "paper_batch_redropped", None, {"batch": batch_name})
    return [{"name": f.name, "bytes": f.size, "sha256": f.sha256} for f in receipt.files]
