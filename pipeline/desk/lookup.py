"""One statement as support sees it: `statement_view`, the one function behind `eob lookup` and
the desk's statement page, so the terminal and the browser can never tell two stories.

It reads the ledger only (two indexed queries: the statement with its run, suppression and any
address change awaiting a supervisor; then its timeline), never the member file or the PDF, and
shows the minimum necessary: status, channel, dates, a masked email and masked ids. Where the
statement waits (its queue), what happens next and by when are derived from the same rules the
reconcile sweeper and the paper run apply (`pipeline.reconcile.sweeper`, `DeliveryWindow`), so
what the agent reads is what the pipeline will do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.clock import moment
from pipeline.desk.changes import PendingChange, pending_change_of
from pipeline.desk.context import DeskContext
from pipeline.desk.timeline import TimelineEntry, entries, status_label
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes.routing import DeliveryWindow
from pipeline.recipients import mask_member_id, patient_key, subscriber_id
from pipeline.settings import Settings

__all__ = ["DeskContext", "Due", "StatementView", "TimelineEntry", "email_hint", "member_masked",
           "next_due", "recipient_words", "statement_view"]

SUBSCRIBER = "subscriber"
PATIENTS_OWN = "patient's own statement"


@dataclass(frozen=True, slots=True)
class StatementView:
    """What the desk shows of one statement. `member_id` is for the desk's own joins (a member
    contact, the audit log) and is never shown: pages show `member_masked`."""

    statement_id: str
    period: str
    version: int
    recipient: str  # SUBSCRIBER or PATIENTS_OWN
    member_masked: str
    status: str
    status_label: str
    channel: str
    queue: str | None  # "retry" | "verification" | "paper" | "approval" | None
    next_action: str | None
    next_action_at: datetime | None
    delivery_deadline: datetime | None
    email_masked: str | None
    pool: str | None
    attempts: int
    created_at: str
    updated_at: str
    suppressed: bool
    pending_change: PendingChange | None
    entries: tuple[TimelineEntry, ...]
    member_id: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Due:
    """Where a statement waits and what happens to it next, by when (None: nothing is due)."""

    queue: str | None = None
    action: str | None = None
    at: datetime | None = None


def statement_view(ctx: DeskContext, statement_id: str) -> StatementView | None:
    """The statement with its whole timeline, or None when the ledger has no such statement."""
    row = ctx.ledger.fetch_one("desk_statement", statement_id=statement_id.strip())
    if row is None:
        return None
    timeline = ctx.ledger.timeline(row["statement_id"])
    pending = pending_change_of(row)
    due = next_due(row, timeline, ctx.settings, ctx.now(), pending=pending is not None)
    window = DeliveryWindow.from_settings(ctx.settings)
    return StatementView(
        statement_id=row["statement_id"], period=row["period"], version=int(row["version"]),
        recipient=recipient_words(row["member_id"]), member_masked=member_masked(row["member_id"]),
        status=row["status"], status_label=status_label(row["status"]), channel=row["channel"],
        queue=due.queue, next_action=due.action, next_action_at=due.at,
        delivery_deadline=window.deadline(row["run_started_at"]),
        email_masked=email_hint(row["email_domain"]), pool=row["pool"], attempts=int(row["attempts"] or 0),
        created_at=str(row["created_at"]), updated_at=str(row["updated_at"]),
        suppressed=bool(row["suppressed"]), pending_change=pending, entries=entries(timeline),
        member_id=row["member_id"])


def recipient_words(member_id: str) -> str:
    return SUBSCRIBER if patient_key(member_id) is None else PATIENTS_OWN


def member_masked(member_id: str) -> str:
    """The subscriber's card number, masked (a patient's own statement shows the card's too)."""
    return mask_member_id(subscriber_id(member_id))


def email_hint(domain: str | None) -> str | None:
    """'***@g***.com': the ledger keeps the domain only, never the address."""
    if not domain:
        return None
    from pipeline.reconcile.verification import mask_address

    return mask_address(None, domain)


