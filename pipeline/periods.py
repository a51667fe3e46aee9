"""Statement periods are calendar months written YYYY-MM."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BadPeriod(ValueError):
    pass


def parse_period(period: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM period."""
    match = _PERIOD.match(period)
    if not match:
        raise BadPeriod(f"period {period!r} is not a month written YYYY-MM, e.g. 2026-11")
    first = date(int(match[1]), int(match[2]), 1)
    return first, next_month(first) - timedelta(days=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def statement_date(period: str) -> date:
    """Statements for a period are dated the first day of the following month."""
    return next_month(parse_period(period)[0])


def period_for_run(requested: str | None, logical_date: datetime | date | None) -> str:
    """The period asked for, else the calendar month before the run's logical date."""
    if requested:
        parse_period(requested)
        return requested
    anchor = logical_date or date.today()
    year, month = (anchor.year, anchor.month - 1) if anchor.month > 1 else (anchor.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def day_for_run(requested: str | None, logical_date: datetime | date | None) -> str:
    """The day asked for (YYYY-MM-DD), else the run's logical date, else today (UTC): the day a
    daily run (print batches, prompt notices) is for."""
    if requested:
        return date.fromisoformat(requested).isoformat()
    anchor = logical_date or datetime.now(UTC)
    return (anchor.date() if isinstance(anchor, datetime) else anchor).isoformat()
