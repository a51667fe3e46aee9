"""The verification queue: confirm a bad address out of band, then resend or fall back to paper.

A statement whose address is bad is never resent automatically. Outreach staff get a work
list (CSV or XLSX) with what they need to call or message the member through a verified
channel and nothing more: statement and member ids, why the address failed, a masked hint of
the address on file ("j***@g***.com", so the member can recognise it), and the date by which an
answer is needed. No name, no statement content, no full address. They fill in the outcome
columns and the file is imported back:

- `verified` with the confirmed address → the run's contact record is corrected, an earlier
  suppression of that address is lifted with the verification as its reason, and the statement
  is resent to it by the next reconcile cycle (only once the address the sender will read is the
  verified one, and only before the run's send cut-off);
- `failed` → paper.

Not answered within `verification_days` (or by the send cut-off) → paper, by the sweeper.
Every step is an event on the statement's timeline and an entry in the audit log.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pipeline.clock import Now
from pipeline.delivery.pools import capacities, choose_pool, send_config
from pipeline.delivery.suppression import address_hash
from pipeline.ledger import Ledger, Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes.routing import DeliveryWindow, to_paper
from pipeline.settings import Settings
from pipeline.storage import member_contacts, run_dir

log = logging.getLogger(__name__)


class Context(Protocol):
    """What verification needs from its caller: the settings, the ledger and the wall clock
    (the stages' context provides them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def now(self) -> Now: ...

COLUMNS = ("statement_id", "member_id", "period", "requested_on", "respond_by", "reason",
           "contact_hint", "outcome", "verified_email", "channel", "verified_by")
"""The first seven are filled by the export; staff fill the last four."""
OUTCOMES = ("verified", "failed")
CHANNELS = ("phone", "secure_sms", "member_portal", "mail", "in_person")
REASONS = {
    "user_unknown": "mailbox does not exist",
    "domain_unknown": "email domain does not exist",
    "mailbox_disabled": "mailbox disabled or closed",
    "recipient_refused": "the mailbox's own filter refuses our mail",
    "relay_denied": "the email domain's server does not take mail for it",
    "unknown": "address refused, reason unclear",
}
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


class VerificationError(ValueError):
    """A work list or outcome file that cannot be used; the message says which row or why."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    statement_id: str
    member_id: str
    period: str
    requested_on: str
    respond_by: str
    reason: str
    contact_hint: str


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    row: int
    statement_id: str
    outcome: str
    verified_email: str
    channel: str
    verified_by: str


@dataclass(slots=True)
class ImportResult:
    verified: int = 0
    failed: int = 0
    unchanged: int = 0  # already recorded (a re-import) or left blank
    problems: list[tuple[int, str]] = field(default_factory=list)


def valid_address(address: str) -> bool:
    """An address staff may enter as confirmed: one mailbox, nothing around it."""
    return _EMAIL.fullmatch(address) is not None


def mask_address(address: str | None, domain: str | None = None) -> str:
    """'jordan.alvarez@gmail.com' → 'j***@g***.com': enough to recognise, not to use."""
    local, _, host = (address or "").strip().lower().rpartition("@")
    host = host or (domain or "").lower()
    if not host:
        return ""
    label, _, tld = host.rpartition(".")
    masked_host = f"{label[:1]}***.{tld}" if label else f"{tld[:1]}***"
    return f"{local[:1]}***@{masked_host}" if local else f"***@{masked_host}"


# ------------------------------------------------------------------------------------ export


def pending_items(rows: Iterable[dict[str, Any]], window: DeliveryWindow,
                  contact: Callable[[str, str], str | None]) -> list[WorkItem]:
    """Work-list rows for `verify_pending` ledger rows; `contact(run_id, member_id)` → address."""
    items = []
    for row in rows:
        requested = datetime.fromisoformat(row["requested_at"])
        cutoff = window.cutoff(row["run_started_at"])
        due = min(requested + window.verification, cutoff)
        items.append(WorkItem(
            statement_id=row["statement_id"], member_id=row["member_id"], period=row["period"],
            requested_on=requested.date().isoformat(), respond_by=due.date().isoformat(),
            reason=REASONS.get(row["bounce_category"] or "", REASONS["unknown"]),
            contact_hint=mask_address(contact(row["run_id"], row["member_id"]), row["email_domain"])))
    return items


def write_worklist(items: list[WorkItem], path: Path) -> Path:
    """CSV or XLSX by the file's suffix; the outcome columns are left for staff."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = [[getattr(i, c) for c in COLUMNS[:7]] + ["", "", "", ""] for i in items]
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(values, path)
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(values)
    else:
        raise VerificationError("the work list must be a .csv or .xlsx file")
    return path


def _write_xlsx(values: list[list[str]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = "verification"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in values:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    last = max(len(values) + 1, 2)
    for column, allowed in (("H", OUTCOMES), ("J", CHANNELS)):
        check = DataValidation(type="list", formula1='"' + ",".join(allowed) + '"', allow_blank=True)
        check.add(f"{column}2:{column}{last}")
        sheet.add_data_validation(check)
    for index, name in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[chr(64 + index)].width = max(14, len(name) + 4)
    book.save(path)


def export_worklist(ctx: Context, path: Path, *, actor: str) -> int:
    """Write the current verification work list; audited, and noted on each timeline."""
    window = DeliveryWindow.from_settings(ctx.settings)
    cache: dict[str, dict[str, tuple[str, str]]] = {}

    def contact(run_id: str, member_id: str) -> str | None:
        if run_id not in cache:
            try:
                cache[run_id] = member_contacts(ctx.settings, run_id)
            except FileNotFoundError:
                cache[run_id] = {}
        found = cache[run_id].get(member_id)
        return found[0] if found else None

    items = pending_items(ctx.ledger.fetch("verify_pending"), window, contact)
    write_worklist(items, path)
    ctx.ledger.audit(actor, "verification_export", None, {"rows": len(items), "file": path.name})
    for item in items:
        ctx.ledger.record_event(item.statement_id, Event.VERIFICATION_LISTED,
                                {"actor": actor, "file": path.name})
    return len(items)


# ------------------------------------------------------------------------------------ import


def read_outcomes(path: Path) -> list[OutcomeRow]:
    """Rows of a filled-in work list (CSV or XLSX); row numbers as a spreadsheet shows them."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    elif path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    else:
        raise VerificationError("the outcome file must be a .csv or .xlsx file")
    if not rows:
        raise VerificationError("the outcome file is empty")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("statement_id", "outcome", "verified_email", "channel", "verified_by")
               if c not in header]
    if missing:
        raise VerificationError(f"the outcome file lacks the columns {missing}")
    at = {name: header.index(name) for name in header}

    def cell(values: list[str], name: str) -> str:
        index = at[name]
        return values[index].strip() if index < len(values) else ""

    return [OutcomeRow(number, cell(r, "statement_id"), cell(r, "outcome").lower(),
                       cell(r, "verified_email"), cell(r, "channel").lower(), cell(r, "verified_by"))
            for number, r in enumerate(rows[1:], start=2) if any(v.strip() for v in r)]


def check_row(row: OutcomeRow) -> str | None:
    """Why a row cannot be imported, or None. Never echoes the address it refuses."""
    if row.outcome not in OUTCOMES:
        return f"outcome must be one of {', '.join(OUTCOMES)}"
    if row.channel not in CHANNELS:
        return f"channel must be one of {', '.join(CHANNELS)}"
    if not row.verified_by:
        return "verified_by is required"
    if row.outcome == "verified" and not valid_address(row.verified_email):
        return "verified_email is not a valid address"
    return None


def import_outcomes(ctx: Context, path: Path, *, actor: str) -> ImportResult:
    """Apply a filled-in work list. One bad row never stops the others (partial success)."""
    from pipeline.delivery.suppression import SuppressionError, is_suppressed, lift

    secret = ctx.settings.verp_secret.get_secret_value()
    result = ImportResult()
    for row in read_outcomes(path):
        if not row.outcome:
            result.unchanged += 1
            continue
        problem = check_row(row)
        statement = ctx.ledger.statement(row.statement_id) if not problem else None
        if not problem and statement is None:
            problem = "no such statement"
        if problem:
            result.problems.append((row.row, problem))
            continue
        assert statement is not None
        if statement["status"] != Status.VERIFICATION_PENDING.value:
            result.unchanged += 1
            continue
        who = {"channel": row.channel, "verified_by": row.verified_by, "actor": actor}
        if row.outcome == "failed":
            ctx.ledger.apply([
                Transition(row.statement_id, Status.VERIFICATION_FAILED, Event.VERIFICATION_FAILED, who),
                to_paper(row.statement_id, "verification_failed")])
            result.failed += 1
            continue
        digest = address_hash(row.verified_email, secret)
        try:
            correct_contact(ctx, statement["run_id"], statement["member_id"], row.verified_email)
        except VerificationError as exc:
            result.problems.append((row.row, str(exc)))
            continue
        if is_suppressed(ctx.ledger, row.verified_email, secret):
            with contextlib.suppress(SuppressionError):  # lifted meanwhile by someone else
                lift(ctx.ledger, address=row.verified_email, secret=secret, actor=actor,
                     reason=f"address confirmed by the member via {row.channel} ({row.verified_by})")
        ctx.ledger.apply([Transition(row.statement_id, Status.VERIFIED, Event.ADDRESS_VERIFIED,
                                     {**who, "address_hash": digest[:16]})])
        result.verified += 1
    ctx.ledger.audit(actor, "verification_import", None,
                     {"file": path.name, "verified": result.verified, "failed": result.failed,
                      "problems": len(result.problems)})
    return result


def correct_contact(ctx: Context, run_id: str, member_id: str, address: str) -> None:
    """Write the confirmed address into the run's member contact file (atomic replace).

    The sender reads each member's address from this file, so the resend goes to the
    confirmed address with no second copy of contact data anywhere; the ledger keeps only the
    address's keyed hash on the timeline. Read, change and replace happen under an exclusive
    lock on a sibling `.members.parquet.lock`, so two corrections of one run at the same time (an
    outreach import and a desk approval, two approvals) both land: neither writes back a copy
    read before the other's replace. The file keeps its row groups (one per bucket, which
    compose reads one at a time).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = run_dir(ctx.settings, run_id) / "members.parquet"
    if not path.is_file():
        raise VerificationError(f"the member contact file of run {run_id} is missing")
    with _locked(path.with_name(f".{path.name}.lock")):
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
        groups = [source.read_row_group(index) for index in range(source.metadata.num_row_groups)]
        source.close()
        key = pa.scalar(member_id, schema.field("member_id").type)
        masks = [pc.equal(group["member_id"], key) for group in groups]
        if not any(pc.any(mask).as_py() for mask in masks):
            raise VerificationError("the member is not in the run's contact file")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".members-", suffix=".parquet")
        os.close(fd)
        try:
            with pq.ParquetWriter(tmp, schema) as writer:
                for group, mask in zip(groups, masks, strict=True):
                    for name, value in (("email", address), ("email_valid", True)):
                        if name in group.column_names:
                            index = schema.get_field_index(name)
                            column = pc.if_else(mask, pa.scalar(value, schema.field(name).type), group[name])
                            group = group.set_column(index, schema.field(name), column)
                    writer.write_table(group, row_group_size=max(group.num_rows, 1))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `lock_path`, held for the block; it is released when
    the file is closed, also when the process dies."""
    import fcntl

    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------ resend


def resend_verified(ctx: Context) -> dict[str, int]:
    """Queue verified statements for sending, once it is safe.

    Safe means: before the run's send cut-off (else paper), on a pool not on hold, and the
    address the sender will read for the member is the one staff verified (its keyed hash
    matches the `address_verified` event). Otherwise the statement waits in `verified`.
    """
    from pipeline.delivery.pool_health import HoldPolicy, current_holds

    settings = ctx.settings
    now = ctx.now()
    rows = ctx.ledger.fetch("reconcile_verified")
    if not rows:
        return {"resend_queued": 0, "resend_waiting": 0, "resend_paper": 0}
    window = DeliveryWindow.from_settings(settings)
    held = set(current_holds(ctx.ledger, now, HoldPolicy.from_settings(settings)))
    pools = capacities(send_config(settings))
    secret = settings.verp_secret.get_secret_value()
    contacts: dict[str, dict[str, tuple[str, str]]] = {}
    moves: list[Transition] = []
    counts = {"resend_queued": 0, "resend_waiting": 0, "resend_paper": 0}
    for row in rows:
        sid = row["statement_id"]
        if now >= window.cutoff(row["run_started_at"]):
            moves.append(to_paper(sid, "verified_after_cutoff"))
            counts["resend_paper"] += 1
            continue
        event = ctx.ledger.fetch_one("reconcile_last_event", statement_id=sid,
                                     event=Event.ADDRESS_VERIFIED.value)
        verified_hash = _detail(event).get("address_hash") if event else None
        if row["run_id"] not in contacts:
            contacts[row["run_id"]] = member_contacts(settings, row["run_id"])
        current = contacts[row["run_id"]].get(row["member_id"], ("", ""))[0]
        pool = choose_pool(sid, row["pool"], pools, held, avoid_current=False)
        if not verified_hash or address_hash(current or "", secret)[:16] != verified_hash or pool is None:
            counts["resend_waiting"] += 1
            continue
        moves.append(Transition(sid, Status.QUEUED, Event.RESEND_QUEUED, {"pool": pool}, {"pool": pool}))
        counts["resend_queued"] += 1
    ctx.ledger.apply(moves)
    if counts["resend_waiting"]:
        log.warning("%d verified statements wait: contact not yet the verified one, or pools held",
                    counts["resend_waiting"])
    return counts


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(event.get("detail") or "{}")
