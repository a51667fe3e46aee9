"""Address changes awaiting a supervisor: what the desk keeps of them, the sealed address, and
how a change leaves `pending` (approved, rejected, expired) together with its timeline entry.

An agent who has confirmed a member's new email address records it; a supervisor approves or
rejects it (two-person rule: a wrong address sends health information to a stranger). Until
then the address exists only sealed in `address_changes` (Fernet: AES-128-CBC with an
HMAC-SHA-256 tag, keyed by HKDF-SHA-256 from the desk's secret, for this one purpose), so a copy
of the ledger, a backup or a query does not show it; the pages show `email_masked`. Whatever
closes a change erases the sealed address. Rotating the desk's secret leaves waiting changes
unreadable: they are rejected and entered again.

A change waits only while its statement can still use a new address (`ADDRESS_CHANGEABLE`, by
email) and no longer than the verification window: `expire_changes`, run by the reconcile
sweep, closes the others as `expired`, so no sealed address outlives its use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pipeline.clock import iso
from pipeline.desk.errors import ActionRefused
from pipeline.desk.timeline import status_label
from pipeline.ledger.events import Event
from pipeline.ledger.sql import clause
from pipeline.ledger.statuses import Status

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from sqlalchemy import Connection

    from pipeline.desk.context import DeskContext
    from pipeline.ledger import Ledger

__all__ = ["ADDRESS_CHANGEABLE", "EXPIRED_BY", "PendingChange", "Step", "approve_change", "close_change",
           "expire_changes", "expire_statements_change", "pending_change_of", "pending_changes", "seal",
           "unseal"]

ADDRESS_CHANGEABLE = frozenset({Status.VERIFICATION_PENDING, Status.RETRY_SCHEDULED, Status.VERIFIED})
"""An email statement whose address bounced, that waits for a retry, or whose confirmed address
awaits its resend: a newly confirmed address can still be used for it."""
EXPIRED_BY = "eob reconcile sweep"
"""Who `expire_changes` records as closing a change."""
SEAL_INFO = b"eob desk: address changes awaiting a supervisor"


@dataclass(frozen=True, slots=True)
class PendingChange:
    """An address change waiting for a supervisor (never the address: its masked hint)."""

    change_id: str
    statement_id: str
    requested_by: str
    requested_at: str
    reason: str
    verified_via: str
    email_masked: str


def pending_changes(ctx: DeskContext) -> list[PendingChange]:
    """Every change waiting for a supervisor, oldest first (the approvals page)."""
    return [PendingChange(row["change_id"], row["statement_id"], row["requested_by"],
                          str(row["requested_at"]), row["reason"], row["verified_via"], row["email_masked"])
            for row in ctx.ledger.fetch("desk_pending_changes")]


def pending_change_of(row: Mapping[str, Any]) -> PendingChange | None:
    """The waiting change a `desk_statement` row carries, if any."""
    if not row.get("change_id"):
        return None
    return PendingChange(row["change_id"], row["statement_id"], row["requested_by"], str(row["requested_at"]),
                         row["change_reason"], row["verified_via"], row["change_email_masked"])


@dataclass(frozen=True, slots=True)
class Step:
    """One timeline entry of a change's decision; `to_status` set when it moves the statement."""

    event: Event
    detail: Mapping[str, Any] = field(default_factory=dict)
    from_status: Status | None = None
    to_status: Status | None = None


def approve_change(ledger: Ledger, change_id: str, *, decided_by: str, reason: str, statement_id: str,
                   from_status: Status, steps: Sequence[Step]) -> None:
    """The approval, the statement's move from `from_status` to the last step's status, and the
    steps' events, in one transaction: all of it, or (ActionRefused) nothing, when someone else
    decided the change or the statement moved on meanwhile. The sealed address is erased."""
    to = [step.to_status for step in steps if step.to_status is not None][-1]
    with ledger.begin() as conn:
        at = ledger.now()
        if not _decide(conn, change_id, "approved", decided_by, reason, at):
            raise ActionRefused("someone else decided this address change meanwhile")
        if conn.execute(clause("desk_move_statement"), {
                "statement_id": statement_id, "from_status": from_status.value, "to_status": to.value,
                "at": at}).rowcount != 1:
            raise ActionRefused("the statement changed meanwhile: look at it again (nothing was approved)")
        for step in steps:
            _event(conn, statement_id, step, at)


