"""Time is injected: business logic asks a clock, tests hand it a fake one.

Two readings for two uses. The wall clock (aware UTC) stamps what the ledger records; the
monotonic clock paces sending, because wall time can jump (NTP, a VM resumed) and a pacing
wait must not. A ``Clock`` gives both, and the wait itself, so a fake one can run a whole send
batch without sleeping. Code that only stamps takes a ``Now``: ``utc_now`` or a test's own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

Now = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Sortable ISO-8601 text in UTC: the ledger's portable timestamp format."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware UTC time is required")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def moment(value: datetime | str) -> datetime:
    """A ledger timestamp (`iso` text, or a datetime a driver already parsed) as a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class Clock(Protocol):
    """The wall time, a monotonic reading in seconds, and a wait that yields to the event loop."""

    def utc_now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class SystemClock:
    """The real clocks."""

    def utc_now(self) -> datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> Awaitable[None]:
        """asyncio's own sleep, returned rather than awaited: no extra frame on the send path."""
        return asyncio.sleep(seconds)
