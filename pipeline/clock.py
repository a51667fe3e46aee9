"""Time is injected: business logic asks a clock, tests hand it a fake one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Now = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Sortable ISO-8601 text in UTC: the ledger's portable timestamp format."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware UTC time is required")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
