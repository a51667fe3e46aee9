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
