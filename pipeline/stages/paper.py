"""Paper stage: the day's print batches, made from the paper queue and handed to the vendor.

Every statement at `paper_queued` since before the day's cut-off is a candidate. Its mailing
address (from its run's member file as it is now) must pass `prepare_address`; one that does not
goes to `paper_exception` with the reason, for support to correct, and never into a batch. Its
print variant is the one render stored; a statement that was to be emailed has none, so it is
rendered now. The pieces are batched per mail class in presort order (`pipeline.paper`), each
batch delivered to the vendor's drop, and only then recorded: the batch, its pieces and their
moves to `batched` in one transaction. A re-run of the day after a failure makes the same files
(same names, same bytes, the same barcode serials) and the drop completes what is missing.

A statement at `paper_exception` goes back to the queue by itself once its run's member file
holds an address that passes (a corrected extract); one whose letter came back (`returned_mail`)
only once that address differs from the one it was mailed to (a keyed hash on its `batched`
event), so a wrong address is never printed twice.

Prompt notices on paper (`pipeline.stages.notices`) are pieces of the same batches, under their
notice ids, with the print variant the notices stage stored; their moves are the notice's
(`pipeline.ledger.notices`), recorded with the batch. A notice whose statement a corrected
extract superseded is never taken (it is closed with the statement). A notice whose address
cannot be printed stays in the paper queue with the reason on its statement's timeline (once per
reason) and is batched as soon as the member file's address passes: support corrects the address
on the statement's own exception.

PHI: addresses live in memory and in the print files only; the ledger and the logs carry
statement ids, batch names, counts and reason codes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.clock import iso
from pipeline.ledger import NoticeMove, NoticeStatus, Transition, is_notice_id, record_notice_event
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.periods import day_for_run
from pipeline.reconcile import RETURNED_MAIL
from pipeline.stages.context import Context, NeedsOperator
from pipeline.stages.notices import separate_notices, tell_separate_notices

log = logging.getLogger(__name__)


class BatchFilesChanged(NeedsOperator):
    """A recorded batch's files are missing or differ from those first made."""


class DropRefused(NeedsOperator):
    """The vendor's drop refused a batch in a way no retry fixes (a conflicting file, an unknown
    host key, a misconfigured URL): an operator must look at the drop."""


@dataclass(slots=True)
class _Plan:
    pieces: list[Any] = field(default_factory=list)
    mailing: dict[str, Any] = field(default_factory=dict)      # statement_id → MailingAddress
    exceptions: dict[str, str] = field(default_factory=dict)   # statement_id → reason code
    rendered: int = 0


def paper_day(requested: str | None, logical_date: datetime | date | None) -> str:
    """The batch day asked for (YYYY-MM-DD), else the run's logical date, else today (UTC)."""
    return day_for_run(requested, logical_date)


def day_cutoff(ctx: Context, day: str) -> datetime:
    """The moment the day's batch closes: statements put on paper later wait for tomorrow."""
    start = datetime.fromisoformat(day).replace(tzinfo=ctx.now().tzinfo)
    return start + timedelta(hours=ctx.settings.paper_cutoff_hour)


def drop_url(ctx: Context) -> str:
    """The configured drop, or the workspace's vendor-drop/ folder (the demo's vendor)."""
    if ctx.settings.paper_drop_url:
        return ctx.settings.paper_drop_url
    folder = ctx.settings.workspace / "vendor-drop"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def open_vendor_drop(ctx: Context) -> Any:
    from pipeline.paper import open_drop

    s = ctx.settings
    return open_drop(drop_url(ctx), sftp_key_file=s.paper_sftp_key_file,
                     sftp_known_hosts=s.paper_sftp_known_hosts, s3_kms_key_id=s.paper_s3_kms_key_id,
                     s3_endpoint_url=s.reconcile_aws_endpoint_url, region=s.reconcile_aws_region)


