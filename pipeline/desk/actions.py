"""What support may do to a statement, each with a reason that lands on its timeline and in the
audit log: record a confirmed new email address (a supervisor approves it: two-person rule), move
it to paper, lift the email block on its address, stop a resend.

Each action moves the statement along the ledger's state machine like the pipeline's own steps
and hands it back to them: an approved address makes the statement `verified`, which the
reconcile cycle resends (`pipeline.reconcile.resend_verified`) once the contact file holds that
address; a statement moved to paper is printed in the next daily batch. An action the statement's
status does not allow is refused (`ActionRefused`) with words the agent can act on, and nothing
changes. Who may take which action is the permission matrix's to say (`pipeline.desk.permissions`),
checked by the web app before it calls here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from pipeline.desk.changes import PendingChange, pending_changes, seal, unseal
from pipeline.desk.context import DeskContext
from pipeline.desk.errors import ActionRefused
from pipeline.desk.timeline import status_label
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status, sources_for
from pipeline.outcomes.routing import to_paper

__all__ = ["ADDRESS_CHANGEABLE", "MAX_REASON", "MIN_REASON", "MOVABLE_TO_PAPER", "RESEND_WAITING",
           "SUPPORT_REQUEST", "PendingChange", "cancel_resend", "decide_address_change", "lift_suppression",
           "move_to_paper", "pending_changes", "request_address_change"]

MIN_REASON = 5
MAX_REASON = 300
SUPPORT_REQUEST = "support_request"
"""The paper reason of a statement support moved to paper."""

ADDRESS_CHANGEABLE = frozenset({Status.VERIFICATION_PENDING, Status.RETRY_SCHEDULED, Status.VERIFIED})
"""An email statement whose address bounced, that waits for a retry, or whose confirmed address
awaits its resend: a newly confirmed address can still be used for it."""
RESEND_WAITING = frozenset({Status.RETRY_SCHEDULED, Status.VERIFIED})
"""Waiting to be emailed again: what `cancel_resend` stops."""
MOVABLE_TO_PAPER = sources_for(Status.PAPER_QUEUED) - {Status.BATCHED, Status.PAPER_EXCEPTION}
"""Not yet on paper, and not yet known delivered: what support may send by post instead (a
statement being emailed at that moment may get both an email and a letter, never neither)."""


def request_address_change(ctx: DeskContext, statement_id: str, new_address: str, *, actor: str, reason: str,
                           verified_via: str, source: str | None) -> PendingChange:
    """Record an email address the member confirmed (`verified_via`: how), for a supervisor to
    approve. The address is kept sealed until the decision and never shown or logged."""
    from pipeline.reconcile.verification import CHANNELS, mask_address, valid_address

    who, why = _actor(actor), _reason(reason)
    if verified_via not in CHANNELS:
        raise ActionRefused(f"say how the member confirmed the address: one of {', '.join(CHANNELS)}")
    address = new_address.strip()
    if not valid_address(address):
        raise ActionRefused("that is not a valid email address: check it with the member")
    row = _statement(ctx, statement_id)
    if row["channel"] != "email":
        raise ActionRefused("this statement goes by paper: a mailing address is corrected in the member "
                            "file, not here")
    _require(row, ADDRESS_CHANGEABLE, "a new email address can be recorded only for a statement whose email "
             "bounced, waits for a retry or waits to be resent")
    change = PendingChange(uuid.uuid4().hex, row["statement_id"], who, ctx.ledger.now(), why, verified_via,
                           mask_address(address))
    try:
        ctx.ledger.execute("desk_insert_change", change_id=change.change_id, statement_id=change.statement_id,
                           requested_by=who, requested_at=change.requested_at, reason=why,
                           verified_via=verified_via, email_masked=change.email_masked,
                           sealed_address=seal(address, _desk_secret(ctx)))
    except IntegrityError:
        raise ActionRefused("an address change for this statement already waits for a supervisor: ask "
                            "them to decide it first") from None
    detail = {"actor": who, "reason": why, "change": change.change_id, "verified_via": verified_via}
    ctx.ledger.record_event(change.statement_id, Event.ADDRESS_CHANGE_REQUESTED, detail)
    _audit(ctx, who, "address_change_requested", source, change.statement_id, why,
           {"change": change.change_id, "verified_via": verified_via})
    return change


def decide_address_change(ctx: DeskContext, change_id: str, *, actor: str, approve: bool, reason: str,
                          source: str | None) -> None:
    """Approve or reject a waiting address change; the decider must not be who entered it.

    Approved: the run's contact file gets the address (`correct_contact`), an email block on it
    is lifted, and the statement moves to `verified` with the address's keyed hash, so the next
    reconcile cycle resends it there. Either way the sealed address is erased."""
    who, why = _actor(actor), _reason(reason)
    change = ctx.ledger.fetch_one("desk_change", change_id=change_id)
    if change is None:
        raise ActionRefused("there is no such address change")
    if change["state"] != "pending":
        raise ActionRefused(f"this address change was already {change['state']} by {change['decided_by']}")
    if who.casefold() == str(change["requested_by"]).strip().casefold():
        raise ActionRefused("you entered this address change, so another supervisor must decide it "
                            "(two-person rule)")
    sid = change["statement_id"]
    if not approve:
        _decide(ctx, change_id, "rejected", who, why)
        ctx.ledger.execute("desk_erase_sealed_address", change_id=change_id)
        ctx.ledger.record_event(sid, Event.ADDRESS_CHANGE_REJECTED,
                                {"actor": who, "reason": why, "change": change_id})
        _audit(ctx, who, "address_change_rejected", source, sid, why, {"change": change_id})
        return
    row = _statement(ctx, sid)
    _require(row, ADDRESS_CHANGEABLE, "the new address can no longer be used for it: reject this change")
    address = unseal(str(change["sealed_address"]), _desk_secret(ctx))
    _decide(ctx, change_id, "approved", who, why)
    try:
        _approve(ctx, row, change, address, who, why, source)
    except BaseException:
        ctx.ledger.execute("desk_reopen_change", change_id=change_id)
        raise
    ctx.ledger.execute("desk_erase_sealed_address", change_id=change_id)
    _audit(ctx, who, "address_change_approved", source, sid, why, {"change": change_id})


def _approve(ctx: DeskContext, row: Mapping[str, Any], change: Mapping[str, Any], address: str, who: str,
             why: str, source: str | None) -> None:
    from pipeline.delivery.suppression import SuppressionError, address_hash, is_suppressed, lift
    from pipeline.reconcile.verification import VerificationError, correct_contact

    sid, secret = row["statement_id"], ctx.settings.verp_secret.get_secret_value()
    try:
        correct_contact(ctx, row["run_id"], row["member_id"], address)
    except VerificationError as exc:
        raise ActionRefused(f"the address could not be written to the run's contact file ({exc}): ask an "
                            "operator") from None
    if is_suppressed(ctx.ledger, address, secret):
        with contextlib.suppress(SuppressionError):  # lifted meanwhile by someone else
            lift(ctx.ledger, address=address, secret=secret, actor=who, source=source,
                 reason=f"new address approved (confirmed by the member via {change['verified_via']})")
    approved = {"actor": who, "reason": why, "change": change["change_id"]}
    moves = [Transition(sid, Status.VERIFIED, Event.ADDRESS_VERIFIED, {
        "actor": who, "channel": change["verified_via"], "verified_by": change["requested_by"],
        "address_hash": address_hash(address, secret)[:16]})]
    if row["status"] == Status.VERIFICATION_PENDING:
        ctx.ledger.record_event(sid, Event.ADDRESS_CHANGE_APPROVED, approved)
    else:  # waiting for a retry or a resend: back to verification, then verified at once
        moves.insert(0, Transition(sid, Status.VERIFICATION_PENDING, Event.ADDRESS_CHANGE_APPROVED, approved))
    _moved(ctx, sid, moves)


def move_to_paper(ctx: DeskContext, statement_id: str, *, actor: str, reason: str,
                  source: str | None) -> None:
    """Send the statement by post instead: it joins the next daily print batch."""
    who, why = _actor(actor), _reason(reason)
    row = _statement(ctx, statement_id)
    status = Status(row["status"])
    if status in (Status.PAPER_QUEUED, Status.PAPER_EXCEPTION, Status.BATCHED, Status.PRINTED, Status.MAILED):
        raise ActionRefused(f"it is on paper already ({status_label(status).lower()})")
    _require(row, MOVABLE_TO_PAPER, "only a statement made and not yet delivered can be moved to paper")
    if ctx.ledger.fetch_one("reconcile_last_event", statement_id=row["statement_id"],
                            event=Event.RETURNED_TO_SENDER.value):
        raise ActionRefused("its letter came back: the mailing address must be corrected in the member file "
                            "before it is printed again")
    move = replace(to_paper(row["statement_id"], SUPPORT_REQUEST), event=Event.MOVED_TO_PAPER,
                   detail={"actor": who, "reason": why})
    _moved(ctx, row["statement_id"], [move])
    _audit(ctx, who, "moved_to_paper", source, row["statement_id"], why, {"from": status.value})


def lift_suppression(ctx: DeskContext, statement_id: str, *, actor: str, reason: str,
                     source: str | None) -> int:
    """Lift the email block on the statement's address (its own bounce's, or its address's from
    an earlier one): later statements may be emailed there again. Returns the entries lifted; the
    lift is on the timeline and in the audit log (`pipeline.delivery.suppression.lift`)."""
    from pipeline.delivery.suppression import SuppressionError, lift

    who, why = _actor(actor), _reason(reason)
    row = _statement(ctx, statement_id)
    try:
        return lift(ctx.ledger, statement_id=row["statement_id"], actor=who, reason=why, source=source,
                    secret=ctx.settings.verp_secret.get_secret_value())
    except SuppressionError:
        raise ActionRefused("there is no email block on this statement's address to lift") from None


def cancel_resend(ctx: DeskContext, statement_id: str, *, actor: str, reason: str,
                  source: str | None) -> None:
    """Stop a statement waiting to be emailed again (a retry, or a resend to a confirmed address):
    it goes back to verification, and nothing is emailed until an address is confirmed again."""
    who, why = _actor(actor), _reason(reason)
    row = _statement(ctx, statement_id)
    _require(row, RESEND_WAITING, "only a statement waiting for a retry or a resend can have it stopped")
    _moved(ctx, row["statement_id"], [Transition(row["statement_id"], Status.VERIFICATION_PENDING,
                                                 Event.RESEND_CANCELLED, {"actor": who, "reason": why})])
    _audit(ctx, who, "resend_cancelled", source, row["statement_id"], why, {"from": row["status"]})


# -- shared ---------------------------------------------------------------------------------


def _actor(actor: str) -> str:
    who = actor.strip()
    if not who:
        raise ActionRefused("an action needs the name of who takes it")
    return who


def _reason(reason: str) -> str:
    why = " ".join((reason or "").split())
    if len(why) < MIN_REASON:
        raise ActionRefused(f"give a reason (at least {MIN_REASON} characters): it goes on the statement's "
                            "timeline and in the audit log")
    return why[:MAX_REASON]


def _statement(ctx: DeskContext, statement_id: str) -> dict[str, Any]:
    row = ctx.ledger.statement(statement_id.strip())
    if row is None:
        raise ActionRefused("there is no statement with that id")
    return row


def _require(row: Mapping[str, Any], allowed: frozenset[Status], why: str) -> None:
    if row["status"] not in allowed:
        raise ActionRefused(f"{why}; it is now: {status_label(row['status']).lower()}")


def _moved(ctx: DeskContext, statement_id: str, moves: list[Transition]) -> None:
    if ctx.ledger.apply(moves) != len(moves):
        now = (ctx.ledger.statement(statement_id) or {"status": "unknown"})["status"]
        raise ActionRefused("the statement changed meanwhile (it is now: "
                            f"{status_label(now).lower()}): look at it again")


def _decide(ctx: DeskContext, change_id: str, state: str, who: str, why: str) -> None:
    if not ctx.ledger.execute("desk_decide_change", change_id=change_id, state=state, decided_by=who,
                              decided_at=ctx.ledger.now(), reason=why):
        raise ActionRefused("someone else decided this address change meanwhile")


def _desk_secret(ctx: DeskContext) -> str:
    return ctx.settings.desk_secret.get_secret_value()


def _audit(ctx: DeskContext, actor: str, action: str, source: str | None, statement_id: str, reason: str,
           detail: Mapping[str, Any]) -> None:
    from pipeline.desk.audit import record

    record(ctx.ledger, actor=actor, action=action, source=source, statement_id=statement_id, reason=reason,
           detail=detail)
