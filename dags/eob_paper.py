"""Daily paper run: the print vendor's files applied, the day's print batches made and delivered,
then the checks that alert on a batch the vendor never acknowledged or a statement not mailed.

Wiring only: every task calls one library function; heavy imports happen inside tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="eob_paper",
    description="Print batches for the paper queue, delivered to the print vendor; the vendor's "
    "acknowledgements and tracking applied; unacknowledged batches and late mail alerted",
    schedule="0 18 * * *",  # after EOB_PAPER_CUTOFF_HOUR (17 UTC by default)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["eob", "paper"],
    # the delay between tries is Airflow's [core] default_task_retry_delay (300 s unless set)
    default_args={"retries": 2},
    params={
        "day": Param(None, type=["null", "string"], format="date",
                     description="Batch day YYYY-MM-DD (default: the run's logical date)"),
        "dry_run": Param(False, type="boolean",
                         description="Plan the batches (pieces, address exceptions) and deliver nothing"),
    },
)
def eob_paper() -> None:
    @task
    def read_vendor_files() -> dict:
        from pipeline.stages import NeedsOperator, open_context, operator_failure, paper_vendor_files_stage

        try:
            return paper_vendor_files_stage(open_context())
        except NeedsOperator as exc:
            raise operator_failure(exc) from None

    @task(pool="eob_paper")
    def make_batches(vendor_files: dict, params: dict | None = None,  # type: ignore[no-untyped-def]
                     logical_date=None) -> dict:
        from pipeline.stages import (
            NeedsOperator,
            open_context,
            operator_failure,
            paper_batch_stage,
            paper_day,
        )

        try:
            return paper_batch_stage(open_context(), paper_day((params or {}).get("day"), logical_date),
                                     dry_run=bool((params or {}).get("dry_run")))
        except NeedsOperator as exc:  # the drop refused a batch in a way no retry fixes
            raise operator_failure(exc) from None

    @task
    def check_paper(batches: dict) -> dict:
        from pipeline.stages import NeedsOperator, open_context, operator_failure, paper_checks_stage

        try:
            return paper_checks_stage(open_context())
        except NeedsOperator as exc:  # unacknowledged batches or late mail: alert
            raise operator_failure(exc) from None

    check_paper(make_batches(read_vendor_files()))


eob_paper()