def next_due(statement: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]], settings: Settings,
             now: datetime, *, pending: bool = False) -> Due:
    """The queue, the next action and its date for a statement (`desk_statement` row and its
    timeline) at `now`: the sweeper's rules (`pipeline.reconcile.sweeper.decide`), the retry
    queue's time, the paper run's daily cut-off and its escalation of letters not mailed. An
    address change awaiting a supervisor puts the statement in the approval queue; the pipeline's
    own next step still comes by its date."""
    due = _pipeline_due(statement, timeline, settings, now)
    if not pending:
        return due
    then = f" Meanwhile: {due.action[0].lower()}{due.action[1:]}" if due.action else ""
    return Due("approval", f"A supervisor approves or rejects the new email address.{then}", due.at)


def _pipeline_due(statement: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]], settings: Settings,
                  now: datetime) -> Due:
    from pipeline.reconcile.sweeper import MARGIN

    window = DeliveryWindow.from_settings(settings)
    status = Status(statement["status"])
    started = statement["run_started_at"]
    changed = moment(statement["updated_at"])
    deadline = window.deadline(started) - MARGIN
    cutoff = min(window.cutoff(started), deadline)
    mail_by = _mail_by(timeline, settings)
    match status:
        case Status.COMPOSED:
            return Due(None, "Make the PDF; the statement fails if it is not made by the deadline", deadline)
        case Status.RENDERED if statement.get("channel") == "paper":
            return Due("paper", "Joins the print queue (the run routes it to paper)", None)
        case Status.RENDERED | Status.QUEUED:
            return Due(None, "Send the email; it goes on paper if it is not emailed by the send cut-off",
                       cutoff)
        case Status.BOUNCED:
            return Due(None, "The bounce is routed to a retry, an address check or paper; on paper at the "
                       "send cut-off at the latest", cutoff)
        case Status.SENT:
            quiet_end = changed + window.quiet
            if quiet_end <= deadline:
                return Due(None, "Counted as delivered if no bounce comes back by then", quiet_end)
            return Due(None, "Goes on paper if delivery is not confirmed by then", deadline)
        case Status.RETRY_SCHEDULED:
            retry_at = moment(statement["next_attempt_at"]) if statement.get("next_attempt_at") else None
            if retry_at is not None and retry_at < cutoff:
                return Due("retry", "Email again (the next retry)", retry_at)
            return Due("retry", "Goes on paper at the send cut-off", cutoff)
        case Status.VERIFICATION_PENDING:
            if any(e["event"] == Event.RETURNED_TO_SENDER for e in timeline):
                return Due("verification", "Confirm the mailing address with the member by then; otherwise "
                           "the letter waits for support to correct the address",
                           changed + window.verification)
            return Due("verification", "Confirm the email address with the member by then; otherwise it "
                       "goes on paper", min(changed + window.verification, cutoff))
        case Status.VERIFIED:
            return Due("retry", "Email again to the confirmed address (at the next reconcile cycle); it "
                       "goes on paper if it is not emailed by the send cut-off", cutoff)
        case Status.VERIFICATION_FAILED:
            return Due("paper", "Goes on paper", changed)
        case Status.PAPER_QUEUED:
            return Due("paper", "Printed in the day's print batch",
                       _batch_cutoff(max(now, changed), settings))
        case Status.PAPER_EXCEPTION:
            return Due("paper", "Correct the mailing address; escalated if not mailed by then", mail_by)
        case Status.BATCHED | Status.PRINTED:
            return Due("paper", "The print vendor prints and mails it; escalated if not mailed by then",
                       mail_by)
    return Due()  # delivered, mailed, failed, superseded: nothing more happens


def _batch_cutoff(after: datetime, settings: Settings) -> datetime:
    """The close of the first daily print batch a statement on paper at `after` makes."""
    today = after.replace(hour=settings.paper_cutoff_hour, minute=0, second=0, microsecond=0)
    return today if after < today else today + timedelta(days=1)


def _mail_by(timeline: Sequence[Mapping[str, Any]], settings: Settings) -> datetime | None:
    """When a letter not yet mailed is escalated: `paper_mail_days` after the statement first
    went on paper (the paper run's check, `paper_not_mailed_since`)."""
    first = next((e["at"] for e in timeline if e["to_status"] == Status.PAPER_QUEUED), None)
    return None if first is None else moment(first) + timedelta(days=settings.paper_mail_days)
