"""Rate limiters on an injected clock, so pacing is testable without sleeping.

A token bucket paces a stream smoothly (a whole IP pool, or one provider on a pool);
a sliding window is the hard cap a provider states as "at most N messages per second", which
a bucket with any burst cannot promise for every window on its own.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable

from pipeline.clock import Clock

_EPSILON = 1e-9  # float noise: a wait this short is no wait (a fake clock could not advance it)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._stamp = now

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on; tokens earned so far were earned at the old rate."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._refill()
        self.rate = float(rate)

    @property
    def tokens(self) -> float:
        """Tokens available now (for tests and metrics)."""
        self._refill()
        return self._tokens

    def take(self, n: float = 1.0) -> float:
        """Reserve ``n`` tokens now (the balance may go negative) and return the wait.

        Reserving instead of polling gives concurrent senders distinct slots in arrival
        order, so many waiters never wake at once and overshoot the rate.
        """
        if n > self.burst:
            raise ValueError("cannot acquire more tokens than the burst capacity")
        self._refill()
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """Wait for one token; ``sleep`` is injectable for tests."""
        wait = self.take()
        if wait > 0:
            await sleep(wait)


class SlidingWindow:
    """At most ``limit`` starts in any span of ``window`` seconds, measured at the start.

    Checking and recording happen without an ``await`` in between, so asyncio tasks sharing
    one window cannot both pass the same check.
    """

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._starts: deque[float] = deque(maxlen=limit)

    @classmethod
    def per_second(cls, max_per_second: float, clock: Clock, guard: float = 0.0) -> SlidingWindow:
        """The cap "``max_per_second`` a second", as a whole number of messages per window.

        ``guard`` lengthens the window a little so that network jitter between our clock and
        the receiver's cannot make two starts that were 1.000 s apart land in one second there.
        """
        return cls(max(1, math.floor(max_per_second)), 1.0 + guard, clock)

    def wait(self) -> float:
        """Seconds until one more start is allowed (0.0: now)."""
        if len(self._starts) < self.limit:
            return 0.0
        delay = self._starts[0] + self.window - self._clock.monotonic()
        return delay if delay > _EPSILON else 0.0

    def record(self) -> None:
        self._starts.append(self._clock.monotonic())

    async def admit(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """Wait until a start is allowed, then record it (check and record are atomic)."""
        while (delay := self.wait()) > 0:
            await sleep(delay)
        self.record()
