"""Notices stage: every prompt notice still due, drawn, protected and delivered (`eob_notices`).

Compose lists the denied or reduced claims whose monthly statement leaves after the claim's
notice is due (ERISA, 29 CFR 2560.503-1: 30 days after a post-service claim is received); the
ledger gives each its notice (`pipeline.ledger.notices`). For a day, this stage takes every notice
still `due`, whenever it was flagged:

1. The claim's notice is drawn from the member's statement as render draws it (`iter_composed`
   on the run's canonical files, only the shards with a notice due; `render_notice`): the print
   variant is stored for paper, and for email a copy encrypted AES-256 (R6) with the member's
   password under the statement's policy (`EOB_PASSWORD_POLICY`).
2. A member whose member file allows email (consent, an address, a valid one), at an address not
   on the suppression list, is emailed through the statement's IP pool (or one picked as routing
   picks it) by the statements' sender machinery (`stages.notice_email`). Everyone else goes to
   the paper queue that `eob_paper` batches with the statements, printed and mailed by the
   vendor.
3. An email that does not reach a relay's 250 now goes to paper at once: the notice is already
   at or past its deadline, and a retry could only make it later (`stages.notice_email`).

Each move is recorded with the day the notice leaves (email: the day a relay accepted it; paper:
`MailCalendar.leaves` from now, replaced by the vendor's mail date when it is mailed) and whether
that is after its due date, with an event on the statement's timeline. A notice that has not left
(due, or queued for paper) whose statement a corrected extract superseded is closed as
`superseded` (compose closes them with the statement; the stage sweeps what is left). So is a due
notice whose statement is no longer its member's version, though it went out first (a later
version replaced it, or a corrected extract withdrew it after release): it cannot be drawn any
more, and the claim is the new version's to notice. A notice that cannot be drawn for any other
reason stays `due` with its reason, the rest go out, and the stage then fails for an operator
(`NoticesNotDrawn`).

Idempotent: only `due` notices are taken, and a notice leaves `due` the moment a relay accepts it
or it is queued for paper, so a re-run sends nothing twice. One notices run at a time (a lease).
A crash between a relay's 250 and its commit may email that notice again: it is still `due` with
an attempt counted, and the next run reports it as in doubt.

PHI: the password lives only between derivation and encryption; the ledger, the events, the logs
and the counts returned carry notice, statement and claim ids only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pipeline.delivery import RelayCredentials
from pipeline.ledger import (
    Event,
    NoticeMove,
    NoticeStatus,
    Status,
    close_superseded,
    make_notice_id,
    move_notices,
)
from pipeline.ledger import record_notice_event as record_event
from pipeline.ledger.notices import superseded_detail
from pipeline.model import SeparateNotice, Statement
from pipeline.stages import withdrawals
from pipeline.stages.context import Context, IngestNotSucceeded, NeedsOperator, check_ingested, run_dir
from pipeline.stages.notice_email import NoticeEmail, send_notice_emails

if TYPE_CHECKING:
    from pipeline.delivery.lease import PoolLease

log = logging.getLogger(__name__)

NOTICE_LEASE = "prompt-notices*"
"""The send lease (`send_leases`) one notices run holds: not a pool's name, so the statements'
senders of every pool run beside it."""


class NoticesNotDrawn(NeedsOperator):
    """Notices that could not be drawn (the run's canonical files changed or failed, a template
    error): they stay due; the others were delivered."""


@dataclass(slots=True)
class _Due:
    notice_id: str
    statement_id: str
    claim_id: str
    notice_due: date
    attempts: int
    run_id: str
    period: str
    shard: int
    member_id: str
    statement_status: str
    statement_pool: str | None
    later_version: str | None = None  # the statement's later version (same recipient and period)
    withdrawn: bool = False  # a corrected extract withdrew its statement after release
    channel: str = "paper"
    reason: str = ""
    pool: str | None = None
    email: str = ""
    language: str = "en"
    print_key: str = ""
    object_key: str = ""


def notices_stage(ctx: Context, day: str, *, dry_run: bool = False,
                  credentials: Callable[[str], RelayCredentials | None] | None = None) -> dict[str, Any]:
    """Deliver every notice still due (see the module docstring); returns counts, no PHI.

    `day` (YYYY-MM-DD) is the day the run is for, as the DAG's logical date gives it; notices
    flagged on earlier days that are still due are taken too. `credentials(pool)`: a pool's
    relay login when the DAG resolved its Airflow connection, else the process environment's.
    With `dry_run`, the plan (how many by email, how many on paper) and nothing changed."""
    from pipeline.delivery.lease import PoolBusy, PoolLease

    if dry_run:
        summary = _plan(ctx, day, assign=False)[0]
        log.info("notices plan", extra=summary)
        return {**summary, "dry_run": True}
    lease = PoolLease(ctx.ledger, NOTICE_LEASE, ttl=ctx.settings.send_lease_seconds, now=ctx.now)
    try:
        lease.take()  # before reading what is due: another run may have just sent it
    except PoolBusy as exc:
        log.info("another notices run is working; nothing to do here")
        return {"day": day, "busy": exc.holder}
    with lease:
        swept = close_superseded(ctx.ledger, key=ctx.settings.statement_id_key.get_secret_value().encode())
        summary, closed, live = _plan(ctx, day, assign=True)
        summary["superseded"] += swept
        if summary["in_doubt"]:
            log.warning("%d notices were being sent when an earlier run stopped; sending them again "
                        "(at most one duplicate each)", summary["in_doubt"])
        move_notices(ctx.ledger, (NoticeMove(n.notice_id, NoticeStatus.SUPERSEDED, Event.NOTICE_SUPERSEDED,
                                             superseded_detail(n.later_version)) for n in closed))
        failed = _draw(ctx, live)
        result = {**summary, **_deliver(ctx, [n for n in live if n.notice_id not in failed],
                                        credentials, lease), "not_drawn": len(failed)}
    log.info("notices delivered", extra=result)
    if failed:
        raise NoticesNotDrawn(
            f"{len(failed)} prompt notice(s) could not be drawn and stay due "
            f"({', '.join(sorted(failed)[:10])}): {'; '.join(sorted(set(failed.values())))}. The other "
            f"{len(live) - len(failed)} were delivered; fix the cause, then run eob_notices again")
    return result


def _plan(ctx: Context, day: str, *, assign: bool) -> tuple[dict[str, Any], list[_Due], list[_Due]]:
    """The notices due, split into those to close (`_replaced`) and the rest, each of these with
    its channel; and the counts of the plan."""
    due = _due_notices(ctx, assign=assign)
    closed = [n for n in due if _replaced(n)]
    live = [n for n in due if not _replaced(n)]
    _choose_channels(ctx, live)
    summary: dict[str, Any] = {
        "day": day, "due": len(due), "superseded": len(closed),
        "planned_email": sum(n.channel == "email" for n in live),
        "planned_paper": sum(n.channel == "paper" for n in live),
        "in_doubt": sum(n.attempts > 0 for n in live)}
    return summary, closed, live


def _replaced(notice: _Due) -> bool:
    """Is the notice's statement no longer its member's version for the period? Superseded (a
    corrected extract closed it before it went out), replaced by a later version, or withdrawn
    after release: what render would draw (`iter_composed`) does not hold it any more, and the
    claim is the later version's to notice (or withdrawn with its statement)."""
    return (notice.statement_status == Status.SUPERSEDED or notice.later_version is not None
            or notice.withdrawn)


