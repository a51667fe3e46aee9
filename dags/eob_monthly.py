"""Monthly EOB run: wait for the extract → ingest → compose → render (per shard, in parallel)
and, at the same time, send (per IP pool) → report.

Each render shard routes its statements batch by batch as it stores them, and each pool's send
task, started with the renders, sends what has been routed to it round after round until the
run has nothing left to route: rendering and sending overlap. `route` after the last shard
routes anything a shard left rendered. `report` runs last, after every other task succeeded: it
records the run as finished, then writes the run report and the period's finance report.

Wiring only: every task calls one function of `pipeline.stages`. Heavy imports happen inside
tasks so parsing this file stays cheap.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, PokeReturnValue, dag, task

LEDGER = Asset("eob://ledger/statements")
REPORTS = Asset("eob://reports/monthly")
EXTRACT_POKE_INTERVAL = timedelta(hours=1)
EXTRACT_WAIT_TIMEOUT = timedelta(days=3)


@dag(
    dag_id="eob_monthly",
    description="Monthly Explanation of Benefits statements, end to end",
    schedule="0 6 3 * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["eob", "monthly"],
    # the delay between tries is Airflow's [core] default_task_retry_delay (300 s unless set)
    default_args={"retries": 2},
    params={
        "period": Param(
            None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Statement month YYYY-MM; empty means the month before the run date",
        ),
        "dry_run": Param(False, type="boolean", description="Render and route, but send nothing"),
    },
)
def eob_monthly() -> None:
    @task
    def choose_period(params: dict | None = None, logical_date=None) -> str:  # type: ignore[no-untyped-def]
        from pipeline.stages import period_for_run

        return period_for_run((params or {}).get("period"), logical_date)

    @task.sensor(mode="reschedule", poke_interval=EXTRACT_POKE_INTERVAL, timeout=EXTRACT_WAIT_TIMEOUT)
    def wait_for_extract(period: str) -> PokeReturnValue:
        """The period's extract (local folder or S3 prefix): poked hourly, the worker slot freed in
        between; when it has not arrived within the timeout the task fails and is not retried."""
        from pipeline.stages import NeedsOperator, extract_ready_stage, open_context, operator_failure

        try:
            ready = extract_ready_stage(open_context(), period)
        except NeedsOperator as exc:  # e.g. a configuration that cannot run: fail now
            raise operator_failure(exc) from None
        return PokeReturnValue(is_done=ready, xcom_value=period)

    @task
    def ingest(period: str) -> dict:
        from pipeline.stages import NeedsOperator, ingest_stage, open_context, operator_failure

        try:
            return ingest_stage(open_context(), period)
        except NeedsOperator as exc:  # a refused extract: fail now, with what to do
            raise operator_failure(exc) from None

    @task(outlets=[Asset("eob://ledger/prompt-notices")])  # eob_notices sends the flagged claims' notices
    def compose(period: str, ingested: dict) -> list[int]:
        from pipeline.stages import NeedsOperator, compose_stage, open_context, operator_failure

        try:
            ctx = open_context()
            compose_stage(ctx, period)
        except NeedsOperator as exc:  # e.g. a corrected extract that would withdraw too much
            raise operator_failure(exc) from None
        return list(range(ctx.settings.shards))

    @task(pool="eob_render")
    def render(shard: int, period: str) -> dict:
        from pipeline.stages import NeedsOperator, open_context, operator_failure, render_stage

        try:
            return render_stage(open_context(), period, shard, route=True)
        except NeedsOperator as exc:  # e.g. the period's latest ingest failed
            raise operator_failure(exc) from None

    @task
    def ip_pools() -> list[str]:
        from pipeline.stages import open_context, pool_names

        return pool_names(open_context())

    @task(outlets=[LEDGER])
    def route(period: str, rendered: list[dict]) -> dict:
        from pipeline.stages import open_context, route_stage

        return route_stage(open_context(), period)

    @task(pool="eob_send", retries=3)
    def send(pool_name: str, period: str, params: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
        """Sends the pool's queue while the run renders (see the module docstring); waits for
        another sender of the pool (e.g. a killed try's lease) rather than end early."""
        from pipeline.stages import (
            NeedsOperator,
            open_context,
            operator_failure,
            relay_credentials,
            run_id_for,
            send_stage,
        )

        try:
            ctx = open_context()
            return send_stage(ctx, pool_name, dry_run=bool((params or {}).get("dry_run")),
                              credentials=relay_credentials(ctx.settings, pool_name),
                              follow_run=run_id_for(period), wait_if_busy=True)
        except NeedsOperator as exc:  # the pool's relays cannot be used: its statements moved
            raise operator_failure(exc) from None

    @task(outlets=[REPORTS])
    def report(period: str, routed: dict, sent: list[dict]) -> dict:
        from pipeline.stages import open_context, report_stage

        return report_stage(open_context(), period, final=True)

    period = choose_period()
    extract = wait_for_extract(period)
    shards = compose(period, ingest(extract))
    pools = ip_pools()
    extract >> pools  # read while the extract is ingested: the senders start with the renders
    rendered = render.partial(period=period).expand(shard=shards)
    sent = send.partial(period=period).expand(pool_name=pools)
    shards >> sent  # the run exists before its senders start following it
    report(period, route(period, rendered), sent)

eob_monthly()
