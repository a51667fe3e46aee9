"""A fake ``pipeline.clock.Clock`` for pacing tests: time passes only when a test (or a wait) says.
(No tests in this module.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock that only moves when told to; ``sleep`` advances it instead of waiting.

    ``now`` is the monotonic reading in seconds; the wall time is ``start`` plus that reading.
    """

    def __init__(self, now: float = 0.0,
                 start: datetime = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)) -> None:
        self.now = now
        self._start = start

    def utc_now(self) -> datetime:
        return self._start + timedelta(seconds=self.now)

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
