"""Report stage: the run's HTML and CSV report, rebuilt from the ledger."""

from __future__ import annotations

from typing import Any

from pipeline.stages.context import Context, run_id_for


def report_stage(ctx: Context, period: str, *, final: bool = False) -> dict[str, Any]:
    """The period's finance report on the facts rebuilt from the ledger, then the run report,
    priced with the same figures (one source for the money: both show the same email cost,
    paper cost and savings).

    `final`: the monthly run's last task, after every other task succeeded: the run is recorded
    as succeeded with its finish time first, so the reports show the run's final state (a
    rebuild by hand, `eob report`, leaves the run's state as it is)."""
    from pipeline.clock import iso
    from pipeline.report import build_report, disagreements, to_act_on, write_report
    from pipeline.stages.finance_report import period_figures

    run_id = run_id_for(period)
    if final:
        ctx.ledger.execute("finish_run", run_id=run_id, state="succeeded", at=iso(ctx.now()))
    figures, finance = period_figures(ctx, period)
    report = build_report(ctx.ledger, run_id, figures.priced())
    paths = write_report(report, ctx.settings.reports_dir)
    return {"run_id": run_id, **report.summary(), "html": str(paths["html"]),
            "csv": str(paths["csv"]), "failed_checks": disagreements(report.checks),
            "attention_checks": to_act_on(report.checks),
            "finance_html": finance["html"], "finance_xlsx": finance["xlsx"],
            "finance_alerts": finance["alerts"], "finance_failed_checks": finance["failed_checks"]}