def _due_notices(ctx: Context, *, assign: bool) -> list[_Due]:
    """The notices still due, each with its id (compose's rows get theirs here, once)."""
    key = ctx.settings.statement_id_key.get_secret_value().encode()
    rows = ctx.ledger.fetch("notices_due")
    withdrawn = withdrawals.flagged_after_release(ctx.ledger) if rows else set()
    found = []
    for row in rows:
        notice_id = row["notice_id"] or make_notice_id(row["statement_id"], row["claim_id"], key=key)
        if row["notice_id"] is None and assign:
            ctx.ledger.execute("notice_assign_id", notice_id=notice_id, statement_id=row["statement_id"],
                               claim_id=row["claim_id"])
        found.append(_Due(notice_id, row["statement_id"], row["claim_id"],
                          date.fromisoformat(str(row["notice_due"])[:10]), int(row["attempts"] or 0),
                          row["run_id"], row["period"], int(row["shard"]), row["member_id"],
                          row["statement_status"], row["statement_pool"], row["later_version"],
                          row["statement_id"] in withdrawn))
    return found


def _choose_channels(ctx: Context, notices: Sequence[_Due]) -> None:
    """Email where the member file allows it now (consent, an address, a valid one) at an address
    not suppressed and a pool is open; paper otherwise, with the reason."""
    from pipeline.delivery import pick_pool, route_weights, send_config
    from pipeline.stages.ingest import suppression_check
    from pipeline.storage import send_contacts

    settings = ctx.settings
    suppressed = suppression_check(ctx) or (lambda _address: False)  # one query for every notice
    pools = [(name, weight) for name, weight in
             route_weights(ctx.ledger, send_config(settings), ctx.now()) if weight > 0]
    open_pools = {name for name, _ in pools}
    contacts: dict[str, Any] = {}
    for notice in sorted(notices, key=lambda n: n.run_id):
        if notice.run_id not in contacts:
            contacts = {notice.run_id: send_contacts(settings, notice.run_id)}
        contact = contacts[notice.run_id].get(notice.member_id)
        reason = "not_in_member_file" if contact is None else contact.paper_reason()
        if contact is not None and reason is None and suppressed(contact.email):
            reason = "suppressed"
        if reason is None and not pools:
            reason = "no_pool_open"
        if contact is None or reason is not None:
            notice.channel, notice.reason = "paper", reason or "not_in_member_file"
            continue
        notice.channel, notice.email, notice.language = "email", contact.email, contact.language
        notice.pool = notice.statement_pool if notice.statement_pool in open_pools else \
            pick_pool(notice.notice_id, pools)


