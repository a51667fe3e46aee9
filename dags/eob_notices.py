"""Prompt notices of adverse benefit determinations: every notice still due drawn, encrypted and
delivered (email through the IP pools, else the paper queue that eob_paper batches), each move
and the day it leaves recorded in the ledger.

Runs every morning, and also as soon as a monthly run's compose has flagged claims (the asset its
compose task emits), so a monthly run's notices leave the same day. One run at a time; a run
with nothing due does nothing.

Wiring only: the task calls one function of `pipeline.stages`; heavy imports happen inside it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

PROMPT_NOTICES = Asset("eob://ledger/prompt-notices")
"""Emitted by eob_monthly's compose task: claims may have been flagged for a prompt notice."""


@dag(
    dag_id="eob_notices",
    description="Prompt notices of adverse benefit determinations whose monthly statement would be "
    "late: drawn, encrypted, emailed through the IP pools or queued for paper, recorded",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 7 * * *", timezone="UTC"),
                                 assets=PROMPT_NOTICES),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["eob", "notices"],
    # the delay between tries is Airflow's [core] default_task_retry_delay (300 s unless set)
    default_args={"retries": 2},
    params={
        "day": Param(None, type=["null", "string"], format="date",
                     description="The day the run is for, YYYY-MM-DD (default: the run's logical date); "
                     "every notice still due is taken"),
        "dry_run": Param(False, type="boolean",
                         description="Plan (how many by email, how many on paper) and send nothing"),
    },
)
def eob_notices() -> None:
    @task(pool="eob_notices")
    def send_notices(params: dict | None = None, logical_date=None) -> dict:  # type: ignore[no-untyped-def]
        from pipeline.stages import (
            NeedsOperator,
            day_for_run,
            notices_stage,
            open_context,
            operator_failure,
            relay_credentials,
        )

        try:
            ctx = open_context()
            return notices_stage(ctx, day_for_run((params or {}).get("day"), logical_date),
                                 dry_run=bool((params or {}).get("dry_run")),
                                 credentials=lambda pool: relay_credentials(ctx.settings, pool))
        except NeedsOperator as exc:  # a notice that cannot be drawn, a configuration that cannot run
            raise operator_failure(exc) from None

    send_notices()


eob_notices()
