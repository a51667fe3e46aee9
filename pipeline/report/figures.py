"""A finance report's figures, read from the day facts (`pipeline.report.facts`).

Two scopes: one period's run over its whole life (`for_period`), or every run's activity in one
calendar month (`for_month`: the runs that moved a statement in the month, and every run with
statements still queued or not settled at its end, even one with no move that month). Every
figure is an aggregate (counts, rates, money by channel, pool, provider, queue); no statement,
claim or member id is ever read here, so the outputs can go to finance as they are. The checks
compare the facts with one another and with the ledger's own counts, and the alerts compare
rates with the review thresholds.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pipeline.ledger import Ledger, Status
from pipeline.ledger.statuses import EMAILED, PAPER
from pipeline.periods import parse_period
from pipeline.report.checks import Check
from pipeline.report.facts import MICROS, read_rates
from pipeline.storage import run_id_for

log = logging.getLogger(__name__)

CHANNEL_GROUPS: dict[str, frozenset[str]] = {
    "email": frozenset(s.value for s in EMAILED),
    "paper": frozenset(s.value for s in PAPER),
    "not sent": frozenset({Status.FAILED.value, Status.SUPERSEDED.value}),
}
"""How a statement left, by its status: by email (accepted by the member's mail server), on
paper (queued for print to mailed), not at all (failed or superseded); any other status is
'in progress' (still being composed, sent, retried or verified)."""
IN_PROGRESS = "in progress"
QUEUE_STATUSES = {"retry": Status.RETRY_SCHEDULED.value, "verification": Status.VERIFICATION_PENDING.value,
                  "paper": Status.PAPER_QUEUED.value}
AGE_BUCKETS = ("0-2", "3-7", "8-14", "15+")


def channel_of(status: str) -> str:
    return next((name for name, members in CHANNEL_GROUPS.items() if status in members), IN_PROGRESS)


def money(micros: int) -> Decimal:
    """Dollars, to the cent, from millionths of a dollar."""
    return (Decimal(micros) / MICROS).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Thresholds:
    bounce_rate: float = 0.05
    complaint_rate: float = 0.001
    deadline_warn_days: int = 3


@dataclass(frozen=True, slots=True)
class Costs:
    """A report's money, priced from the dated rate table (`templates/rates.csv`): what email and
    paper cost, and what was saved against sending every statement on paper. The run report shows
    its period's, so both reports give the same amounts."""

    email: Decimal
    paper: Decimal
    savings: Decimal
    as_of: str  # the last day of facts priced


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    scope: str
    detail: str


@dataclass(slots=True)
class Figures:
    title: str
    scope: str  # "period" or "month"
    key: str  # the period or month, YYYY-MM
    first: str
    as_of: str
    runs: list[str]
    thresholds: Thresholds
    states: list[dict[str, Any]] = field(default_factory=list)  # channel, status, statements
    email_by_pool: list[dict[str, Any]] = field(default_factory=list)
    email_by_provider: list[dict[str, Any]] = field(default_factory=list)
    bounce_categories: list[dict[str, Any]] = field(default_factory=list)
    email_daily: list[dict[str, Any]] = field(default_factory=list)  # day, group, name, messages, rates
    queues: list[dict[str, Any]] = field(default_factory=list)  # queue, age bucket, statements
    paper: list[dict[str, Any]] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)  # channel, rate, unit, price, qty, amount
    deadline: list[dict[str, Any]] = field(default_factory=list)  # run, deadline, days left, unsettled
    ledger_queue_counts: dict[str, int] | None = None
    ledger_statements: int | None = None
    checks: list[Check] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    all_paper_piece_micros: int = 0

    # -- totals every output shows the same way --------------------------------------------
    @property
    def statements(self) -> int:
        return sum(row["statements"] for row in self.states)

    def by_channel(self) -> dict[str, int]:
        totals = {name: 0 for name in (*CHANNEL_GROUPS, IN_PROGRESS)}
        for row in self.states:
            totals[row["channel"]] += row["statements"]
        return totals

    def cost_micros(self, channel: str | None = None) -> int:
        return sum(row["amount_micros"] for row in self.costs if channel in (None, row["channel"]))

    @property
    def paper_pieces(self) -> int:
        return sum(row["pieces"] for row in self.paper)

    @property
    def accepted(self) -> int:
        return sum(row["accepted"] for row in self.email_by_pool)

    def all_paper_micros(self) -> int:
        """What the same statements would have cost had every emailed one gone on paper: the paper
        actually spent plus each message accepted at the average paper piece's cost."""
        return self.cost_micros("paper") + self.accepted * self.all_paper_piece_micros

    def queue_totals(self) -> dict[str, int]:
        totals = {name: 0 for name in QUEUE_STATUSES}
        for row in self.queues:
            totals[row["queue"]] += row["statements"]
        return totals

    def priced(self) -> Costs:
        """The email, paper and savings amounts every report shows (the totals' own)."""
        totals = self.totals()
        return Costs(totals["email_cost"], totals["paper_cost"], totals["savings"], self.as_of)

    def totals(self) -> dict[str, Any]:
        """The headline numbers: the same in the HTML, the CSV and the workbook."""
        channels = self.by_channel()
        return {
            "statements": self.statements, "emailed": channels["email"], "on_paper": channels["paper"],
            "in_progress": channels[IN_PROGRESS], "not_sent": channels["not sent"],
            "messages_accepted": self.accepted,
            "bounces": sum(row["bounced"] for row in self.email_by_pool),
            "complaints": sum(row["complained"] for row in self.email_by_pool),
            "paper_pieces": self.paper_pieces, "paper_sheets": sum(row["sheets"] for row in self.paper),
            "email_cost": money(self.cost_micros("email")), "paper_cost": money(self.cost_micros("paper")),
            "total_cost": money(self.cost_micros()), "all_paper_cost": money(self.all_paper_micros()),
            "savings": money(self.all_paper_micros() - self.cost_micros()),
            **{f"queue_{name}": n for name, n in self.queue_totals().items()},
            "unsettled": sum(row["unsettled"] for row in self.deadline),
            "within_warn_days": sum(row["unsettled"] for row in self.deadline
                                    if row["days_left"] <= self.thresholds.deadline_warn_days),
            "past_deadline": sum(row["unsettled"] for row in self.deadline if row["days_left"] < 0),
        }