def _draw(ctx: Context, notices: Sequence[_Due]) -> dict[str, str]:
    """Draw and store each notice from its statement, shard by shard; returns the notices that
    could not be drawn, with the reason (recorded on their timeline; they stay due)."""
    from pipeline.compose import StaleComposition, iter_composed

    groups: dict[tuple[str, str, int], dict[str, list[_Due]]] = {}
    for notice in notices:
        group = groups.setdefault((notice.run_id, notice.period, notice.shard), {})
        group.setdefault(notice.statement_id, []).append(notice)
    failed: dict[str, str] = {}
    for (run_id, period, shard), wanted in sorted(groups.items()):
        left = dict(wanted)
        try:
            check_ingested(ctx.ledger, run_id, period, "the notices stage")
            for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                          notices=ctx.notice_rule(run_id),
                                          statement_ids=ctx.statement_ids(run_id)):
                for notice in left.pop(composed.statement.statement_id, []):
                    why = _draw_one(ctx, composed.statement, notice)
                    if why:
                        failed[notice.notice_id] = why
                if not left:
                    break
        except (IngestNotSucceeded, StaleComposition) as exc:
            why = f"{type(exc).__name__}: the run's canonical files are not the ones compose used"
            log.warning("%s: notices of %s shard %d not drawn", type(exc).__name__, run_id, shard)
        else:
            why = "its statement is not in the run's canonical files (compose again)"
        failed |= {n.notice_id: why for group in left.values() for n in group}
    for notice in notices:
        if notice.notice_id in failed:
            record_event(ctx.ledger, notice.notice_id, Event.NOTICE_RENDER_FAILED,
                         {"reason": failed[notice.notice_id]}, last_reason=failed[notice.notice_id][:200])
    drawn = [n.notice_id for n in notices if n.notice_id not in failed]
    if drawn:  # the member's data was read and rendered: on the audit trail
        ctx.ledger.audit("pipeline", "notice_render", None, {"notice_ids": drawn})
    return failed


