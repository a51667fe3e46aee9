"""One place that turns a delivery outcome into ledger moves: retry, verification or paper.

Send-time replies and asynchronous bounces share this, so an address that is bad is treated
the same whichever way we learn it: never resent automatically, confirmed out of band first.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.classify import Classification, Queue
from pipeline.clock import iso
from pipeline.ledger import Transition
from pipeline.statuses import Status


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The one named retry policy: exponential backoff with jitter, capped by attempts and age."""

    max_attempts: int = 3
    base_delay_seconds: int = 900
    max_delay_seconds: int = 6 * 3600
    jitter: float = 0.2

    def next_attempt(self, attempts: int, now: datetime, rng: random.Random) -> datetime:
        delay = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(attempts - 1, 0))
        delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        return now + timedelta(seconds=delay)


def route(
    statement_id: str,
    classification: Classification,
    *,
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    source: str,
    reason: str,
    rng: random.Random | None = None,
) -> list[Transition]:
    """Ledger moves for one failed delivery. `attempts` counts sends made so far."""
    if classification.queue is Queue.IGNORE:
        return []
    detail = {"category": classification.category.value, "source": source, "reason": reason[:200]}
    bounced = Transition(statement_id, Status.BOUNCED, "bounced", detail,
                         {"bounce_category": classification.category.value, "last_reason": reason[:200]})
    if classification.queue is Queue.VERIFY:
        return [bounced, Transition(statement_id, Status.VERIFICATION_PENDING, "verification_requested",
                                    {"category": classification.category.value})]
    if classification.queue is Queue.PAPER:
        return [bounced, _to_paper(statement_id, "content_rejected")]
    return [bounced, *retry_or_paper(statement_id, attempts=attempts, policy=policy, now=now,
                                     reason=reason, rng=rng)]


def retry_or_paper(
    statement_id: str, *, attempts: int, policy: RetryPolicy, now: datetime, reason: str,
    rng: random.Random | None = None,
) -> list[Transition]:
    """Schedule another attempt, or hand the statement to paper when attempts are used up."""
    if attempts >= policy.max_attempts:
        return [_to_paper(statement_id, "retries_exhausted")]
    when = policy.next_attempt(attempts, now, rng or random.Random(statement_id))
    return [Transition(statement_id, Status.RETRY_SCHEDULED, "retry_scheduled",
                       {"attempt": attempts, "not_before": iso(when), "reason": reason[:200]},
                       {"next_attempt_at": iso(when), "last_reason": reason[:200]})]


def _to_paper(statement_id: str, why: str) -> Transition:
    return Transition(statement_id, Status.PAPER_QUEUED, "paper_queued", {"reason": why},
                      {"paper_reason": why})


def address_hash(address: str, secret: str) -> str:
    """Suppression entries store a keyed hash, never the address itself."""
    return hmac.new(secret.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()
