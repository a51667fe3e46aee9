"""Finance and deliverability facts, rebuilt per day from the ledger's events.

A day's facts are small aggregate rows (status moves, email outcomes, queue ageing, print
pieces, costs, deadline risk; `sql/migrations/018_report_facts.sql`) computed in SQL from that
day's events, never from rows loaded into Python. A rebuild covers a run of consecutive days
with one set-based query per kind of fact (a month of a million statements is a few passes over
its events, not a few per day). Rebuilding days deletes their rows and inserts them again in one
transaction: re-running it replaces them, and any past day can be recomputed. Costs are priced
at the rates valid on the day (`templates/rates.csv`), so a past month keeps its own prices.

A day's statuses and deadline facts sum the status moves of the days before it, so every
rebuild is widened back to the first day of the runs active in it (`widened`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from pipeline.clock import moment
from pipeline.ledger import Ledger, query
from pipeline.periods import parse_period
from pipeline.storage import run_id_for
from pipeline.templates import TEMPLATES_DIR

RATES_FILE = TEMPLATES_DIR / "rates.csv"
PROVIDERS_FILE = TEMPLATES_DIR / "mail_providers.csv"
DEFAULT_DEADLINE_HOURS = 21 * 24.0
OPEN_ENDED = "9999-12-31"
MICROS = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Rate:
    """One price: `amount` dollars per `unit` of `rate`, for days in [valid_from, valid_to)."""

    rate: str
    unit: str
    valid_from: str
    valid_to: str
    amount: Decimal

    @property
    def micros(self) -> int:
        return int(self.amount * MICROS)


def read_rates(path: Path = RATES_FILE) -> list[Rate]:
    """The dated rate table; two rows of one rate may not overlap (a day has one price)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rates = [Rate(row["rate"].strip(), row["unit"].strip(), row["valid_from"].strip(),
                      row["valid_to"].strip() or OPEN_ENDED, Decimal(row["amount"].strip()))
                 for row in csv.DictReader(handle)]
    by_rate: dict[str, list[Rate]] = {}
    for rate in rates:
        date.fromisoformat(rate.valid_from)
        if rate.valid_to <= rate.valid_from:
            raise ValueError(f"{path.name}: {rate.rate} from {rate.valid_from} ends before it starts")
        by_rate.setdefault(rate.rate, []).append(rate)
    for name, rows in by_rate.items():
        rows.sort(key=lambda r: r.valid_from)
        for earlier, later in zip(rows, rows[1:], strict=False):
            if later.valid_from < earlier.valid_to:
                raise ValueError(f"{path.name}: two prices for {name} on {later.valid_from}")
    return rates


def read_providers(path: Path = PROVIDERS_FILE) -> dict[str, str]:
    """Recipient mail domain → mailbox provider (gmail, yahoo/aol, microsoft, apple); any
    other domain is 'other'."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["domain"].strip().lower(): row["provider"].strip() for row in csv.DictReader(handle)}


def _run(conn: Connection, sql: str, **params: Any) -> int:
    """Run one named query's text (`query(...)`) inside the caller's transaction."""
    return int(conn.execute(text(sql), params).rowcount or 0)


def load_tables(conn: Connection, rates: list[Rate] | None = None,
                providers: dict[str, str] | None = None) -> None:
    """Copy the versioned rate and provider tables into the ledger (inside the caller's
    transaction), so the facts' SQL prices and groups with what is under templates/ now."""
    _run(conn, query("facts_delete_rates"))
    for rate in read_rates() if rates is None else rates:
        _run(conn, query("facts_insert_rate"), rate=rate.rate, unit=rate.unit, valid_from=rate.valid_from,
             valid_to=rate.valid_to, unit_micros=rate.micros)
    _run(conn, query("facts_delete_providers"))
    for domain, provider in (read_providers() if providers is None else providers).items():
        _run(conn, query("facts_insert_provider"), domain=domain, provider=provider)


def rebuild_day(ledger: Ledger, day: date, *, deadline_hours: float = DEFAULT_DEADLINE_HOURS,
                rates: list[Rate] | None = None, providers: dict[str, str] | None = None) -> int:
    """Recompute one UTC day's facts from the ledger (with the days before it back to the first
    day of its active runs, `widened`), in one transaction; returns how many days."""
    first, last = widened(ledger, day, day)
    with ledger.begin() as conn:
        load_tables(conn, rates, providers)
        _rebuild(conn, ledger, first, last, deadline_hours)
    return (last - first).days + 1


def widened(ledger: Ledger, first: date, last: date) -> tuple[date, date]:
    """The days first..last widened back to the first day of every run active in them (one that
    moved a statement on or after `first`, or still has one not settled): a day's statuses and
    deadline facts sum its runs' status moves from their first day, so those days are rebuilt
    too (a partial rebuild, or one day on a fresh ledger, then gives the full build's numbers).
    A run's first day is the UTC day before its start (its start may be in another zone)."""
    row = ledger.fetch_one("facts_first_day_of_active_runs", first=first.isoformat(),
                           range_end=(last + timedelta(days=1)).isoformat()) or {}
    if row.get("first_day"):
        first = min(first, date.fromisoformat(str(row["first_day"])) - timedelta(days=1))
    return first, last


