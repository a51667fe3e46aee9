"""The report stage: the run's last task records the run as finished before the reports are
written, so they show its final state; a rebuild by hand leaves the state alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.demo.generate import generate_extract
from pipeline.settings import Settings
from pipeline.stages import compose_stage, ingest_stage, open_context, report_stage

PERIOD = "2026-11"


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "ws").mkdir()
    context = open_context(Settings(workspace=tmp_path / "ws", shards=1))
    generate_extract(context.settings.extracts_dir / PERIOD, members=20, period=PERIOD, seed=2)
    ingest_stage(context, PERIOD)
    compose_stage(context, PERIOD)
    yield context
    context.ledger.close()


def test_a_rebuild_by_hand_leaves_a_running_run_running(ctx) -> None:  # type: ignore[no-untyped-def]
    result = report_stage(ctx, PERIOD)
    run = ctx.ledger.fetch_one("get_run", run_id="eob-2026-11")
    assert (run["state"], run["finished_at"]) == ("running", None)
    assert "state running" in Path(result["html"]).read_text()


def test_the_runs_last_task_records_it_finished_before_writing_the_reports(ctx) -> None:  # type: ignore[no-untyped-def]
    result = report_stage(ctx, PERIOD, final=True)
    run = ctx.ledger.fetch_one("get_run", run_id="eob-2026-11")
    assert run["state"] == "succeeded" and run["finished_at"] >= run["started_at"]
    page = Path(result["html"]).read_text()
    assert "state succeeded" in page and "state running" not in page


def test_the_run_report_and_the_finance_report_give_the_same_money(tmp_path: Path) -> None:
    """One source of truth: the run report's email cost, paper cost and savings are the finance
    report's of the same period, priced from the dated rate table (a mid-month price change
    included), in the summary CSV the desk's finance page reads and on both pages."""
    import csv
    from types import SimpleNamespace

    from pipeline.report import figures, run_report
    from tests.report.finance_world import PERIOD as WORLD_PERIOD
    from tests.report.finance_world import sqlite_world

    ledger, _ = sqlite_world(tmp_path)
    try:
        ctx = SimpleNamespace(ledger=ledger, settings=SimpleNamespace(
            reports_dir=tmp_path / "reports", delivery_deadline_hours=21 * 24.0,
            report_bounce_review_rate=0.05, report_complaint_review_rate=0.001,
            report_deadline_warn_days=3))
        result = report_stage(ctx, WORLD_PERIOD)  # type: ignore[arg-type]
        with Path(result["csv"]).open(newline="") as handle:
            run = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
        finance_html = Path(result["finance_html"])
        finance_csv = finance_html.with_name(f"{finance_html.stem}-csv") / "summary.csv"
        with finance_csv.open(newline="") as handle:
            finance = {row["figure"]: row["value"] for row in csv.DictReader(handle)}
    finally:
        ledger.close()
    pairs = {"email_cost_usd": "email cost", "paper_cost_usd": "paper cost",
             "savings_vs_all_paper_usd": "savings"}
    assert {key: run[key] for key in pairs} == {key: finance[name] for key, name in pairs.items()}
    assert all(float(run[key]) > 0 for key in pairs), run  # emails, paper and savings all priced
    page = Path(result["html"]).read_text()
    finance_page = finance_html.read_text()
    for key in pairs:
        assert f"${run[key]}" in page and run[key] in finance_page
    assert run_report.Check is figures.Check  # one reconciliation check for both reports
