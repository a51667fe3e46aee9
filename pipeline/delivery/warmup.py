"""Warm-up caps for a young IP pool, counted in sending days, and the quota they leave.

A provider builds trust in an IP from the mail it actually sees. EOB runs are monthly bursts:
an IP that sent on the 3rd and the 4th and then idled until the next month is on its third
sending day on the 3rd of that month, not its thirty-second. So the day number is
``1 + the number of earlier days on which the pool sent at least the plan's minimum``, read
from the ledger's usage counters, never from a calendar.

The quota is reserved in the ledger *before* messages go out (in small chunks), and unused
reservations are given back at the end. A crash therefore leaves the counters slightly high,
never low: the caps err on the side of the IP's reputation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.delivery.pools import WarmupPlan


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps for one sending day; ``None`` means no warm-up cap applies."""

    day: int
    daily: int | None
    hourly: int | None

    @property
    def warm(self) -> bool:
        return self.daily is None and self.hourly is None


def sending_day(days_with_mail_before_today: int) -> int:
    """Today's warm-up day number (1-based) from the count of earlier sending days."""
    if days_with_mail_before_today < 0:
        raise ValueError("a count of days cannot be negative")
    return days_with_mail_before_today + 1


def caps_for(plan: WarmupPlan | None, day: int) -> Caps:
    """The step in force on sending day ``day``; warm after the last step's hold."""
    if plan is None:
        return Caps(day, None, None)
    last = plan.steps[-1]
    if day >= last.day + plan.hold_days:
        return Caps(day, None, None)
    step = max((s for s in plan.steps if s.day <= day), key=lambda s: s.day)
    return Caps(day, step.daily, step.hourly)


def allowance(caps: Caps, sent_today: int, sent_this_hour: int) -> int | None:
    """Messages still allowed now (``None``: unlimited)."""
    left = [cap - used for cap, used in ((caps.daily, sent_today), (caps.hourly, sent_this_hour))
            if cap is not None]
    return max(0, min(left)) if left else None


class Quota:
    """A count of messages the sender may still start, reserved ahead in chunks.

    ``reserve(n)`` is called before the n messages are used (the caller persists it);
    ``release(n)`` gives back what was reserved and not used, at the end.
    """

    def __init__(
        self, limit: int | None, *, reserve: Callable[[int], None] = lambda n: None,
        release: Callable[[int], None] = lambda n: None, chunk: int = 50,
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit cannot be negative")
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.limit = limit
        self.used = 0
        self.reserved = 0
        self._reserve = reserve
        self._release = release
        self._chunk = chunk
        self._closed = False

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def try_take(self) -> bool:
        """Take one message's worth; False when the cap is reached."""
        if self._closed:
            raise RuntimeError("quota already closed")
        if self.exhausted:
            return False
        if self.used >= self.reserved:
            n = self._chunk if self.limit is None else min(self._chunk, self.limit - self.reserved)
            self._reserve(n)
            self.reserved += n
        self.used += 1
        return True

    def close(self) -> int:
        """Give back the unused reservation; returns how many were released."""
        if self._closed:
            return 0
        self._closed = True
        unused = self.reserved - self.used
        if unused:
            self._release(unused)
        return unused
