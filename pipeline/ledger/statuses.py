"""The ledger's closed vocabulary of statement statuses and the moves allowed between them.

The schema mirrors this set in a CHECK constraint; a meta-test keeps the two in step.
A transition only updates rows whose current status allows it, so a duplicate or late event
is recorded and ignored instead of moving a statement backwards.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    COMPOSED = "composed"
    RENDERED = "rendered"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    RETRY_SCHEDULED = "retry_scheduled"
    VERIFICATION_PENDING = "verification_pending"
    VERIFIED = "verified"
    VERIFICATION_FAILED = "verification_failed"
    PAPER_QUEUED = "paper_queued"
    PAPER_EXCEPTION = "paper_exception"
    BATCHED = "batched"
    PRINTED = "printed"
    MAILED = "mailed"
    FAILED = "failed"
    SUPERSEDED = "superseded"


S = Status

NOT_YET_OUT: frozenset[Status] = frozenset(
    {S.COMPOSED, S.RENDERED, S.QUEUED, S.BOUNCED, S.RETRY_SCHEDULED, S.VERIFICATION_PENDING,
     S.VERIFIED, S.VERIFICATION_FAILED, S.PAPER_QUEUED, S.PAPER_EXCEPTION})
"""Not (or no longer) with a mail server that accepted it, nor printed: a corrected extract can
still stop it going out."""
RELEASED: frozenset[Status] = frozenset({S.SENT, S.DELIVERED, S.PRINTED, S.MAILED})
"""Accepted by the member's mail server or printed: what is out can only be followed up."""

ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    # a corrected member file allows email again for a statement rendered or queued for paper
    # but not printed: it is rendered again, in the email variant (pipeline/stages/channels.py)
    S.COMPOSED: frozenset({S.RENDERED, S.PAPER_QUEUED}),
    S.RENDERED: frozenset({S.COMPOSED}),
    S.QUEUED: frozenset({S.RENDERED, S.RETRY_SCHEDULED, S.VERIFIED}),
    S.SENT: frozenset({S.QUEUED}),
    S.DELIVERED: frozenset({S.SENT}),
    S.BOUNCED: frozenset({S.QUEUED, S.SENT, S.DELIVERED}),
    S.RETRY_SCHEDULED: frozenset({S.QUEUED, S.BOUNCED}),
    # a bounce; or a letter returned to sender (the postal address is wrong); or support stopped
    # a resend (a retry waiting, or a verified address awaiting its resend) until an address is
    # confirmed again (pipeline/desk/actions.py)
    S.VERIFICATION_PENDING: frozenset({S.BOUNCED, S.MAILED, S.RETRY_SCHEDULED, S.VERIFIED}),
    S.VERIFIED: frozenset({S.VERIFICATION_PENDING}),
    S.VERIFICATION_FAILED: frozenset({S.VERIFICATION_PENDING}),
    S.PAPER_QUEUED: frozenset(
        {S.RENDERED, S.BOUNCED, S.RETRY_SCHEDULED, S.VERIFICATION_FAILED, S.QUEUED,
         S.SENT, S.VERIFIED,  # the delivery-deadline sweeper (pipeline/reconcile/sweeper.py)
         S.VERIFICATION_PENDING,  # a corrected member file withdrew consent or the address
         S.BATCHED,  # the vendor rejected the piece, or its batch was cancelled
         S.PAPER_EXCEPTION}  # its mailing address was corrected
    ),
    # paper (pipeline/stages/paper.py): batched for the vendor, acknowledged as printed, mailed
    # an address that cannot be printed; or, after a returned letter, one nobody confirmed in time
    S.PAPER_EXCEPTION: frozenset({S.PAPER_QUEUED, S.VERIFICATION_FAILED}),
    S.BATCHED: frozenset({S.PAPER_QUEUED}),
    S.PRINTED: frozenset({S.BATCHED}),
    S.MAILED: frozenset({S.PRINTED}),
    S.FAILED: frozenset({S.COMPOSED}),
    # a corrected extract replaced or withdrew this version before it went out: not a failure,
    # and nothing to deliver (one already out keeps its status; the timeline says so)
    S.SUPERSEDED: NOT_YET_OUT,
}
"""For each target status, the statuses a statement may move from."""

TERMINAL: frozenset[Status] = frozenset({S.DELIVERED, S.MAILED, S.FAILED, S.SUPERSEDED})
EMAILED: frozenset[Status] = frozenset({S.SENT, S.DELIVERED})
PAPER: frozenset[Status] = frozenset({S.PAPER_QUEUED, S.PAPER_EXCEPTION, S.BATCHED, S.PRINTED,
                                      S.MAILED})


class IllegalTransition(ValueError):
    """A move the state machine does not allow (a programming error, not a data problem)."""


def sources_for(target: Status) -> frozenset[Status]:
    try:
        return ALLOWED_FROM[target]
    except KeyError as exc:  # pragma: no cover - closed enum
        raise IllegalTransition(f"unknown target status {target!r}") from exc
