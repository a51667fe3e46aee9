"""Daily finance and deliverability report for the month to date, complete days only: the run of
day D reports the month of D - 1 up to and including D - 1 (the run on the 1st completes the
previous month). The month's day facts are rebuilt from the ledger, then the HTML, CSV and XLSX
written (docs/finance.md).

Wiring only: the task calls one function of `pipeline.stages`; heavy imports happen inside it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="eob_reports",
    description="Finance and deliverability report for the month to yesterday, rebuilt from the ledger",
    schedule="30 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["eob", "reports"],
    default_args={"retries": 2},
    params={
        "day": Param(None, type=["null", "string"], format="date",
                     description="Run as on this day, YYYY-MM-DD (default: the logical date); the report "
                                 "covers the month of the day before, up to and including it"),
    },
)
def eob_reports() -> None:
    @task
    def month_to_date(params: dict | None = None, logical_date=None) -> dict:  # type: ignore[no-untyped-def]
        from pipeline.stages import day_for_run, finance_daily_stage, open_context

        return finance_daily_stage(open_context(), day_for_run((params or {}).get("day"), logical_date))

    month_to_date()


eob_reports()
