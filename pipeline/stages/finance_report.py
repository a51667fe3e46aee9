"""Finance report stages: rebuild the day facts from the ledger, then write the finance and
deliverability report (HTML with charts, CSV, XLSX) for a period's run or a month."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pipeline.stages.context import Context


def _thresholds(ctx: Context) -> Any:
    from pipeline.report.figures import Thresholds

    return Thresholds(bounce_rate=ctx.settings.report_bounce_review_rate,
                      complaint_rate=ctx.settings.report_complaint_review_rate,
                      deadline_warn_days=ctx.settings.report_deadline_warn_days)


def _written(figures: Any, paths: dict[str, Any], days: int) -> dict[str, Any]:
    from pipeline.report import disagreements

    return {"scope": figures.scope, "key": figures.key, "days_rebuilt": days, "as_of": figures.as_of,
            **{k: str(v) for k, v in figures.totals().items()},
            "alerts": len(figures.alerts), "failed_checks": disagreements(figures.checks),
            **{k: str(v) for k, v in paths.items()}}


def finance_period_stage(ctx: Context, period: str, *, rebuild: bool = True) -> dict[str, Any]:
    """A period's run over its whole life so far: its days' facts rebuilt, then its report."""
    return period_figures(ctx, period, rebuild=rebuild)[1]


def period_figures(ctx: Context, period: str, *, rebuild: bool = True) -> tuple[Any, dict[str, Any]]:
    """The period's finance figures (facts rebuilt first) and its written report's result: the
    report stage prices the run report with the same figures."""
    from pipeline.report.facts import rebuild_period
    from pipeline.report.figures import for_period
    from pipeline.report.finance_html import write_finance_report

    days = rebuild_period(ctx.ledger, period, deadline_hours=ctx.settings.delivery_deadline_hours) \
        if rebuild else 0
    figures = for_period(ctx.ledger, period, _thresholds(ctx))
    return figures, _written(figures, write_finance_report(figures, ctx.settings.reports_dir), days)


def finance_month_stage(ctx: Context, month: str, *, through: date | None = None,
                        rebuild: bool = True) -> dict[str, Any]:
    """Every run's activity in a calendar month (to `through`, the month to date): facts, report."""
    from pipeline.report.facts import rebuild_month
    from pipeline.report.figures import for_month
    from pipeline.report.finance_html import write_finance_report

    days = rebuild_month(ctx.ledger, month, through=through,
                         deadline_hours=ctx.settings.delivery_deadline_hours) if rebuild else 0
    figures = for_month(ctx.ledger, month, _thresholds(ctx), as_of=through)
    return _written(figures, write_finance_report(figures, ctx.settings.reports_dir), days)


def finance_daily_stage(ctx: Context, day: str) -> dict[str, Any]:
    """The scheduled daily report, for complete days only: the month of the day before `day`
    (the run's logical date) up to and including that day, so the run on the 1st completes the
    previous month."""
    through = date.fromisoformat(day) - timedelta(days=1)
    return finance_month_stage(ctx, through.strftime("%Y-%m"), through=through)
