"""Reconcile stages: delivery outcomes from every feed routed into queues; retries requeued.

For each item a feed offers: parse it (RFC 3464 DSN, ARF, auto-reply, free-text notice, SES
JSON), find its statement (the signed VERP token; our Message-ID or X-EOB-Statement only as
unsigned fall-backs, and only from a feed that allows them: SES notifications by default, never
a bounce mailbox unless its URL says so), classify, and move the statement in one ledger
transaction; a report about a prompt notice's email (a notice id) sends the notice to paper
(`stages.notices.notice_bounced`). The item's hash and outcome are recorded (never its content),
so the same item twice changes nothing, and the feed is told `done` or `set_aside` only after the
ledger has it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.clock import iso
from pipeline.delivery.suppression import suppress
from pipeline.ledger import Transition, is_notice_id
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes import (
    Category,
    Queue,
    RetryPolicy,
    deciding_outcome,
    is_sender_caused,
    route,
    to_paper,
)
from pipeline.reconcile import RFC822, Feed, FeedError, configured_feeds, open_feed, split_documents
from pipeline.stages import withdrawals
from pipeline.stages.context import Context
from pipeline.stages.notices import notice_bounced

log = logging.getLogger(__name__)

UNPARSEABLE = "unparseable"
AWAITING_RESEND = frozenset({Status.RETRY_SCHEDULED, Status.VERIFIED})
IGNORED_UNSIGNED = "ignored_unsigned"


class Uncorrelated(LookupError):
    """Nothing in the message names one of our statements."""


class UnsignedEvidence(LookupError):
    """Only unsigned evidence (our Message-ID, the statement header) names a statement, and the
    feed the message came through does not accept it: anyone can write such a message."""

    def __init__(self, how: str) -> None:
        super().__init__(f"{how} of ours but no VERP token; the feed correlates by signed token only")
        self.how = how


@dataclass(frozen=True, slots=True)
class Correlation:
    statement_id: str
    signed: bool  # True only for a VERP token whose HMAC verifies
    how: str  # "verp", "message_id" or "header"


@dataclass(frozen=True, slots=True)
class Processed:
    outcome: str
    statement_id: str | None = None


def correlate(bounce: Any, *, secret: str, message_id_domain: str,
              message_id_correlation: bool = False) -> Correlation:
    """The statement a report is about: signed token first, then our Message-ID, then header.

    A token that is present but does not verify is a forgery (ForgedToken), never a reason to
    fall back to the weaker evidence. The Message-ID and the header are as easy to forge as to
    quote, so they count only when `message_id_correlation` (the feed's choice) allows them;
    otherwise a message naming a statement only by them raises UnsignedEvidence.
    """
    from pipeline.delivery.verp import verify_token

    if bounce.verp_token:
        return Correlation(verify_token(bounce.verp_token, secret), True, "verp")
    match = re.fullmatch(r"<([A-Za-z0-9][A-Za-z0-9-]{0,127})@([A-Za-z0-9.-]+)>",
                         bounce.original_message_id or "")
    if match and match.group(2).lower() == message_id_domain.lower():
        unsigned = Correlation(match.group(1), False, "message_id")
    elif bounce.statement_header:
        unsigned = Correlation(bounce.statement_header, False, "header")
    else:
        raise Uncorrelated("no VERP token, Message-ID or statement header of ours")
    if not message_id_correlation:
        raise UnsignedEvidence(unsigned.how)
    return unsigned


def reconcile_stage(ctx: Context, feeds: Sequence[Feed] | None = None) -> dict[str, Any]:
    """Read every configured feed once; returns counts per outcome (no content, no addresses).

    A feed that cannot be read does not stop the others; the stage fails at the end so the
    orchestrator retries and alerts.
    """
    counts: dict[str, int] = {}
    errors: list[str] = []
    opened = list(feeds) if feeds is not None else []
    if feeds is None:
        for url in configured_feeds(ctx.settings):
            try:
                opened.append(open_feed(url, ctx.settings))
            except FeedError as exc:
                errors.append(str(exc))
    for feed in opened:
        try:
            _drain(ctx, feed, counts)
        except FeedError as exc:
            errors.append(str(exc))
        finally:
            feed.close()
    result = {"messages": sum(counts.values()), **counts}
    log.info("reconcile outcomes %s", result)
    if errors:
        raise FeedError("; ".join(errors))
    return result


def _drain(ctx: Context, feed: Feed, counts: dict[str, int]) -> None:
    for item in feed.fetch(ctx.settings.reconcile_batch_size):
        results = [process_document(ctx, doc, item.format, feed.name,
                                    message_id_correlation=feed.message_id_correlation)
                   for doc in split_documents(item)]
        for result in results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if all(r.outcome in (UNPARSEABLE, "duplicate_unparseable") for r in results):
            feed.set_aside(item, "unparseable")
        else:
            feed.done(item)
        log.info("reconcile feed=%s ref=%s outcomes=%s", feed.name, item.ref,
                 ",".join(r.outcome for r in results))


def process_document(ctx: Context, data: bytes, fmt: str, feed: str, *,
                     message_id_correlation: bool = False) -> Processed:
    """Parse, correlate, route and record one message or notification.

    `message_id_correlation`: whether the feed may match a message without a VERP token by our
    Message-ID or statement header (see `correlate`); without it such a message is recorded as
    `ignored_unsigned` and changes no statement.
    """
    from pipeline.delivery.verp import ForgedToken
    from pipeline.reconcile import UnparseableBounce, parse_bounce, parse_ses_notification

    key = hashlib.sha256(data).hexdigest()
    seen = ctx.ledger.fetch_one("bounce_message_seen", message_key=key)
    if seen is not None:
        return Processed("duplicate_unparseable" if seen["outcome"] == UNPARSEABLE else "duplicate")
    settings = ctx.settings
    kind, statement_id, reason = "unknown", None, ""
    try:
        bounce = (parse_bounce(data, bounce_domain=settings.bounce_domain) if fmt == RFC822
                  else parse_ses_notification(data))
        kind = bounce.kind
        link = correlate(bounce, secret=settings.verp_secret.get_secret_value(),
                         message_id_domain=settings.message_id_domain,
                         message_id_correlation=message_id_correlation)
        statement_id = link.statement_id
        if is_notice_id(statement_id):  # a prompt notice's email (its id in the VERP token)
            outcome = notice_bounced(ctx, statement_id, bounce.recipients, signed=link.signed, feed=feed)
        elif ctx.ledger.statement(statement_id) is None:
            outcome, reason = "unknown_statement", f"{link.how} names no statement in the ledger"
            statement_id = None
        else:
            outcome = _apply(ctx, link, bounce, feed)
    except UnparseableBounce as exc:
        outcome, reason = UNPARSEABLE, str(exc)[:200]
    except ForgedToken:
        outcome, reason = "forged", "VERP token signature does not verify"
    except UnsignedEvidence as exc:
        outcome, reason = IGNORED_UNSIGNED, str(exc)[:200]
    except Uncorrelated as exc:
        outcome, reason = "uncorrelated", str(exc)[:200]
    ctx.ledger.execute("insert_bounce_message", message_key=key, received_at=ctx.ledger.now(),
                       kind=f"{feed}:{kind}"[:60], outcome=outcome, statement_id=statement_id,
                       reason=reason)
    return Processed(outcome, statement_id)


def _apply(ctx: Context, link: Correlation, bounce: Any, feed: str) -> str:
    """Move one statement according to the outcome that decides for it."""
    ledger = ctx.ledger
    statement = ledger.statement(link.statement_id)
    assert statement is not None
    sid = link.statement_id
    worst = deciding_outcome(bounce.recipients, statement["email_domain"])
    if worst is None:
        return "ignored_empty"
    recipient_domain = worst.recipient.rpartition("@")[2]
    if (not link.signed and recipient_domain and statement["email_domain"]
            and recipient_domain != str(statement["email_domain"]).lower()):
        return "mismatched_recipient"  # unsigned evidence about another address: not ours
    c = worst.classification
    evidence = {"feed": feed, "correlation": link.how}
    if c.category is Category.DELIVERED:
        delivered = Transition(sid, Status.DELIVERED, Event.DELIVERED, {**evidence, "evidence": "feed"})
        moved = ledger.apply([delivered])
        return "delivered" if moved else "already_settled"
    if c.category is Category.COMPLAINT:
        # The member received it and marked it as spam: stop emailing this address.
        ledger.record_event(sid, Event.COMPLAINT_RECEIVED, evidence)
        if link.signed and worst.recipient:
            suppress(ledger, worst.recipient, cause="complaint", statement_id=sid,
                     secret=ctx.settings.verp_secret.get_secret_value())
        ledger.apply([Transition(sid, Status.DELIVERED, Event.DELIVERED,
                                 {**evidence, "evidence": "complaint"})])
        return "complaint"
    if c.queue is Queue.IGNORE:
        return f"ignored_{c.category.value}"
    if worst.action == "delayed":
        # The MTA is still trying: a resend now could deliver twice. Note it; a final DSN or
        # the sweeper's deadline decides later.
        ledger.record_event(sid, Event.DELIVERY_DELAYED, {**evidence, "category": c.category.value})
        return "noted_delayed"
    cutoff = ctx.send_cutoff(statement["run_id"])
    reason = f"{worst.status or ''} {worst.diagnostic}".strip()
    moves = route(sid, c, attempts=statement["attempts"], policy=RetryPolicy.from_settings(ctx.settings),
                  now=ctx.now(), source=feed, reason=reason, rng=random.Random(sid),
                  pool=statement["pool"], cutoff=cutoff, extra=evidence)
    if statement["status"] in AWAITING_RESEND:
        # a late report about an earlier send: a retry waiting, or an address staff confirmed
        # awaiting its resend, is not sent back to verification by it (kept on the timeline as
        # an ignored bounce); support may do that on purpose (pipeline/desk/actions.py)
        moves = [move for move in moves if move.to is not Status.VERIFICATION_PENDING]
    closing = bool(moves) and withdrawals.is_flagged_after_release(ledger, sid)
    if closing:  # withdrawn after it was sent: never resend or print it
        moves = [moves[0], withdrawals.closed_after_bounce(sid)]
    moved = ledger.apply(moves)
    if c.recipient_caused and link.signed and worst.recipient and moved:
        suppress(ledger, worst.recipient, cause=c.category.value, statement_id=sid,
                 secret=ctx.settings.verp_secret.get_secret_value())
    if not moved:
        return "already_routed"
    return "closed_withdrawn" if closing else f"routed_{c.queue.value}"


def requeue_due_stage(ctx: Context) -> dict[str, Any]:
    """Retries whose backoff has passed go back to a send queue, within limits.

    - at most `retry_requeue_per_pool` per pool per cycle, so fresh sends are not starved;
    - a pool on hold (receivers blocking/throttling it) gets none; a retry whose failure was
      ours (blocked, rate limited, TLS) moves to another pool when there is one;
    - past the run's send cut-off a retry goes to paper instead.
    """
    from pipeline.delivery.pool_health import HoldPolicy, current_holds
    from pipeline.delivery.pools import capacities, choose_pool, send_config

    settings = ctx.settings
    now = ctx.now()
    window = ctx.delivery_window
    held = current_holds(ctx.ledger, now, HoldPolicy.from_settings(settings))
    pools = capacities(send_config(settings))
    cap = settings.retry_requeue_per_pool
    rows = ctx.ledger.fetch("reconcile_due_retries", now=iso(now), limit=cap * len(pools) * 4)
    per_pool: dict[str, int] = {}
    moves: list[Transition] = []
    waiting = 0
    for row in rows:
        sid = row["statement_id"]
        if now >= window.cutoff(row["run_started_at"]):
            moves.append(to_paper(sid, "retry_past_cutoff"))
            continue
        pool = choose_pool(sid, row["pool"], pools, set(held),
                           avoid_current=is_sender_caused(row["bounce_category"]))
        if pool is None or per_pool.get(pool, 0) >= cap:
            waiting += 1
            continue
        per_pool[pool] = per_pool.get(pool, 0) + 1
        detail = {"pool": pool, "attempt": row["attempts"] + 1}
        if pool != row["pool"]:
            detail["previous_pool"] = row["pool"]
        moves.append(Transition(sid, Status.QUEUED, Event.REQUEUED, detail, {"pool": pool}))
    moved = ctx.ledger.apply(moves)
    for hold in held.values():
        log.warning("pool %s on hold until %s (%s, %d sender-caused bounces)", hold.pool,
                    iso(hold.until), hold.action.value, hold.bounces)
    return {"requeued": sum(per_pool.values()), "moved": moved, "waiting": waiting,
            "held_pools": sorted(held), **{f"requeued_{p}": n for p, n in per_pool.items()}}


def queue_counts(ctx: Context, run_id: str) -> dict[str, Any]:
    """Every bounced statement of a run is in exactly one queue or resolved: the check finance
    and compliance read. Status is one column, so 'exactly one' holds by construction; the
    check is that none is stranded in `bounced` and the parts add up."""
    rows = ctx.ledger.fetch("reconcile_queue_counts", run_id=run_id)
    by_status = {row["status"]: row["n"] for row in rows}
    queues = {
        "retry": by_status.get("retry_scheduled", 0) + by_status.get("queued", 0),
        "verification": by_status.get("verification_pending", 0) + by_status.get("verified", 0),
        "paper": sum(by_status.get(s, 0) for s in ("paper_queued", "printed", "mailed")),
        "resolved": sum(by_status.get(s, 0) for s in ("sent", "delivered")),
        "superseded": by_status.get("superseded", 0),  # replaced or withdrawn by a corrected extract
    }
    stranded = sum(n for s, n in by_status.items() if s in ("bounced", "verification_failed"))
    total = sum(by_status.values())
    return {"bounced_statements": total, **queues, "stranded": stranded,
            "reconciles": stranded == 0 and total == sum(queues.values())}


def sweep_stage(ctx: Context) -> dict[str, int]:
    """The delivery-deadline sweeper, on its schedule: every in-flight status moves on in time;
    then the support desk's address changes that can no longer be used (their statement moved on,
    or they waited past the verification window) are closed, their sealed addresses erased."""
    from pipeline.desk.changes import expire_changes
    from pipeline.reconcile import sweep

    counts = sweep(ctx.ledger, ctx.now(), ctx.delivery_window, batch=ctx.settings.sweep_batch_size)
    expired = expire_changes(ctx)
    if expired:
        counts["address_changes_expired"] = expired
    return counts


def resend_verified_stage(ctx: Context) -> dict[str, int]:
    """Verified statements go back to a send queue once it is safe (see `resend_verified`)."""
    from pipeline.reconcile import resend_verified

    return resend_verified(ctx)
