"""The finance report's tables: one list of named, typed tables that the HTML page, the CSV
files and the workbook all write, so the three never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pipeline.report.figures import Figures, money

Kind = Literal["text", "int", "money", "price", "rate"]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    kind: Kind = "int"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


T, N, M, P, R = "text", "int", "money", "price", "rate"


def _c(key: str, label: str, kind: str = N) -> Column:
    return Column(key, label, kind)  # type: ignore[arg-type]


def tables(f: Figures) -> list[Table]:
    totals = f.totals()
    summary = [{"figure": key.replace("_", " "), "value": value} for key, value in totals.items()]
    cost_rows = [*f.costs, {"channel": "total", "rate": "", "unit": "", "unit_price": None,
                            "quantity": None, "amount": money(f.cost_micros()), "from": "", "to": ""}]
    rate_cols = (_c("messages", "messages"), _c("accepted", "accepted"), _c("bounced", "bounced"),
                 _c("complained", "complaints"), _c("bounce_rate", "bounce rate", R),
                 _c("complaint_rate", "complaint rate", R))
    return [
        Table("summary", "Summary", (_c("figure", "figure", T), _c("value", "value", T)), summary),
        Table("channels", "Statements by channel and status",
              (_c("channel", "channel", T), _c("status", "status", T), _c("statements", "statements")),
              f.states),
        Table("costs", "Cost by channel and rate",
              (_c("channel", "channel", T), _c("rate", "rate", T), _c("unit", "unit", T),
               _c("unit_price", "unit price", P), _c("quantity", "quantity"), _c("amount", "amount", M),
               _c("from", "first day", T), _c("to", "last day", T)), cost_rows),
        Table("email_pools", "Email by pool", (_c("pool", "pool", T), *rate_cols), f.email_by_pool),
        Table("email_providers", "Email by mailbox provider", (_c("provider", "provider", T), *rate_cols),
              f.email_by_provider),
        Table("bounce_categories", "Bounces by category",
              (_c("category", "category", T), _c("bounces", "bounces")), f.bounce_categories),
        Table("email_daily", "Email per day, by pool and provider",
              (_c("day", "day", T), _c("group", "by", T), _c("name", "name", T), *rate_cols),
              f.email_daily),
        Table("queues", "Queues by days waiting",
              (_c("queue", "queue", T), _c("age_bucket", "days waiting", T), _c("statements", "statements")),
              f.queues),
        Table("paper", "Paper pieces",
              (_c("kind", "kind", T), _c("mail_class", "mail class", T),
               _c("weight_class", "weight class", T), _c("pieces", "pieces"), _c("sheets", "sheets")),
              f.paper),
        Table("deadline", "Statements not settled, by run",
              (_c("run_id", "run", T), _c("deadline_at", "delivery deadline", T),
               _c("days_left", "days left"), _c("unsettled", "statements")), f.deadline),
        Table("checks", "Reconciliation checks",
              (_c("ok", "passed", T), _c("name", "check", T), _c("detail", "detail", T)),
              [{"ok": "yes" if c.ok else "NO", "name": c.name, "detail": c.detail} for c in f.checks]),
        Table("alerts", "Alerts",
              (_c("kind", "alert", T), _c("scope", "where", T), _c("detail", "detail", T)),
              [{"kind": a.kind, "scope": a.scope, "detail": a.detail} for a in f.alerts]),
    ]


def shown(value: Any, kind: str) -> str:
    """A cell as text (HTML and CSV): money to the cent, rates as percentages."""
    if value is None or value == "":
        return ""
    if kind == "money":
        return f"{Decimal(value):,.2f}"
    if kind == "price":
        return f"{Decimal(value):.6f}".rstrip("0").rstrip(".")
    if kind == "rate":
        return f"{float(value):.2%}"
    if kind == "int" and isinstance(value, int):
        return f"{value}"
    return str(value)