def for_period(ledger: Ledger, period: str, thresholds: Thresholds, *, as_of: date | None = None) -> Figures:
    """One period's run, from its first day to `as_of` (default: the last day built)."""
    run_id = run_id_for(period)
    return _figures(ledger, "period", period, run_id, "0000-00-00", as_of, thresholds,
                    f"Statements of {period} ({run_id})")


def for_month(ledger: Ledger, month: str, thresholds: Thresholds, *, as_of: date | None = None) -> Figures:
    """Every run's activity in one calendar month (the month to date when `as_of` is in it)."""
    first, last = parse_period(month)
    end = min(last, as_of) if as_of else last
    return _figures(ledger, "month", month, "", first.isoformat(), end, thresholds,
                    f"All runs, {month}" + (" (month to date)" if end < last else ""))


def _figures(ledger: Ledger, scope: str, key: str, run_id: str, first: str, as_of: date | None,
             thresholds: Thresholds, title: str) -> Figures:
    wanted = (as_of or date(9999, 12, 31)).isoformat()
    built = (ledger.fetch_one("figures_last_built_day", last=wanted) or {}).get("day")
    last = str(built) if built else wanted
    params = {"run_id": run_id, "first": first, "last": last}
    queue_rows = ledger.fetch("figures_queues", run_id=run_id, day=last)
    deadline_rows = ledger.fetch("figures_deadline", run_id=run_id, day=last)
    if scope == "period":
        runs = [run_id]
    else:  # runs that moved a statement in the month, and any still waiting at its end
        runs = sorted({row["run_id"] for row in ledger.fetch("figures_runs_in_scope", **params)}
                      | {row["run_id"] for row in (*queue_rows, *deadline_rows)})
    figures = Figures(title, scope, key, first, last, runs, thresholds)
    _states(figures, ledger.fetch("figures_state", **params))
    _email(figures, ledger.fetch("figures_email", **params))
    figures.queues = [{"run_id": row["run_id"], "queue": row["queue"], "age_bucket": row["age_bucket"],
                       "statements": int(row["n"])}
                      for row in queue_rows if row["run_id"] in runs]
    figures.queues = _merge_runs(figures.queues, ("queue", "age_bucket"), ("statements",))
    figures.paper = [{key: (int(v) if key in ("pieces", "sheets") else v) for key, v in row.items()}
                     for row in ledger.fetch("figures_paper", **params)]
    figures.costs = [_cost_row(row) for row in ledger.fetch("figures_cost", **params)]
    figures.deadline = [{"run_id": row["run_id"], "deadline_at": str(row["deadline_at"]),
                         "days_left": int(row["days_left"]), "unsettled": int(row["unsettled"])}
                        for row in deadline_rows if row["run_id"] in runs]
    figures.all_paper_piece_micros = _paper_piece_micros(figures, last)
    _ledger_counts(figures, ledger, run_id, last)
    figures.checks = checks(figures)
    figures.alerts = alerts(figures)
    return figures


