"""A corrected member file changes how a statement not yet out reaches the member.

Compose decides email or paper per member from the member file: e-delivery consent, an address
present and valid, not suppressed (`pipeline.compose`). A corrected extract whose claim lines for
a member are unchanged keeps that member's statement (same content, same version), but the
member file may say otherwise now: consent withdrawn or given, the address removed, changed or
suppressed since. The compose stage compares its decision with the ledger's channel and address
(keyed hash) for each such statement, and the ledger follows the decision while the statement
is not yet out:

- email → paper: a `composed` statement changes channel (render draws the print variant, route
  sends it to paper); one `rendered`, `queued`, `bounced`, in a retry, in verification or
  `verified` goes to `paper_queued` (off the send queue), except that an address now suppressed
  is left to the verification under way; one `paper_queued` already because its email failed
  changes channel and stays on paper for that reason;
- paper → email: a `composed` statement changes channel; one `rendered`, or `paper_queued` for
  the channel's reason (not printed), is `composed` again, so it is rendered in the email
  variant and routed to a pool, unless the run's send cut-off has passed (it stays on paper,
  counted); a printed or mailed one stays as it is;
- a changed address, on email, not yet out: the ledger keeps the new address's hash, and the
  sender reads the new address from the member file;
- email → paper for want of consent, already `sent` or `delivered`: recorded for follow-up,
  once; nothing is sent again.

Each change is one event: `channel_changed` (from, to and a reason code) or `address_changed`
(the keyed hashes, 16 hex digits), never the address. A queued statement whose send is in doubt
when consent is withdrawn (attempted, no outcome recorded) may have reached the member: it goes
to paper and is recorded for follow-up (`consent_withdrawn_after_email`), as is one whose email
the relay accepts after it left the queue (`pipeline.stages.send`). The send stage also checks the
member file before each message, so nothing is emailed between a corrected ingest and compose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from pipeline.ledger import Delivery, Ledger
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import EMAILED, NOT_YET_OUT, Status
from pipeline.stages.context import Context
from pipeline.stages.withdrawals import send_in_doubt

CHANNEL_REASONS = frozenset({"no_consent", "no_email", "invalid_email", "suppressed"})
"""Compose's reasons for paper (`pipeline.compose.paper_reason`); any other paper reason is a
delivery's (retries used up, verification failed, the deadline)."""
EMAIL_AGAIN = {"no_consent": "consent_given", "no_email": "address_added",
               "invalid_email": "address_valid", "suppressed": "suppression_lifted"}
"""The reason code of a paper → email change, by the paper reason it ends."""
NO_CONSENT = "no_consent"
VERIFYING = frozenset({Status.VERIFICATION_PENDING, Status.VERIFIED})
"""Statements whose address staff are confirming: a suppression of it (most likely from its own
bounce) is the verification's to lift or to turn into paper, not compose's."""
ATTEMPTS = 3
"""A statement moved by someone else (a send, a bounce) between reading and changing it is read
again, at most this many times."""


@dataclass(frozen=True, slots=True)
class Decided:
    """Compose's decision for a statement already in the ledger."""

    statement_id: str
    run_id: str
    delivery: Delivery


