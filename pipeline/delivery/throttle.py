"""Adaptive throttling per pool × provider: slow down when told, stop when told to stop.

A provider that answers "too fast" (421 4.7.28, "rate limited", "try again later") wants less
mail from this IP *now*; one that answers "blocked" (a block list, bad reputation, failed
authentication, Yahoo's TSS04) will not take anything for a while and counts every further
attempt against us. So each provider lane of a pool has:

- an AIMD rate: each throttling reply multiplies the rate by ``decrease`` (never below the
  floor), and every ``recover_every_seconds`` without one the rate climbs back by
  ``recover_fraction`` of the configured rate until it is whole again; replies arriving
  within ``cooldown_seconds`` of a decrease belong to the same burst and count once;
- a suspension: a blocking reply (or an operator's pause) closes the lane until it expires;
  the sender makes no attempt on a closed lane.

Everything here is pure and runs on an injected clock: the tests need no sleeps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from pipeline.clock import Clock
from pipeline.delivery.limits import SlidingWindow, TokenBucket
from pipeline.outcomes import Category, classify


class Feedback(StrEnum):
    NONE = "none"
    THROTTLE = "throttle"
    SUSPEND = "suspend"


_BY_CATEGORY: dict[Category, Feedback] = {
    Category.RATE_LIMITED: Feedback.THROTTLE,
    Category.BLOCKED: Feedback.SUSPEND,
    Category.SECURITY: Feedback.SUSPEND,
}
"""Sender-caused categories of the shared classifier and what they mean for the lane."""

SUSPEND_MARKERS: tuple[str, ...] = ("tss04", "ts03", "ts02", "4.7.650", "5.7.606", "5.7.511")
"""Provider codes that mean "stop sending from this IP for a while" whatever the category
(Yahoo's temporary deferral for volume or complaints, Microsoft's banned/blocked IP)."""


def feedback_for(reply_code: int | None, enhanced_status: str | None, text: str) -> Feedback:
    """What one refusal says about our sending, as opposed to the recipient."""
    if reply_code is None and enhanced_status is None:
        return Feedback.NONE
    lowered = text.lower()
    if any(marker in lowered for marker in SUSPEND_MARKERS):
        return Feedback.SUSPEND
    category = classify(reply_code, enhanced_status, text).category
    return _BY_CATEGORY.get(category, Feedback.NONE)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The one named policy for adaptive throttling and suspensions."""

    decrease: float = 0.5
    floor_fraction: float = 0.05
    min_rate: float = 0.1
    recover_fraction: float = 0.1
    recover_every_seconds: float = 60.0
    cooldown_seconds: float = 5.0
    suspend_seconds: float = 3600.0
    suspend_after: int = 2
    """Suspending replies on one lane before it is suspended: a single message's refusal may be
    about that message however it is worded; a second confirms it is about our sending."""

    def __post_init__(self) -> None:
        if not 0 < self.decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        if not 0 < self.floor_fraction <= 1 or not 0 < self.recover_fraction <= 1:
            raise ValueError("floor_fraction and recover_fraction must be in (0, 1]")
        if self.recover_every_seconds <= 0 or self.suspend_seconds <= 0:
            raise ValueError("durations must be positive")
        if self.suspend_after < 1:
            raise ValueError("suspend_after must be at least 1")

    def floor(self, configured: float) -> float:
        return min(configured, max(self.min_rate, configured * self.floor_fraction))


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """What survives between send tasks: the rate right after the last cut, and its age."""

    rate_after_decrease: float
    seconds_since_decrease: float


class AdaptiveRate:
    """Multiplicative decrease with a floor, stepwise recovery; a pure function of the clock."""

    def __init__(
        self, configured: float, policy: ThrottlePolicy, clock: Clock,
        state: ThrottleState | None = None,
    ) -> None:
        if configured <= 0:
            raise ValueError("configured rate must be positive")
        self.configured = float(configured)
        self.policy = policy
        self._clock = clock
        self._low: float | None = None
        self._cut_at = 0.0
        if state is not None:
            self._low = max(policy.floor(self.configured),
                            min(self.configured, state.rate_after_decrease))
            self._cut_at = clock.monotonic() - max(0.0, state.seconds_since_decrease)

    def current(self) -> float:
        if self._low is None:
            return self.configured
        elapsed = self._clock.monotonic() - self._cut_at
        steps = math.floor(elapsed / self.policy.recover_every_seconds)
        rate = self._low + steps * self.policy.recover_fraction * self.configured
        if rate >= self.configured:
            self._low = None  # fully recovered: forget the cut
            return self.configured
        return rate

    def decrease(self) -> bool:
        """Cut the rate; False when this reply belongs to a burst already answered."""
        now = self._clock.monotonic()
        if self._low is not None and now - self._cut_at < self.policy.cooldown_seconds:
            return False
        self._low = max(self.policy.floor(self.configured), self.current() * self.policy.decrease)
        self._cut_at = now
        return True

    def state(self) -> ThrottleState | None:
        """None once the rate has recovered (nothing to remember)."""
        self.current()
        if self._low is None:
            return None
        return ThrottleState(self._low, self._clock.monotonic() - self._cut_at)


class LaneLimiter:
    """The pacing of one provider lane on one pool: adaptive bucket + hard per-second window.

    The bucket (burst 1: providers see no bursts) follows the adaptive rate; the window
    enforces the provider's stated per-second cap in every window even when the bucket
    would allow a little more after a pause. Without a hard cap (``hard_cap=False``: the
    provider has no limit of its own) only the adaptive bucket paces the lane.

    Under a hard cap the bucket paces at 95 % of it: a message that leaves a few milliseconds
    late (the event loop was busy) must not let the next ones bunch up inside one of the
    receiver's seconds; the window then only binds in exceptional cases.
    """

    WINDOW_GUARD_SECONDS = 0.02
    CAP_HEADROOM = 0.95  # pace a little under a hard cap, so jitter rarely meets the window

    def __init__(
        self, max_per_second: float, policy: ThrottlePolicy, clock: Clock,
        state: ThrottleState | None = None, *, hard_cap: bool = True,
    ) -> None:
        pace = max_per_second * self.CAP_HEADROOM if hard_cap else max_per_second
        self.adaptive = AdaptiveRate(pace, policy, clock, state)
        self._bucket = TokenBucket(self.adaptive.current(), 1.0, clock)
        self._hard_cap = hard_cap
        self._window = (
            SlidingWindow.per_second(max_per_second, clock, self.WINDOW_GUARD_SECONDS)
            if hard_cap else None
        )

    @property
    def rate(self) -> float:
        return self.adaptive.current()

    def reserve(self) -> float:
        """Reserve the next slot at the current adaptive rate; returns the wait in seconds.

        A lane without a cap of its own is not paced at all until a provider cuts it: the
        pool's bucket (which may catch up a little after a late message) sets the pace.
        """
        rate = self.adaptive.current()
        self._bucket.set_rate(rate)
        if not self._hard_cap and rate >= self.adaptive.configured:
            return 0.0
        return self._bucket.take()

    async def admit(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """The hard cap, checked right before a transaction starts."""
        if self._window is not None:
            await self._window.admit(sleep)

    def throttled(self) -> bool:
        """A throttling reply arrived: cut the rate (once per burst)."""
        cut = self.adaptive.decrease()
        if cut:
            self._bucket.set_rate(self.adaptive.current())
        return cut