def _states(figures: Figures, rows: list[dict[str, Any]]) -> None:
    """Statements in each status at the end of the last day: moves in minus moves out."""
    per: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["run_id"] not in figures.runs:
            continue
        per[row["to_status"]] += int(row["n"])
        if row["from_status"]:
            per[row["from_status"]] -= int(row["n"])
    figures.states = [{"channel": channel_of(status), "status": status, "statements": n}
                      for status, n in sorted(per.items(), key=lambda kv: (channel_of(kv[0]), kv[0])) if n]


def _email(figures: Figures, rows: list[dict[str, Any]]) -> None:
    pools: dict[str, dict[str, int]] = {}
    providers: dict[str, dict[str, int]] = {}
    daily: dict[tuple[str, str, str], dict[str, int]] = {}
    categories: dict[str, int] = defaultdict(int)
    for row in rows:
        outcome, n = row["outcome"], int(row["n"])
        keys = ((pools, row["pool"] or "(none)"), (providers, row["provider"]))
        for table, name in keys:
            table.setdefault(name, _outcomes())[outcome] += n
        for group, name in (("pool", row["pool"] or "(none)"), ("provider", row["provider"])):
            daily.setdefault((str(row["day"]), group, name), _outcomes())[outcome] += n
        if outcome in ("bounced", "rejected"):
            categories[row["category"]] += n
    figures.email_by_pool = [{"pool": name, **_rates(c)} for name, c in sorted(pools.items())]
    figures.email_by_provider = [{"provider": name, **_rates(c)} for name, c in sorted(providers.items())]
    figures.email_daily = [{"day": day, "group": group, "name": name, **_rates(c)}
                           for (day, group, name), c in sorted(daily.items())]
    figures.bounce_categories = [{"category": name, "bounces": n}
                                 for name, n in sorted(categories.items(), key=lambda kv: -kv[1])]


def _outcomes() -> dict[str, int]:
    return {"accepted": 0, "bounced": 0, "rejected": 0, "complained": 0}


def _rates(c: dict[str, int]) -> dict[str, Any]:
    """Bounce rate: bounces (after acceptance or while sending) over messages attempted
    (accepted + rejected while sending); complaint rate: complaints over messages accepted."""
    attempted = c["accepted"] + c["rejected"]
    bounced = c["bounced"] + c["rejected"]
    return {"messages": attempted, "accepted": c["accepted"], "bounced": bounced,
            "complained": c["complained"],
            "bounce_rate": bounced / attempted if attempted else 0.0,
            "complaint_rate": c["complained"] / c["accepted"] if c["accepted"] else 0.0}


def _merge_runs(rows: list[dict[str, Any]], keys: tuple[str, ...],
                values: tuple[str, ...]) -> list[dict[str, Any]]:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        into = merged.setdefault(key, {**{k: row[k] for k in keys}, **{v: 0 for v in values}})
        for v in values:
            into[v] += row[v]
    order = {b: i for i, b in enumerate(AGE_BUCKETS)}
    return sorted(merged.values(), key=lambda r: (r.get("queue", ""), order.get(r.get("age_bucket", ""), 9)))


def _cost_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"channel": row["channel"], "rate": row["rate"], "unit": row["unit"],
            "unit_price": Decimal(int(row["unit_micros"])) / MICROS, "quantity": int(row["quantity"]),
            "amount_micros": int(row["amount_micros"]), "amount": money(int(row["amount_micros"])),
            "from": str(row["first_day"]), "to": str(row["last_day"])}


def _paper_piece_micros(figures: Figures, last: str) -> int:
    """The average cost of a printed piece this report, or, with none printed, a one-sheet
    first-class letter at the rates of the last day."""
    if figures.paper_pieces:
        return figures.cost_micros("paper") // figures.paper_pieces
    day = last if last < "9999" else date.today().isoformat()
    wanted = {"print": 1, "envelope": 1, "vendor_handling": 1, "postage:first:1oz": 1}
    return sum(rate.micros * wanted[rate.rate] for rate in read_rates()
               if rate.rate in wanted and rate.valid_from <= day < rate.valid_to)