def _draw_one(ctx: Context, statement: Statement, notice: _Due) -> str | None:
    """The print variant stored, and for email the encrypted copy; None when drawn, else why not.
    A copy that cannot be encrypted (the password policy cannot form a password) sends the
    notice on paper instead."""
    from pipeline.render import (
        EncryptionError,
        PasswordPolicyError,
        RenderError,
        encrypt_pdf,
        member_password,
        render_notice,
    )
    from pipeline.templates import TemplateError

    folder = f"{notice.period}/{notice.shard:03d}/{notice.notice_id}.pdf"
    try:
        printed = render_notice(statement, notice.claim_id, variant="print")
        emailed = render_notice(statement, notice.claim_id, variant="email") if notice.channel == "email" \
            else None
    except (RenderError, TemplateError) as exc:  # messages name ids and template keys only
        return f"{type(exc).__name__}: {exc}"[:200]
    notice.print_key = f"print/{folder}"
    ctx.store.put(notice.print_key, printed.pdf, "application/pdf")
    if emailed is None:
        return None
    try:
        data = encrypt_pdf(emailed, owner_password=ctx.settings.pdf_owner_password.get_secret_value(),
                           user_password=member_password(statement.member, ctx.settings.password_policy))
    except (PasswordPolicyError, EncryptionError) as exc:
        notice.channel, notice.reason = "paper", f"no encrypted copy ({type(exc).__name__})"
        return None
    notice.object_key = f"notices/{folder}"
    ctx.store.put(notice.object_key, data, "application/pdf")
    return None


def _deliver(ctx: Context, notices: Sequence[_Due],
             credentials: Callable[[str], RelayCredentials | None] | None,
             lease: PoolLease) -> dict[str, Any]:
    """Paper first (one transaction), then each pool's emails; every notice ends sent or on paper.
    The lease is checked before each pool (`LeaseLost`: another run may now hold it; the notices
    of the pools not started stay due for it) and after the last, as the statements' sender does."""
    counts = {"sent": 0, "paper": 0, "email_failed_to_paper": 0, "late": 0}
    by_id = {n.notice_id: n for n in notices}

    def count(moved: int, notice: _Due, left_on: date, what: str) -> None:
        counts[what] += moved
        counts["late"] += moved * int(left_on > notice.notice_due)

    paper = [n for n in notices if n.channel == "paper"]
    leaves = ctx.mail_calendar.leaves("paper", ctx.now())
    if move_notices(ctx.ledger, (_to_paper(n, n.reason, leaves) for n in paper)):
        for notice in paper:  # each was due, under this run's lease: each moved
            count(1, notice, leaves, "paper")
    emails: dict[str, list[NoticeEmail]] = {}
    for n in notices:
        if n.channel == "email":
            emails.setdefault(str(n.pool), []).append(
                NoticeEmail(n.notice_id, n.statement_id, n.period, n.email, n.language, n.object_key))

    def accepted(item: NoticeEmail, detail: dict[str, Any]) -> None:
        notice, day = by_id[item.notice_id], ctx.mail_calendar.leaves("email", ctx.now())
        moved = move_notices(ctx.ledger, [NoticeMove(
            item.notice_id, NoticeStatus.SENT, Event.NOTICE_SENT, detail, left_on=day,
            pool=detail["pool"], object_key=notice.object_key, print_key=notice.print_key)])
        count(moved, notice, day, "sent")

    def failed(item: NoticeEmail, reason: str) -> None:
        notice, day = by_id[item.notice_id], ctx.mail_calendar.leaves("paper", ctx.now())
        moved = move_notices(ctx.ledger, [_to_paper(notice, reason, day)])
        count(moved, notice, day, "paper")
        counts["email_failed_to_paper"] += moved

    pools: list[dict[str, Any]] = []
    handed: list[str] = []  # the notices handed to a pool
    try:
        for pool_name, items in sorted(emails.items()):
            lease.check()
            login = credentials(pool_name) if credentials is not None else None
            handed += [item.notice_id for item in items]
            pools.append(send_notice_emails(ctx, pool_name, items, credentials=login,
                                            on_accepted=accepted, on_failed=failed))
        lease.check()
    finally:
        if handed:
            ctx.ledger.audit("pipeline", "notice_send", None, {"notice_ids": handed})
    return {**counts, "pools": pools}