@dataclass(slots=True)
class ChannelCounts:
    changed_to_paper: int = 0
    changed_to_email: int = 0
    address_changed: int = 0
    kept_paper_past_cutoff: int = 0
    consent_withdrawn_after_email: int = 0

    def add(self, other: ChannelCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def decision(row: Mapping[str, Any]) -> Delivery:
    """Compose's decision from one of its summary rows."""
    return Delivery(row["channel"], row["paper_reason"], row["email_domain"], row["address_hash"])


def differs(previous: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Does compose's decision (`row`) differ from the ledger's (`previous`, the latest version)?
    An address the ledger does not know (composed before addresses were kept) is no change."""
    if previous["channel"] != row["channel"]:
        return True
    return (row["channel"] == "email" and previous["address_hash"] is not None
            and previous["address_hash"] != row["address_hash"])


def unknown_address(previous: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """An email statement not yet out whose address the ledger does not have yet."""
    return (previous["channel"] == row["channel"] == "email" and previous["address_hash"] is None
            and previous["status"] in NOT_YET_OUT)


def apply(ctx: Context, decided: Iterable[Decided]) -> tuple[ChannelCounts, list[str]]:
    """Bring the ledger in line with compose's decisions (see the module docstring). Returns the
    counts and the statements whose channel or address changed (for the audit log)."""
    counts = ChannelCounts()
    changed: list[str] = []
    for item in decided:
        for _ in range(ATTEMPTS):
            current = ctx.ledger.statement(item.statement_id)
            if current is None:
                break
            done = _change(ctx, current, item, counts)
            if done is not None:
                if done:
                    changed.append(item.statement_id)
                break
    return counts, changed


def follow_up(ledger: Ledger, statement_id: str, status: str, *, in_doubt: bool = False) -> int:
    """Record, once, that a statement was (or, in doubt, may have been) emailed to a member whose
    consent is now withdrawn. Returns 1 if recorded now."""
    if any(e["event"] == Event.CONSENT_WITHDRAWN_AFTER_EMAIL for e in ledger.timeline(statement_id)):
        return 0
    detail: dict[str, Any] = {"status": status, "reason": NO_CONSENT}
    if in_doubt:
        detail["send_in_doubt"] = True
    ledger.record_event(statement_id, Event.CONSENT_WITHDRAWN_AFTER_EMAIL, detail)
    return 1


def _change(ctx: Context, current: Mapping[str, Any], item: Decided, counts: ChannelCounts) -> bool | None:
    """One statement: True if changed, False if nothing to change, None if it moved meanwhile."""
    status = Status(current["status"])
    old = Delivery(current["channel"], current["paper_reason"], current["email_domain"],
                   current["address_hash"])
    new = item.delivery
    if old.channel == "email" and new.channel == "paper":
        return _to_paper(ctx.ledger, item.statement_id, status, old, new, counts)
    if old.channel == "paper" and new.channel == "email":
        return _to_email(ctx, item, status, old, counts)
    if (new.channel == "email" and old.address_hash is not None and old.address_hash != new.address_hash
            and status in NOT_YET_OUT):
        moved = ctx.ledger.set_delivery(
            item.statement_id, status=status, event_name=Event.ADDRESS_CHANGED,
            delivery=replace(old, email_domain=new.email_domain, address_hash=new.address_hash),
            detail={"from": old.address_hash[:16], "to": (new.address_hash or "")[:16]})
        counts.address_changed += moved
        return True if moved else None
    return False


def _to_paper(ledger: Ledger, statement_id: str, status: Status, old: Delivery, new: Delivery,
              counts: ChannelCounts) -> bool | None:
    if status in EMAILED:  # out already: nothing to stop, only to follow up
        if new.paper_reason == NO_CONSENT:
            counts.consent_withdrawn_after_email += follow_up(ledger, statement_id, status.value)
        return False
    if status not in NOT_YET_OUT or (new.paper_reason == "suppressed" and status in VERIFYING):
        return False
    paper = Delivery("paper", new.paper_reason, None, None)
    detail: dict[str, Any] = {"from": "email", "to": "paper", "reason": new.paper_reason}
    in_doubt = False
    if status is Status.COMPOSED:  # render draws the print variant; route sends it to paper
        moved = ledger.set_delivery(statement_id, status=status, delivery=paper,
                                    event_name=Event.CHANNEL_CHANGED, detail=detail)
    elif status is Status.PAPER_QUEUED:  # its email failed: on paper already, for that reason
        moved = ledger.set_delivery(statement_id, status=status, event_name=Event.CHANNEL_CHANGED,
                                    delivery=replace(paper, paper_reason=old.paper_reason), detail=detail)
    else:  # off the send queue (or out of a retry or verification) before it can be emailed
        in_doubt = send_in_doubt(ledger, statement_id, status)
        if in_doubt:
            detail["send_in_doubt"] = True
        moved = ledger.set_delivery(statement_id, status=status, delivery=paper, to=Status.PAPER_QUEUED,
                                    event_name=Event.CHANNEL_CHANGED, detail=detail)
    if not moved:
        return None
    counts.changed_to_paper += 1
    if in_doubt and new.paper_reason == NO_CONSENT:
        counts.consent_withdrawn_after_email += follow_up(ledger, statement_id, status.value, in_doubt=True)
    return True


def _to_email(ctx: Context, item: Decided, status: Status, old: Delivery,
              counts: ChannelCounts) -> bool | None:
    ledger, statement_id, new = ctx.ledger, item.statement_id, item.delivery
    reason = EMAIL_AGAIN.get(old.paper_reason or "", "email_allowed")
    detail = {"from": "paper", "to": "email", "reason": reason}
    if status is Status.COMPOSED:
        moved = ledger.set_delivery(statement_id, status=status, delivery=new,
                                    event_name=Event.CHANNEL_CHANGED, detail=detail)
    elif status is Status.PAPER_QUEUED and old.paper_reason not in CHANNEL_REASONS:
        # on paper because its email failed: it stays there, the channel follows the decision
        moved = ledger.set_delivery(statement_id, status=status, event_name=Event.CHANNEL_CHANGED,
                                    delivery=replace(new, paper_reason=old.paper_reason), detail=detail)
    elif status in (Status.RENDERED, Status.PAPER_QUEUED):  # not printed: rendered again, as email
        if _past_cutoff(ctx, item.run_id):
            counts.kept_paper_past_cutoff += 1
            return False
        moved = ledger.set_delivery(statement_id, status=status, delivery=new, to=Status.COMPOSED,
                                    event_name=Event.CHANNEL_CHANGED, detail=detail)
    else:  # printed, mailed, failed or superseded
        return False
    if not moved:
        return None
    counts.changed_to_email += 1
    return True


def _past_cutoff(ctx: Context, run_id: str) -> bool:
    """Too late to email: the run's send cut-off has passed (a statement routed now would only
    go to paper again, or fail to be rendered by the deadline)."""
    cutoff = ctx.send_cutoff(run_id)
    return cutoff is not None and ctx.now() >= cutoff
