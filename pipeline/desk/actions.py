"""What support may do to a statement, each with a reason that lands on its timeline and in the
audit log: record a confirmed new email address (a supervisor approves it: two-person rule), move
it to paper, lift the email block on its address, stop a resend. A reason is checked by
`pipeline.desk.reasons.checked_reason` before anything is written: one that holds the member's
details (an email address, a date, a phone or ID number) is refused. Moving a statement to paper
or stopping its resend closes an address change waiting on it (`expired`).

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
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from pipeline.desk.audit import DeskAction
from pipeline.desk.changes import (
    ADDRESS_CHANGEABLE,
    PendingChange,
    Step,
    approve_change,
    close_change,
    expire_statements_change,
    pending_changes,
    seal,
    unseal,
)
from pipeline.desk.context import DeskContext
from pipeline.desk.errors import ActionRefused, ChangeNotApplied
from pipeline.desk.reasons import checked_reason
from pipeline.desk.timeline import status_label
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status, sources_for
from pipeline.outcomes.routing import to_paper

__all__ = ["ADDRESS_CHANGEABLE", "MOVABLE_TO_PAPER", "RESEND_WAITING", "SUPPORT_REQUEST", "PendingChange",
           "cancel_resend", "decide_address_change", "lift_suppression", "move_to_paper", "pending_changes",
           "request_address_change"]

log = logging.getLogger(__name__)

SUPPORT_REQUEST = "support_request"
"""The paper reason of a statement support moved to paper."""

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

    who, why = _actor(actor), checked_reason(reason)
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
    _audit(ctx, who, DeskAction.ADDRESS_CHANGE_REQUESTED, source, change.statement_id, why,
           {"change": change.change_id, "verified_via": verified_via})
    return change


def decide_address_change(ctx: DeskContext, change_id: str, *, actor: str, approve: bool, reason: str,
                          source: str | None) -> None:
    """Approve or reject a waiting address change; the decider must not be who entered it.

    Approved: the decision and the statement's move to `verified` (with the address's keyed hash,
    which the reconcile cycle's resend checks the contact file against) commit together, only
    while the statement can still use the address; then the run's contact file gets the address
    (`correct_contact`) and an email block on it is lifted. If that fails the statement waits,
    verified and not emailed, and `ChangeNotApplied` says what to do. Either way the sealed
    address is erased."""
    who, why = _actor(actor), checked_reason(reason)
    change = ctx.ledger.fetch_one("desk_change", change_id=change_id)
    if change is None:
        raise ActionRefused("there is no such address change")
    if change["state"] == "expired":
        raise ActionRefused(f"this address change expired ({change['decision_reason']}): if the statement "
                            "can still use a new address, enter it again")
    if change["state"] != "pending":
        raise ActionRefused(f"this address change was already {change['state']} by {change['decided_by']}")
    if who.casefold() == str(change["requested_by"]).strip().casefold():
        raise ActionRefused("you entered this address change, so another supervisor must decide it "
                            "(two-person rule)")
    sid = change["statement_id"]
    if not approve:
        rejected = Step(Event.ADDRESS_CHANGE_REJECTED, {"actor": who, "reason": why, "change": change_id})
        if not close_change(ctx.ledger, change_id, sid, state="rejected", decided_by=who, reason=why,
                            step=rejected):
            raise ActionRefused("someone else decided this address change meanwhile")
        _audit(ctx, who, DeskAction.ADDRESS_CHANGE_REJECTED, source, sid, why, {"change": change_id})
        return
    row = _statement(ctx, sid)
    _require(row, ADDRESS_CHANGEABLE, "the new address can no longer be used for it: reject this change")
    address = unseal(str(change["sealed_address"]), _desk_secret(ctx))
    steps = _approval_steps(ctx, row, change, address, who, why)
    approve_change(ctx.ledger, change_id, decided_by=who, reason=why, statement_id=sid,
                   from_status=Status(row["status"]), steps=steps)
    _audit(ctx, who, DeskAction.ADDRESS_CHANGE_APPROVED, source, sid, why, {"change": change_id})
    _apply(ctx, row, change, address, who, source)


def _approval_steps(ctx: DeskContext, row: Mapping[str, Any], change: Mapping[str, Any], address: str,
                    who: str, why: str) -> list[Step]:
    """The approval's timeline: approved (back to verification first, when it waited for a retry
    or a resend), then verified to the address's keyed hash, as the outreach import records it."""
    from pipeline.delivery.suppression import address_hash

    secret = ctx.settings.verp_secret.get_secret_value()
    approved = {"actor": who, "reason": why, "change": change["change_id"]}
    verified = Step(Event.ADDRESS_VERIFIED, {
        "actor": who, "channel": change["verified_via"], "verified_by": change["requested_by"],
        "address_hash": address_hash(address, secret)[:16]}, Status.VERIFICATION_PENDING, Status.VERIFIED)
    status = Status(row["status"])
    if status is Status.VERIFICATION_PENDING:
        return [Step(Event.ADDRESS_CHANGE_APPROVED, approved), verified]
    return [Step(Event.ADDRESS_CHANGE_APPROVED, approved, status, Status.VERIFICATION_PENDING), verified]


