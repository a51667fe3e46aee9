"""`eob_reports` run by Airflow (`dag.test()`, in a child process whose whole output is the task
log, `tests/support/dag_child.py`) on the finance tests' small ledger (`tests/report/finance_world.py`).

Run as on 2027-01-01, the daily report covers complete days only: it completes December (the
month of the day before), writes its HTML, CSV files and workbook, and its task log counts and
names pools and providers but never a statement or member id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.report.finance_world import build
from tests.support import REPO

pytestmark = pytest.mark.e2e

LEDGER_IDS = ("st-2026-11-", "M00000")  # every statement id and member id of the world starts so


def _dag_run(folder: Path, env: dict[str, str], conf: dict[str, Any]) -> tuple[dict[str, Any], str]:
    child = subprocess.run(
        [sys.executable, str(REPO / "tests" / "support" / "dag_child.py"), str(folder / "airflow"),
         "eob_reports", json.dumps(conf)],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    console = child.stdout + child.stderr
    assert child.returncode == 0, console[-4000:]
    last = next(line for line in reversed(console.splitlines()) if line.startswith("OUTCOME "))
    return json.loads(last[8:]), console


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    folder = tmp_path_factory.mktemp("reports-dag")
    workspace = folder / "ws"
    workspace.mkdir()
    ledger, _ = build(f"sqlite:///{(workspace / 'ledger.sqlite').resolve()}")
    ledger.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOB_")}
    env.update({"EOB_ENVIRONMENT": "demo", "EOB_AIRFLOW_LOG_LEVEL": "INFO",
                "EOB_WORKSPACE": str(workspace)})
    outcome, console = _dag_run(folder, env, {"day": "2027-01-01"})
    return outcome, console, workspace / "reports"


def test_the_daily_run_on_the_1st_writes_the_previous_months_report(run) -> None:  # type: ignore[no-untyped-def]
    outcome, console, reports = run
    assert outcome["state"] == "success", console[-4000:]
    assert outcome["tasks"] == {"month_to_date": {"state": "success", "tries": 1}}
    written = {path.name for path in reports.iterdir()}
    assert {"finance-month-2026-12.html", "finance-month-2026-12.xlsx", "finance-month-2026-12-csv"} \
        <= written, written
    assert not any("2027-01" in name for name in written), written
    assert any((reports / "finance-month-2026-12-csv").glob("*.csv"))
    html = (reports / "finance-month-2026-12.html").read_text()
    assert "2026-12-31" in html  # the month complete, its last day included


def test_the_task_log_holds_no_statement_or_member_id(run) -> None:  # type: ignore[no-untyped-def]
    _, console, _ = run
    assert "task_id=month_to_date" in console, "the task log was not captured"
    assert "finance report 2026-12 bounce rate" in console  # the alerts are logged, by name only
    for leaked in LEDGER_IDS:
        assert leaked not in console, f"{leaked!r} in the task log"