def paper_batch_stage(ctx: Context, day: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Batch, deliver and record the day's paper statements; see the module docstring."""
    cutoff = day_cutoff(ctx, day)
    corrected = 0 if dry_run else _requeue_corrected(ctx)
    candidates = ctx.ledger.fetch("paper_candidates", cutoff=iso(cutoff))
    notices = [{**row, "statement_id": row["notice_id"]}  # a piece's id: the notice's
               for row in ctx.ledger.fetch("notice_paper_candidates", cutoff=iso(cutoff))]
    plan = _plan(ctx, candidates + notices, render=not dry_run)
    summary: dict[str, Any] = {"day": day, "candidates": len(candidates) + len(notices),
                               "notices": len(notices), "corrected": corrected,
                               "address_exceptions": len(plan.exceptions), "rendered_now": plan.rendered}
    if dry_run:
        summary |= {"dry_run": True, "pieces": len(plan.pieces)}
        log.info("paper batch plan", extra=summary)
        return summary
    _record_exceptions(ctx, plan.exceptions, {row["notice_id"]: row["last_reason"] for row in notices})
    batches, set_aside = _write_and_deliver(ctx, day, plan)
    summary |= {"batches": len(batches), "pieces": sum(b["pieces"] for b in batches),
                "sheets": sum(b["sheets"] for b in batches), "set_aside": set_aside}
    log.info("paper batches delivered", extra=summary)
    return summary


# -- the pieces --------------------------------------------------------------------------------


def _plan(ctx: Context, candidates: list[dict[str, Any]], *, render: bool) -> _Plan:
    from pipeline.paper import AddressProblem, Piece, prepare_address
    from pipeline.storage import postal_addresses

    plan = _Plan()
    addresses: dict[str, dict[str, Any]] = {}
    missing_print: list[dict[str, Any]] = []
    returned = {r["statement_id"] for r in ctx.ledger.fetch("paper_returned_statements")}
    for row in candidates:
        run_id = row["run_id"]
        if run_id not in addresses:
            addresses[run_id] = postal_addresses(ctx.settings, run_id)
        postal = addresses[run_id].get(row["member_id"])
        if postal is None:
            plan.exceptions[row["statement_id"]] = "incomplete"
            continue
        try:
            mailing = prepare_address(postal.name, postal.line1, postal.line2 or None, postal.city,
                                      postal.state, postal.postal_code)
        except AddressProblem as exc:
            plan.exceptions[row["statement_id"]] = str(exc.reason)
            continue
        if row["statement_id"] in returned and _mailed_there_before(ctx, row["statement_id"], mailing.lines):
            # a letter to this address came back: whatever path brought it here (verification
            # failed or timed out, verified too late), printing it there again would come back too
            plan.exceptions[row["statement_id"]] = RETURNED_MAIL
            continue
        if not row["print_key"] and is_notice_id(row["statement_id"]):
            plan.exceptions[row["statement_id"]] = "print_file"  # the notices stage stores one
            continue
        if not row["print_key"]:
            missing_print.append(row)
        plan.mailing[row["statement_id"]] = mailing
        plan.pieces.append(Piece(row["statement_id"], ctx.settings.paper_mail_class, mailing.lines,
                                 mailing.zip5, mailing.zip4, "", row["print_key"] or ""))
    if render and missing_print:
        keys = _render_print_variants(ctx, missing_print)
        plan.rendered = len(keys)
        plan.pieces = [_with_key(p, keys) for p in plan.pieces]
    return plan


def mailing_hash(ctx: Context, lines: tuple[str, ...]) -> str:
    """A keyed hash of the address a piece is mailed to: compared, never the address itself."""
    from pipeline.delivery import address_hash

    return address_hash("\n".join(lines), ctx.settings.verp_secret.get_secret_value())[:32]


def _mailed_there_before(ctx: Context, statement_id: str, lines: tuple[str, ...]) -> bool:
    last = ctx.ledger.fetch_one("paper_last_batched_address", statement_id=statement_id)
    return last is not None and json.loads(last["detail"]).get("address_hash") == mailing_hash(ctx, lines)


def _requeue_corrected(ctx: Context) -> int:
    """`paper_exception` statements whose member file now has a printable (and, after returned
    mail, a different) address go back to the paper queue; returns how many."""
    from pipeline.paper import AddressProblem, prepare_address
    from pipeline.storage import postal_addresses

    moves = []
    addresses: dict[str, Any] = {}
    for row in ctx.ledger.fetch("paper_exceptions"):
        if not (row["last_reason"] or "").startswith(ADDRESS_REASON):
            continue  # a print file that could not be used: for operations, not a corrected address
        if row["run_id"] not in addresses:
            addresses[row["run_id"]] = postal_addresses(ctx.settings, row["run_id"])
        postal = addresses[row["run_id"]].get(row["member_id"])
        if postal is None:
            continue
        try:
            lines = prepare_address(postal.name, postal.line1, postal.line2 or None, postal.city,
                                    postal.state, postal.postal_code).lines
        except AddressProblem:
            continue
        if (row["last_reason"] or "").endswith(RETURNED_MAIL) and \
                _mailed_there_before(ctx, row["statement_id"], lines):
            continue
        moves.append(Transition(row["statement_id"], Status.PAPER_QUEUED, Event.ADDRESS_CORRECTED, {},
                                {"last_reason": None}))
    return ctx.ledger.apply(moves) if moves else 0


def _with_key(piece: Any, keys: dict[str, str]) -> Any:
    from dataclasses import replace

    return replace(piece, print_key=keys[piece.statement_id]) if piece.statement_id in keys else piece


def _render_print_variants(ctx: Context, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Print variants for statements that were to be emailed: rendered from their run's
    composed statements, stored, and their print_key recorded."""
    from pipeline.compose import iter_composed
    from pipeline.render import render_statement
    from pipeline.storage import run_dir

    wanted: dict[tuple[str, str, int], set[str]] = {}
    for row in rows:
        wanted.setdefault((row["run_id"], row["period"], int(row["shard"])), set()).add(row["statement_id"])
    keys: dict[str, str] = {}
    for (run_id, period, shard), ids in sorted(wanted.items()):
        notices = separate_notices(ctx, run_id, shard)
        for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                      notices=ctx.notice_rule(run_id),
                                      statement_ids=ctx.statement_ids(run_id)):
            sid = composed.statement.statement_id
            if sid not in ids:
                continue
            key = f"print/{period}/{shard:03d}/{sid}.pdf"
            statement = tell_separate_notices(composed.statement, notices)
            ctx.store.put(key, render_statement(statement, variant="print").pdf, "application/pdf")
            ctx.ledger.execute("paper_set_print_key", statement_id=sid, print_key=key,
                               at=ctx.ledger.now())
            keys[sid] = key
    return keys


ADDRESS_REASON = "mailing address: "
"""How `last_reason` begins for an exception support resolves by correcting the address."""


def _record_exceptions(ctx: Context, exceptions: dict[str, str], notices: dict[str, str | None]) -> None:
    """Statements to `paper_exception`; a notice stays queued, its reason recorded once."""
    ctx.ledger.apply(
        Transition(sid, Status.PAPER_EXCEPTION, Event.ADDRESS_REFUSED, {"reason": reason},
                   {"last_reason": f"{ADDRESS_REASON}{reason}"})
        for sid, reason in sorted(exceptions.items()) if not is_notice_id(sid))
    for notice_id, reason in sorted(exceptions.items()):
        if is_notice_id(notice_id) and notices.get(notice_id) != f"{ADDRESS_REASON}{reason}":
            record_notice_event(ctx.ledger, notice_id, Event.NOTICE_ADDRESS_REFUSED, {"reason": reason},
                                last_reason=f"{ADDRESS_REASON}{reason}")


# -- the batches -------------------------------------------------------------------------------


def serial_width(ctx: Context) -> int:
    """Digits of the barcode's serial: 9 with a 6-digit Mailer ID, 6 with a 9-digit one."""
    return 6 if ctx.settings.imb_mailer_id and len(ctx.settings.imb_mailer_id) == 9 else 9


SERIAL_DAYS = 45
"""USPS: a barcode's serial is unique per Mailer ID for 45 days."""


class SerialsExhausted(NeedsOperator):
    """More pieces within 45 days than the Mailer ID's serials can number."""


def _serials(ctx: Context, pieces: int) -> Callable[[int, int], str]:
    """Each piece's barcode serial: the next after the last one issued, wrapping at the field's
    width; refused when the pieces of the last 45 days and these would need a serial twice."""
    from pipeline.paper import serial_for

    width = serial_width(ctx)
    capacity = 10**width
    since = iso(ctx.now() - timedelta(days=SERIAL_DAYS))
    recent = int(ctx.ledger.fetch_one("paper_serials_since", since=since)["n"])  # type: ignore[index]
    if recent + pieces > capacity:
        raise SerialsExhausted(
            f"{recent} pieces mailed in the last {SERIAL_DAYS} days and {pieces} to batch now need more "
            f"than the {capacity:,} barcode serials of a {'9' if width == 6 else '6'}-digit Mailer ID: "
            "batch fewer pieces per day, or ask USPS for a Mailer ID with a wider serial field")
    last = ctx.ledger.fetch_one("paper_last_serial")
    counter = iter(range(int(last["serial"]) + 1 if last else 1, 10**12))
    return lambda _batch, _sequence: serial_for(next(counter) % capacity, width)


def _write_and_deliver(ctx: Context, day: str, plan: _Plan) -> tuple[list[dict[str, Any]], int]:
    """Batches recorded but not delivered by an earlier try delivered first; then the day's
    batches written, recorded (`delivering`, their pieces `batched`), delivered and marked
    `delivered`. Returns the day's new batches and how many pieces were set aside."""
    from pipeline.paper import BatchLimits, write_batches

    s = ctx.settings
    made: list[dict[str, Any]] = []
    with open_vendor_drop(ctx) as drop:  # unreachable: nothing is written or recorded
        _deliver_pending(ctx, drop)
        if not plan.pieces:
            return [], 0
        earlier = len(ctx.ledger.fetch("paper_batches_for_day", day=day))
        run = write_batches(plan.pieces, lambda p: _print_file(ctx, p.print_key), batch_folder(ctx, day),
                            day=day, serial=_serials(ctx, len(plan.pieces)), first_number=earlier + 1,
                            limits=BatchLimits(s.paper_batch_max_pieces, s.paper_batch_max_bytes,
                                               s.paper_duplex),
                            stamp=_stamp(ctx, plan.mailing))
        ctx.ledger.apply(Transition(item.statement_id, Status.PAPER_EXCEPTION, Event.ADDRESS_REFUSED,
                                    {"reason": "print_file"}, {"last_reason": item.reason[:200]})
                         for item in run.set_aside if not is_notice_id(item.statement_id))
        for item in run.set_aside:
            if is_notice_id(item.statement_id):
                record_notice_event(ctx.ledger, item.statement_id, Event.NOTICE_ADDRESS_REFUSED,
                                    {"reason": "print_file"}, last_reason=item.reason[:200])
        for batch in run.batches:
            made.append(_record(ctx, day, batch, drop.where, plan.mailing))
        for batch in run.batches:
            _deliver(drop, batch.name, batch.files, batch.control)
            _mark_delivered(ctx, batch.name)
    return made, len(run.set_aside)


def recorded_files(ctx: Context, batch: dict[str, Any]) -> list[Path]:
    """A recorded batch's files in the workspace, checked against the hashes recorded with it
    (data files, then the control file); `BatchFilesChanged` if one is missing or different."""
    from pipeline.paper import file_entry

    folder = batch_folder(ctx, batch["batch_day"])
    paths = []
    for entry in json.loads(batch["files"]):
        path = folder / entry["name"]
        if not path.is_file() or file_entry(path)["sha256"] != entry["sha256"]:
            state = "missing" if not path.is_file() else "not the file first made"
            raise BatchFilesChanged(
                f"batch {batch['batch_name']}: {entry['name']} is {state} in {folder}: restore it from "
                f"the workspace backup; a new file would print different pieces under the same name")
        paths.append(path)
    return paths


def _deliver_pending(ctx: Context, drop: Any) -> None:
    """Batches an earlier try recorded but did not finish delivering: the same files, again."""
    for batch in ctx.ledger.fetch("paper_undelivered_batches"):
        paths = recorded_files(ctx, batch)
        _deliver(drop, batch["batch_name"], paths[:-1], paths[-1])
        _mark_delivered(ctx, batch["batch_name"])


def _mark_delivered(ctx: Context, batch_name: str) -> None:
    due = ctx.now() + timedelta(hours=ctx.settings.paper_ack_hours)
    ctx.ledger.execute("paper_mark_delivered", batch_name=batch_name, ack_due_at=iso(due))


def _print_file(ctx: Context, key: str) -> bytes:
    from pipeline.storage import ObjectStoreError

    try:
        return ctx.store.get(key)
    except ObjectStoreError as exc:
        raise KeyError(key) from exc


def _stamp(ctx: Context, mailing: dict[str, Any]) -> Callable[[Any, str], bytes]:
    """The address block (endorsement, barcode, address lines) drawn into page 1's window."""
    from pipeline.paper import ImbFields, address_block

    s = ctx.settings

    def stamp(piece: Any, serial: str) -> bytes:
        imb = None
        if s.imb_mailer_id:
            imb = ImbFields(s.imb_barcode_id, s.imb_service_type, s.imb_mailer_id, serial,
                            piece.zip5 + piece.zip4)
        return address_block(mailing[piece.statement_id], imb, endorsement=s.paper_endorsement or "")

    return stamp


def _deliver(drop: Any, name: str, files: list[Path], control: Path) -> Any:
    from pipeline.paper import DropConflict, DropMisconfigured, HostKeyUnknown

    try:
        return drop.deliver(name, files, control)
    except (DropConflict, HostKeyUnknown, DropMisconfigured) as exc:
        raise DropRefused(str(exc)) from None


def _record(ctx: Context, day: str, batch: Any, where: str, mailing: dict[str, Any]) -> dict[str, Any]:
    """The batch (`delivering`), its pieces and their moves to `batched`, in one transaction,
    before the vendor sees any of it."""
    from pipeline.paper import file_entry, manifest_pieces

    now = ctx.now()
    files = [file_entry(path) for path in [*batch.files, batch.control]]
    row = {"batch_name": batch.name, "batch_day": day, "mail_class": batch.mail_class,
           "state": "delivering", "pieces": batch.pieces, "sheets": batch.sheets, "pages": batch.pages,
           "files": json.dumps(files), "drop_where": where, "created_at": iso(now),
           "ack_due_at": iso(now + timedelta(hours=ctx.settings.paper_ack_hours))}
    pieces = [{"batch_name": batch.name, "statement_id": r["statement_id"], "sequence": int(r["sequence"]),
               "pages": int(r["pages"]), "sheets": int(r["sheets"]), "mail_class": batch.mail_class,
               "imb_serial": int(r["imb_serial"])} for r in manifest_pieces(batch.manifest)]
    details = {p["statement_id"]: {"batch": batch.name, "sequence": p["sequence"], "sheets": p["sheets"],
                                   "mail_class": batch.mail_class,
                                   "address_hash": mailing_hash(ctx, mailing[p["statement_id"]].lines)}
               for p in pieces}
    moves = [Transition(sid, Status.BATCHED, Event.BATCHED, detail)
             for sid, detail in details.items() if not is_notice_id(sid)]
    notice_moves = [NoticeMove(sid, NoticeStatus.BATCHED, Event.NOTICE_BATCHED, detail)
                    for sid, detail in details.items() if is_notice_id(sid)]
    ctx.ledger.record_print_batch(row, pieces, moves, notice_moves)
    return {"batch": batch.name, "pieces": batch.pieces, "sheets": batch.sheets}


def batch_folder(ctx: Context, day: str) -> Path:
    return ctx.settings.work_dir / "paper" / day