def _rebuild(conn: Connection, ledger: Ledger, first: date, last: date, deadline_hours: float) -> None:
    """Replace the facts of the days [first, last]: each kind of fact by one set-based query for
    all the days (a day's rows are the same whether it is rebuilt alone or within a range)."""
    days = days_between(first, last)
    span = {"first": first.isoformat(), "last": last.isoformat(),
            "range_end": (last + timedelta(days=1)).isoformat()}
    built_at = ledger.now()
    for day in days:
        _run(conn, query("facts_insert_calendar"), day=day.isoformat(),
             day_end=(day + timedelta(days=1)).isoformat(), age_2=(day - timedelta(days=2)).isoformat(),
             age_7=(day - timedelta(days=7)).isoformat(), age_14=(day - timedelta(days=14)).isoformat())
    for delete in (query("facts_delete_state"), query("facts_delete_email"), query("facts_delete_queues"),
                   query("facts_delete_paper"), query("facts_delete_cost"), query("facts_delete_deadline")):
        _run(conn, delete, first=span["first"], last=span["last"])
    _run(conn, query("facts_insert_state"), first=span["first"], range_end=span["range_end"])
    if ledger.engine.dialect.name == "postgresql":
        _run(conn, query("facts_insert_email_postgresql"), first=span["first"], range_end=span["range_end"])
    else:
        _run(conn, query("facts_insert_email_sqlite"), first=span["first"], range_end=span["range_end"])
    _run(conn, query("facts_insert_queues"), **span)
    _run(conn, query("facts_insert_paper"), first=span["first"], last=span["last"])
    _run(conn, query("facts_insert_email_cost"), first=span["first"], last=span["last"])
    _run(conn, query("facts_insert_paper_cost"), first=span["first"], last=span["last"])
    tz = moment(built_at).tzinfo
    for day in days:  # each day's deadline sums the state facts of the days up to it
        iso, end = day.isoformat(), day + timedelta(days=1)
        day_end = datetime.combine(end, datetime.min.time()).replace(tzinfo=tz)
        runs = conn.execute(text(query("facts_runs_started")), {"day_end": end.isoformat()}).mappings()
        for run in list(runs):
            deadline = moment(run["started_at"]) + timedelta(hours=deadline_hours)
            days_left = (deadline - day_end) // timedelta(days=1)
            _run(conn, query("facts_insert_deadline"), day=iso, run_id=run["run_id"],
                 deadline_at=deadline.isoformat(timespec="seconds"), days_left=days_left)
        _run(conn, query("facts_mark_day"), day=iso, built_at=built_at)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def rebuild_days(ledger: Ledger, days: list[date], *, deadline_hours: float = DEFAULT_DEADLINE_HOURS) -> int:
    """Rebuild the days, widened back to the first day of their active runs (`widened`) and with
    any gaps between them filled, in one transaction (a month is a few set-based queries, not a
    pass per day); returns how many days were rebuilt."""
    if not days:
        return 0
    first, last = widened(ledger, min(days), max(days))
    with ledger.begin() as conn:
        load_tables(conn, read_rates(), read_providers())
        _rebuild(conn, ledger, first, last, deadline_hours)
    return (last - first).days + 1


def period_days(ledger: Ledger, period: str, through: date | None = None) -> list[date]:
    """The days a period's run has events on, from its first to its last (or `through`)."""
    span = ledger.fetch_one("facts_run_span", run_id=run_id_for(period)) or {}
    if not span.get("first_day"):
        return []
    last = date.fromisoformat(str(span["last_day"]))
    if through is not None:
        last = max(last, through)
    return days_between(date.fromisoformat(str(span["first_day"])), last)


def rebuild_period(ledger: Ledger, period: str, *, through: date | None = None,
                   deadline_hours: float = DEFAULT_DEADLINE_HOURS) -> int:
    """Rebuild every day the period's run moved a statement (its whole life so far)."""
    return rebuild_days(ledger, period_days(ledger, period, through), deadline_hours=deadline_hours)


def month_days(month: str, through: date | None = None) -> list[date]:
    """The calendar days of a month, up to `through` when it falls inside the month."""
    first, last = parse_period(month)
    if through is not None and first <= through < last:
        last = through
    return days_between(first, last)


def rebuild_month(ledger: Ledger, month: str, *, through: date | None = None,
                  deadline_hours: float = DEFAULT_DEADLINE_HOURS) -> int:
    """Rebuild each day of a calendar month (to date when `through` is in it)."""
    return rebuild_days(ledger, month_days(month, through), deadline_hours=deadline_hours)


def day_rows(ledger: Ledger, day: date) -> list[dict[str, Any]]:
    """Every fact row of a day in a fixed order: what a rebuild must reproduce."""
    return ledger.fetch("facts_rows_for_day", day=day.isoformat())
