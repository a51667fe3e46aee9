"""Small helpers shared by the CLI and the DAGs (no Airflow imports)."""

from __future__ import annotations

from datetime import date, datetime

from pipeline.periods import parse_period


def period_for_run(requested: str | None, logical_date: datetime | date | None) -> str:
    """The period asked for, else the calendar month before the run's logical date."""
    if requested:
        parse_period(requested)
        return requested
    anchor = logical_date or date.today()
    year, month = (anchor.year, anchor.month - 1) if anchor.month > 1 else (anchor.year - 1, 12)
    return f"{year:04d}-{month:02d}"
