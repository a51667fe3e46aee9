"""Token bucket on an injected clock, so pacing is testable without sleeping.

One bucket paces a whole IP pool: receiving providers judge a sending IP by its rate, so the
limit belongs to the pool, not to a connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    """The real monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to; ``sleep`` advances it instead of waiting."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)


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

    @property
    def tokens(self) -> float:
        """Tokens available now (for tests and metrics)."""
        self._refill()
        return self._tokens

    def try_acquire(self, n: float = 1.0) -> float:
        """Take ``n`` tokens and return 0.0, or return the wait in seconds and take nothing."""
        if n > self.burst:
            raise ValueError("cannot acquire more tokens than the burst capacity")
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return 0.0
        return (n - self._tokens) / self.rate

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
