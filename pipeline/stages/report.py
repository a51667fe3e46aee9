"""Report stage: the run's HTML and CSV report, rebuilt from the ledger."""

from __future__ import annotations

from typing import Any

from pipeline.stages.context import Context, run_id_for


def report_stage(ctx: Context, period: str, *, final: bool = False) -> dict[str, Any]:
    """The run report, then the period's finance report on the facts rebuilt from the ledger.

    `final`: the monthly run's last task, after every other task succeeded: the run is recorded
    as succeeded with its finish time first, so the reports show the run's final state (a
    rebuild by hand, `eob report`, leaves the run's state as it is)."""
    from pipeline.clock import iso
    from pipeline.report import build_report, write_report
    from pipeline.stages.finance_report import finance_period_stage

    run_id = run_id_for(period)
    if final:
        ctx.ledger.execute("finish_run", run_id=run_id, state="succeeded", at=iso(ctx.now()))
    report = build_report(ctx.ledger, run_id, ctx.settings.email_cost_cents,
                          ctx.settings.paper_cost_cents)
    paths = write_report(report, ctx.settings.reports_dir)
    failed = [check.name for check in report.checks if not check.ok]
    finance = finance_period_stage(ctx, period)
    return {"run_id": run_id, **report.summary(), "html": str(paths["html"]),
            "csv": str(paths["csv"]), "failed_checks": failed,
            "finance_html": finance["html"], "finance_xlsx": finance["xlsx"],
            "finance_alerts": finance["alerts"], "finance_failed_checks": finance["failed_checks"]}
