"""Frequent reconciliation: outcomes → retry / verification / paper queues, due retries and
verified resends sent, and the delivery-deadline sweeper.

Wiring only: every task calls one library function; heavy imports happen inside tasks.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="eob_reconcile",
    description="Route bounces into retry, verification and paper queues; send due retries; "
    "enforce the delivery deadline",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["eob", "reconcile"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
)
def eob_reconcile() -> None:
    @task
    def collect_bounces() -> dict:
        from pipeline.stages import NeedsOperator, open_context, operator_failure, reconcile_stage

        try:
            return reconcile_stage(open_context())
        except NeedsOperator as exc:  # e.g. a configuration that cannot run: fail now
            raise operator_failure(exc) from None

    @task
    def sweep_deadlines(bounces: dict) -> dict:
        from pipeline.stages import open_context, sweep_stage

        return sweep_stage(open_context())

    @task
    def requeue_due_retries(swept: dict) -> list[str]:
        from pipeline.stages import open_context, pool_names, requeue_due_stage, resend_verified_stage

        ctx = open_context()
        requeue_due_stage(ctx)
        resend_verified_stage(ctx)
        return pool_names(ctx)

    @task(pool="eob_send", retries=3)
    def send_retries(pool_name: str) -> dict:
        from pipeline.stages import (
            NeedsOperator,
            open_context,
            operator_failure,
            relay_credentials,
            send_stage,
        )

        try:
            ctx = open_context()
            return send_stage(ctx, pool_name, credentials=relay_credentials(ctx.settings, pool_name))
        except NeedsOperator as exc:  # the pool's relays cannot be used: its statements moved
            raise operator_failure(exc) from None

    send_retries.expand(pool_name=requeue_due_retries(sweep_deadlines(collect_bounces())))


eob_reconcile()