def _to_paper(notice: _Due, reason: str, leaves: date) -> NoticeMove:
    return NoticeMove(notice.notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
                      {"reason": reason, "leaves": leaves.isoformat()}, left_on=leaves,
                      print_key=notice.print_key or None, object_key=notice.object_key or None,
                      last_reason=f"paper: {reason}"[:200])


# -- what the statement says ------------------------------------------------------------------


def separate_notices(ctx: Context, run_id: str, shard: int) -> dict[str, list[SeparateNotice]]:
    """statement_id → the notices sent (or being sent) about its claims, with the day each leaves:
    the day it left or is planned to (paper), else the day compose recorded for the statement's
    channel (the run's `NoticeRule`: a notice due goes out with the statement's processing). A
    new version also tells the notices an earlier version's claims got before it was made (compose
    does not notice those claims again)."""
    found: dict[str, list[SeparateNotice]] = {}
    told: set[tuple[str, str]] = set()
    for row in ctx.ledger.fetch("notices_in_shard", run_id=run_id, shard=shard):
        if (row["statement_id"], row["claim_id"]) in told:
            continue  # an earlier version's notice of a claim the statement has its own notice of
        told.add((row["statement_id"], row["claim_id"]))
        day = row["left_on"] or row["statement_leaves"]
        leaves = date.fromisoformat(str(day)[:10]) if day else \
            ctx.notice_rule(run_id).departs[row["channel"]]
        found.setdefault(row["statement_id"], []).append(SeparateNotice(row["claim_id"], leaves))
    return found


def tell_separate_notices(statement: Statement, notices: dict[str, list[SeparateNotice]]) -> Statement:
    """The statement with the notices of `separate_notices` about claims it lists (in place)."""
    claims = {line.claim_id for line in statement.lines}
    statement.separate_notices = [n for n in notices.get(statement.statement_id, []) if n.claim_id in claims]
    return statement


# -- a notice's email bounced later -----------------------------------------------------------


def notice_bounced(ctx: Context, notice_id: str, recipients: Iterable[Any], *, signed: bool,
                   feed: str) -> str:
    """A report about a notice's email (reconcile): a failure sends a `sent` notice to paper (the
    bounce arrives after the notice was counted out); a recipient-caused one also suppresses the
    address. Returns the outcome reconcile records."""
    from pipeline.delivery.suppression import suppress
    from pipeline.outcomes import Category, Queue, deciding_outcome

    current = ctx.ledger.fetch_one("notice_current", notice_id=notice_id)
    if current is None:
        return "unknown_notice"
    worst = deciding_outcome(list(recipients), None)
    if worst is None:
        return "ignored_empty"
    c = worst.classification
    secret = ctx.settings.verp_secret.get_secret_value()
    if c.category is Category.COMPLAINT and signed and worst.recipient:
        suppress(ctx.ledger, worst.recipient, cause="complaint", statement_id=current["statement_id"],
                 secret=secret)
    if c.category in (Category.DELIVERED, Category.COMPLAINT) or c.queue is Queue.IGNORE \
            or worst.action == "delayed":
        return f"notice_{c.category.value}" if c.queue is not Queue.IGNORE else f"ignored_{c.category.value}"
    leaves = ctx.mail_calendar.leaves("paper", ctx.now())
    reason = f"email bounced: {c.category.value}"
    moved = move_notices(ctx.ledger, [NoticeMove(
        notice_id, NoticeStatus.PAPER_QUEUED, Event.NOTICE_PAPER_QUEUED,
        {"reason": reason, "leaves": leaves.isoformat(), "feed": feed},
        left_on=leaves, last_reason=f"paper: {reason}")])
    if moved and c.recipient_caused and signed and worst.recipient:
        suppress(ctx.ledger, worst.recipient, cause=c.category.value, statement_id=current["statement_id"],
                 secret=secret)
    return "notice_to_paper" if moved else "already_routed"