def _ledger_counts(figures: Figures, ledger: Ledger, run_id: str, last: str) -> None:
    """The ledger's own statement and queue counts, when nothing has moved since the last day
    (otherwise they describe a later moment and cannot be compared)."""
    since = (date.fromisoformat(last) + timedelta(days=1)).isoformat() if last < "9999" else last
    if int((ledger.fetch_one("figures_moves_since", since=since) or {}).get("n") or 0):
        return
    rows = [row for row in ledger.fetch("figures_ledger_statements", run_id=run_id)
            if row["run_id"] in figures.runs]
    figures.ledger_statements = sum(int(row["n"]) for row in rows)
    figures.ledger_queue_counts = {queue: sum(int(row["n"]) for row in rows if row["status"] == status)
                                   for queue, status in QUEUE_STATUSES.items()}


def checks(figures: Figures) -> list[Check]:
    """The reconciliation checks: a failed one is shown on the report, never hidden."""
    channels = figures.by_channel()
    counted = sum(channels.values())
    found: list[Check] = []
    detail = " + ".join(f"{n} {name}" for name, n in channels.items()) + f" = {counted}"
    if figures.ledger_statements is not None:
        detail += f"; the ledger holds {figures.ledger_statements}"
    found.append(Check("every statement counted once, in one channel",
                       all(row["statements"] >= 0 for row in figures.states)
                       and figures.ledger_statements in (None, counted), detail))
    total = figures.cost_micros()
    by_channel = {ch: figures.cost_micros(ch) for ch in sorted({row["channel"] for row in figures.costs})}
    rows_ok = all(row["amount_micros"] == row["quantity"] * int(row["unit_price"] * MICROS)
                  for row in figures.costs)
    found.append(Check("cost rows sum to the total (quantity × unit price, each row)",
                       rows_ok and sum(by_channel.values()) == total,
                       " + ".join(f"{money(v)} {k}" for k, v in by_channel.items()) + f" = {money(total)}"))
    priced = sum(row["quantity"] for row in figures.costs if row["rate"] == "email")
    pieces = figures.paper_pieces
    sheets = sum(row["sheets"] for row in figures.paper)
    per_piece = {r: sum(row["quantity"] for row in figures.costs if row["rate"] == r)
                 for r in ("envelope", "vendor_handling")}
    postage = sum(row["quantity"] for row in figures.costs if row["rate"].startswith("postage:"))
    printed = sum(row["quantity"] for row in figures.costs if row["rate"] == "print")
    found.append(Check("every message and piece priced at a rate valid on its day",
                       priced == figures.accepted and printed == sheets and postage == pieces
                       and all(n == pieces for n in per_piece.values()),
                       f"{priced} of {figures.accepted} messages, {printed} of {sheets} sheets, "
                       f"{postage} of {pieces} pieces' postage"))
    queues = figures.queue_totals()
    moved = {queue: sum(row["statements"] for row in figures.states if row["status"] == status)
             for queue, status in QUEUE_STATUSES.items()}
    ok = queues == moved and figures.ledger_queue_counts in (None, queues)
    detail = ", ".join(f"{queue} {n}" for queue, n in queues.items())
    ledger_counts = figures.ledger_queue_counts
    detail += "; the ledger: " + (", ".join(f"{q} {n}" for q, n in ledger_counts.items())
                                  if ledger_counts is not None else "moved on since (not compared)")
    found.append(Check("queue counts equal the ledger's", ok, detail))
    return found


def alerts(figures: Figures) -> list[Alert]:
    """Rates at or over the review thresholds, and statements within a day of their deadline;
    logged with names and counts only."""
    t = figures.thresholds
    found: list[Alert] = []
    for group, rows in (("pool", figures.email_by_pool), ("provider", figures.email_by_provider)):
        for row in rows:
            name = row[group]
            if row["messages"] and row["bounce_rate"] >= t.bounce_rate:
                found.append(Alert("bounce rate", f"{group} {name}",
                                   f"{row['bounce_rate']:.2%} of {row['messages']} messages bounced "
                                   f"(review at {t.bounce_rate:.2%})"))
            if row["accepted"] and row["complaint_rate"] >= t.complaint_rate:
                found.append(Alert("complaint rate", f"{group} {name}",
                                   f"{row['complaint_rate']:.3%} of {row['accepted']} messages drew a "
                                   f"complaint (review at {t.complaint_rate:.3%})"))
    for row in figures.deadline:  # days_left: whole days from the end of the report's day
        if row["days_left"] < 1:  # the deadline is less than 24 hours after the day's end
            where = "past" if row["days_left"] < 0 else "within a day of"
            found.append(Alert("deadline", f"run {row['run_id']}",
                               f"{row['unsettled']} statements not settled, {where} the delivery "
                               f"deadline {row['deadline_at']}"))
    for alert in found:
        log.warning("finance report %s %s: %s: %s", figures.key, alert.kind, alert.scope, alert.detail)
    return found