def _apply(ctx: DeskContext, row: Mapping[str, Any], change: Mapping[str, Any], address: str, who: str,
           source: str | None) -> None:
    """An approved address into the run's contact file, and any email block on it lifted. A
    failure is on the timeline (`address_change_not_applied`) and raised as `ChangeNotApplied`:
    the statement stays verified, and the resend waits until the contact file holds the address."""
    from pipeline.delivery.suppression import SuppressionError, is_suppressed, lift
    from pipeline.reconcile.verification import VerificationError, correct_contact

    sid, change_id = row["statement_id"], change["change_id"]
    secret = ctx.settings.verp_secret.get_secret_value()
    step = "contact_file"
    try:
        correct_contact(ctx, row["run_id"], row["member_id"], address)
        step = "email_block"
        if is_suppressed(ctx.ledger, address, secret):
            with contextlib.suppress(SuppressionError):  # lifted meanwhile by someone else
                lift(ctx.ledger, address=address, secret=secret, actor=who, source=source,
                     reason=f"new address approved (confirmed by the member via {change['verified_via']})")
    except Exception as exc:
        said = str(exc) if isinstance(exc, (VerificationError, OSError)) else type(exc).__name__
        log.error("address change %s of statement %s approved but not applied (%s): %s", change_id, sid,
                  step, said)
        ctx.ledger.record_event(sid, Event.ADDRESS_CHANGE_NOT_APPLIED,
                                {"actor": who, "change": change_id, "error": f"{step}_not_written"})
        if step == "contact_file":
            raise ChangeNotApplied(
                f"approved, but the new address could not be written to the run's contact file ({said}): "
                "the statement waits as verified and is not emailed. Ask an operator to fix the run's "
                "files; the address is not kept, so then enter it again for approval.") from None
        raise ChangeNotApplied(
            "approved and written to the run's contact file, but the email block on the new address "
            "could not be lifted: ask an operator to lift it (eob suppression lift --address) before the "
            "statement is resent.") from None


def move_to_paper(ctx: DeskContext, statement_id: str, *, actor: str, reason: str,
                  source: str | None) -> None:
    """Send the statement by post instead: it joins the next daily print batch."""
    who, why = _actor(actor), checked_reason(reason)
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
    expire_statements_change(ctx.ledger, row["statement_id"], by=who, cause="moved to paper by support")
    _audit(ctx, who, DeskAction.MOVED_TO_PAPER, source, row["statement_id"], why, {"from": status.value})


def lift_suppression(ctx: DeskContext, statement_id: str, *, actor: str, reason: str,
                     source: str | None) -> int:
    """Lift the email block on the statement's address (its own bounce's, or its address's from
    an earlier one): later statements may be emailed there again. Returns the entries lifted; the
    lift is on the timeline and in the audit log (`pipeline.delivery.suppression.lift`)."""
    from pipeline.delivery.suppression import SuppressionError, lift

    who, why = _actor(actor), checked_reason(reason)
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
    who, why = _actor(actor), checked_reason(reason)
    row = _statement(ctx, statement_id)
    _require(row, RESEND_WAITING, "only a statement waiting for a retry or a resend can have it stopped")
    _moved(ctx, row["statement_id"], [Transition(row["statement_id"], Status.VERIFICATION_PENDING,
                                                 Event.RESEND_CANCELLED, {"actor": who, "reason": why})])
    expire_statements_change(ctx.ledger, row["statement_id"], by=who,
                             cause="resend stopped by support: the address must be confirmed again")
    _audit(ctx, who, DeskAction.RESEND_CANCELLED, source, row["statement_id"], why, {"from": row["status"]})


# -- shared ---------------------------------------------------------------------------------


def _actor(actor: str) -> str:
    who = actor.strip()
    if not who:
        raise ActionRefused("an action needs the name of who takes it")
    return who


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


def _desk_secret(ctx: DeskContext) -> str:
    return ctx.settings.desk_secret.get_secret_value()


def _audit(ctx: DeskContext, actor: str, action: DeskAction, source: str | None, statement_id: str,
           reason: str, detail: Mapping[str, Any]) -> None:
    from pipeline.desk.audit import record

    record(ctx.ledger, actor=actor, action=action, source=source, statement_id=statement_id, reason=reason,
           detail=detail)
