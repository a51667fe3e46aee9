"""What the sender takes and what it gives back: one ``Outgoing`` message in, one ``SendResult``
per message out (through the run's ``Reporter``), and the run's ``SendStats``.

Outcomes: ``accepted`` (250), ``rejected`` (5xx for this recipient), ``deferred`` (4xx,
connection trouble, relay unusable) and ``held``: not attempted, or refused because of *us*
(the provider suspended this pool, an operator paused it, the warm-up quota ran out). A held
statement stays queued for a later run without using up one of its attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage

from pipeline.delivery.throttle import ThrottleState

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"
DEFERRED = "deferred"
HELD = "held"


@dataclass(frozen=True, slots=True)
class Outgoing:
    statement_id: str
    recipient: str
    envelope_from: str
    message: EmailMessage | bytes  # bytes: already serialized for SMTP (MessageTemplate)


@dataclass(frozen=True, slots=True)
class SendResult:
    statement_id: str
    outcome: str
    reply_code: int | None
    enhanced_status: str | None
    reply_text: str
    provider: str = ""
    server_reply: str = ""
    pool_fault: bool = False
    """Not sent because the pool could not carry anything (TLS, connection, relay login,
    relaying): not this message's fault, so it must not spend the statement's attempts."""
    """What the server said (code, enhanced status, text; addresses redacted), without any word
    of ours: the only text a refusal is classified by."""


@dataclass(slots=True)
class SendStats:
    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    deferred: int = 0
    held: int = 0
    connections: int = 0
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    rate_cuts: dict[str, int] = field(default_factory=dict)
    suspended: dict[str, str] = field(default_factory=dict)
    throttle_state: dict[str, ThrottleState] = field(default_factory=dict)
    stopped: str | None = None
    pool_down: str | None = None  # why the pool could not deliver at all (its breaker opened)

    def count(self, result: SendResult) -> None:
        per = self.by_provider.setdefault(result.provider, {})
        per[result.outcome] = per.get(result.outcome, 0) + 1
        if result.outcome == HELD:
            self.held += 1
            return
        self.attempted += 1
        if result.outcome == ACCEPTED:
            self.accepted += 1
        elif result.outcome == REJECTED:
            self.rejected += 1
        else:
            self.deferred += 1

    def add(self, other: SendStats) -> None:
        """Fold a later round of the same send task into this one (counts add up; the
        throttle state and why the run stopped are the later round's)."""
        for name in ("attempted", "accepted", "rejected", "deferred", "held", "connections"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for provider, outcomes in other.by_provider.items():
            per = self.by_provider.setdefault(provider, {})
            for outcome, n in outcomes.items():
                per[outcome] = per.get(outcome, 0) + n
        for provider, n in other.rate_cuts.items():
            self.rate_cuts[provider] = self.rate_cuts.get(provider, 0) + n
        self.suspended.update(other.suspended)
        self.throttle_state = dict(other.throttle_state)
        self.stopped = other.stopped
        self.pool_down = other.pool_down or self.pool_down

    def summary(self) -> dict[str, object]:
        """Counts only (no addresses): what a task returns and logs."""
        return {
            "attempted": self.attempted, "accepted": self.accepted, "rejected": self.rejected,
            "deferred": self.deferred, "held": self.held, "connections": self.connections,
            "by_provider": self.by_provider, "rate_cuts": self.rate_cuts,
            "suspended": self.suspended, "stopped": self.stopped, "pool_down": self.pool_down,
        }


class Reporter:
    """The one way a result leaves a run: handed to the caller, then counted."""

    def __init__(self, pool_name: str, on_result: Callable[[SendResult], None]) -> None:
        self.stats = SendStats()
        self._pool_name = pool_name
        self._on_result = on_result

    def report_for(self, provider: str, result: SendResult) -> None:
        self.report(replace(result, provider=provider))

    def report(self, result: SendResult) -> None:
        self._on_result(result)  # the caller commits here; if it raises, the batch stops
        self.stats.count(result)
        log.debug("pool=%s statement=%s outcome=%s code=%s provider=%s", self._pool_name,
                  result.statement_id, result.outcome, result.reply_code, result.provider)