def close_change(ledger: Ledger, change_id: str, statement_id: str, *, state: Literal["rejected", "expired"],
                 decided_by: str, reason: str, step: Step) -> bool:
    """A waiting change rejected or expired, its sealed address erased and `step` on the
    statement's timeline, in one transaction; False (nothing written) when it no longer waited."""
    with ledger.begin() as conn:
        at = ledger.now()
        if not _decide(conn, change_id, state, decided_by, reason, at):
            return False
        _event(conn, statement_id, step, at)
    return True


def expire_statements_change(ledger: Ledger, statement_id: str, *, by: str, cause: str) -> bool:
    """Close the change waiting on a statement, if any, as expired (`cause`: why it can no longer
    be used). Called by an action that takes the statement off the email it was for."""
    row = ledger.fetch_one("desk_pending_change_of_statement", statement_id=statement_id)
    return row is not None and _expire(ledger, str(row["change_id"]), statement_id, by=by, cause=cause)


def expire_changes(ctx: DeskContext) -> int:
    """Close, as expired, every waiting change whose statement can no longer use a new address
    (not by email, or left `ADDRESS_CHANGEABLE`: moved to paper, superseded, swept) or that
    waited longer than the verification window; returns how many. The reconcile sweep runs it."""
    before = iso(ctx.now() - timedelta(days=ctx.settings.verification_days))
    closed = 0
    for row in ctx.ledger.fetch("desk_pending_changes_of_statements"):
        if row["status"] not in ADDRESS_CHANGEABLE:
            cause = f"the statement is now: {status_label(str(row['status'])).lower()}"
        elif row["channel"] != "email":
            cause = f"the statement now goes by {row['channel']}"
        elif str(row["requested_at"]) < before:
            cause = f"not decided within {ctx.settings.verification_days:g} days"
        else:
            continue
        closed += _expire(ctx.ledger, str(row["change_id"]), str(row["statement_id"]), by=EXPIRED_BY,
                          cause=cause)
    return closed


def _expire(ledger: Ledger, change_id: str, statement_id: str, *, by: str, cause: str) -> bool:
    step = Step(Event.ADDRESS_CHANGE_EXPIRED, {"actor": by, "change": change_id, "cause": cause})
    return close_change(ledger, change_id, statement_id, state="expired", decided_by=by, reason=cause,
                        step=step)


def _decide(conn: Connection, change_id: str, state: str, decided_by: str, reason: str, at: str) -> bool:
    return conn.execute(clause("desk_decide_change"), {
        "change_id": change_id, "state": state, "decided_by": decided_by, "decided_at": at,
        "reason": reason}).rowcount == 1


def _event(conn: Connection, statement_id: str, step: Step, at: str) -> None:
    conn.execute(clause("insert_event"), {
        "statement_id": statement_id, "at": at, "event": step.event.value,
        "from_status": step.from_status.value if step.from_status else None,
        "to_status": step.to_status.value if step.to_status else None,
        "detail": json.dumps(dict(step.detail), sort_keys=True, default=str)})


def seal(address: str, desk_secret: str) -> str:
    return _fernet(desk_secret).encrypt(address.encode()).decode("ascii")


def unseal(token: str, desk_secret: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(desk_secret).decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise ActionRefused("the new address can no longer be read (the desk's secret changed since it "
                            "was entered): reject this change and enter the address again") from None


@cache
def _fernet(desk_secret: str) -> Fernet:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(desk_secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))
