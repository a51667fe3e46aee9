"""One place that turns a delivery outcome into ledger moves: retry, verification or paper.

Send-time replies and asynchronous bounces share this, so an address that is bad is treated
the same whichever way we learn it: never resent automatically, confirmed out of band first.
The time rules live here too (`RetryPolicy`, `DeliveryWindow`), so the retry queue, the
verification queue and the sweeper agree on when email stops and paper takes over.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.clock import iso, moment
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes.classify import Category, Classification, Queue

if TYPE_CHECKING:
    from pipeline.outcomes.recipient_outcome import RecipientOutcome
    from pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The one named retry policy: exponential backoff with jitter, capped by attempts and age.

    ``max_attempts`` counts sends; the age cap is the `DeliveryWindow` cut-off, passed to
    `retry_or_paper`, so no retry is scheduled that could not settle before the deadline.
    """

    max_attempts: int = 3
    base_delay_seconds: int = 900
    max_delay_seconds: int = 6 * 3600
    jitter: float = 0.2

    def delay_seconds(self, attempts: int, rng: random.Random) -> float:
        """Base × 2^(attempts-1), capped, then ±jitter so a blocked pool's retries spread out."""
        delay = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(attempts - 1, 0))
        return float(delay * (1 + rng.uniform(-self.jitter, self.jitter)))

    def next_attempt(self, attempts: int, now: datetime, rng: random.Random) -> datetime:
        return now + timedelta(seconds=self.delay_seconds(attempts, rng))

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.retry_max_attempts,
                   base_delay_seconds=settings.retry_base_delay_seconds,
                   max_delay_seconds=settings.retry_max_delay_seconds)


@dataclass(frozen=True, slots=True)
class DeliveryWindow:
    """When a run's statements must have settled, counted from the run's start.

    - ``deadline``: every statement delivered, on paper, or terminal (the sweeper enforces it);
    - ``quiet``: a message the relay accepted with no bounce for this long counts as delivered
      (receiving MTAs give up and bounce within their queue lifetime, typically 5 days);
    - ``cutoff`` = deadline − quiet: the last moment an email (first send, retry or resend
      after verification) may go out, so its bounce can still arrive and be acted on in time;
    - ``verification``: how long an address may wait for out-of-band confirmation.
    """

    deadline_after: timedelta
    quiet: timedelta
    verification: timedelta

    def __post_init__(self) -> None:
        if self.quiet >= self.deadline_after:
            raise ValueError("the bounce quiet period must be shorter than the delivery deadline")

    def deadline(self, run_started: datetime | str) -> datetime:
        return moment(run_started) + self.deadline_after

    def cutoff(self, run_started: datetime | str) -> datetime:
        """The send cut-off of a run that started at `run_started` (the ledger's ISO text or a
        datetime): every email, first send, retry or resend, goes out before it or not at all."""
        return moment(run_started) + self.deadline_after - self.quiet

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryWindow:
        return cls(deadline_after=timedelta(hours=settings.delivery_deadline_hours),
                   quiet=timedelta(hours=settings.bounce_quiet_hours),
                   verification=timedelta(days=settings.verification_days))


QUEUE_SEVERITY: dict[Queue, int] = {Queue.VERIFY: 3, Queue.PAPER: 2, Queue.RETRY: 1, Queue.IGNORE: 0}
"""When one report names several recipients, the outcome that decides is the most severe."""


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
    pool: str | None = None,
    cutoff: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Transition]:
    """Ledger moves for one failed delivery. `attempts` counts sends made so far.

    Recipient-caused → verification (never a retry, whatever the attempt count); content or
    size → paper; everything else → retry until attempts or the cut-off run out, then paper.
    """
    if classification.queue is Queue.IGNORE:
        return []
    reason = reason[:200]
    detail: dict[str, Any] = {"category": classification.category.value, "source": source,
                              "reason": reason, **(extra or {})}
    if pool:
        detail["pool"] = pool
    bounced = Transition(statement_id, Status.BOUNCED, Event.BOUNCED, detail,
                         {"bounce_category": classification.category.value, "last_reason": reason})
    if classification.queue is Queue.VERIFY or classification.recipient_caused:
        return [bounced, Transition(statement_id, Status.VERIFICATION_PENDING, Event.VERIFICATION_REQUESTED,
                                    {"category": classification.category.value})]
    if classification.queue is Queue.PAPER:
        return [bounced, to_paper(statement_id, "content_rejected")]
    return [bounced, *retry_or_paper(statement_id, attempts=attempts, policy=policy, now=now,
                                     reason=reason, rng=rng, cutoff=cutoff)]


def retry_or_paper(
    statement_id: str, *, attempts: int, policy: RetryPolicy, now: datetime, reason: str,
    rng: random.Random | None = None, cutoff: datetime | None = None,
) -> list[Transition]:
    """Schedule another attempt, or hand the statement to paper when attempts or time run out."""
    if attempts >= policy.max_attempts:
        return [to_paper(statement_id, "retries_exhausted")]
    when = policy.next_attempt(attempts, now, rng or random.Random(statement_id))
    if cutoff is not None and when >= cutoff:
        return [to_paper(statement_id, "retry_past_cutoff")]
    return [Transition(statement_id, Status.RETRY_SCHEDULED, Event.RETRY_SCHEDULED,
                       {"attempt": attempts, "not_before": iso(when), "reason": reason[:200]},
                       {"next_attempt_at": iso(when), "last_reason": reason[:200]})]


def to_paper(statement_id: str, why: str, **detail: Any) -> Transition:
    return Transition(statement_id, Status.PAPER_QUEUED, Event.PAPER_QUEUED, {"reason": why, **detail},
                      {"paper_reason": why})


def deciding_outcome(
    recipients: Sequence[RecipientOutcome], email_domain: str | None
) -> RecipientOutcome | None:
    """The outcome that decides for a one-recipient statement.

    Our messages have one recipient, but a report can name several (aliases, forwarding):
    outcomes at the statement's own domain come first, then the most severe queue.
    """
    if not recipients:
        return None
    domain = (email_domain or "").lower()

    def rank(item: tuple[int, RecipientOutcome]) -> tuple[int, int, int]:
        index, outcome = item
        same_domain = bool(domain) and outcome.recipient.rpartition("@")[2] == domain
        return (int(same_domain), QUEUE_SEVERITY[outcome.classification.queue], -index)

    return max(enumerate(recipients), key=rank)[1]


def is_sender_caused(category: Category | str | None) -> bool:
    """Blocked, rate limited, authentication/TLS: our side's fault; retry elsewhere."""
    from pipeline.outcomes.classify import PoolAction, pool_action

    if not category:
        return False
    try:
        return pool_action(Category(category)) is not PoolAction.NONE
    except ValueError:
        return False
