"""`eob cluster run`: one `eob_monthly` run on the cluster, through its REST API, reconciled.

The building blocks are separate so that tests and benchmarks can use them: `generate` (the
synthetic extract into the cluster's workspace), `trigger` (unpause, then POST a DAG run with
the period in its conf), `wait_for_run` (poll until it ends, reporting task states),
`task_records` (hostname, start, end, pool and try of every task instance, from the API) and
`summarize` (the run as the PostgreSQL ledger has it, against what the relays received). Only
DAG ids, params, the task ids `render`/`send` and the pools are relied on, never task internals.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.cluster.api import AirflowApi, ApiError
from pipeline.cluster.environment import cluster_environment, settings_in
from pipeline.cluster.relays import relay_counts, settled_relay_counts
from pipeline.cluster.secrets import load_or_create_secrets
from pipeline.cluster.spec import ClusterError, ClusterSpec

DAG_ID = "eob_monthly"
FINISHED = {"success", "failed"}
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task instance as Airflow recorded it (map_index -1 when not mapped)."""

    task_id: str
    map_index: int
    state: str | None
    hostname: str
    start: datetime | None
    end: datetime | None
    pool: str
    try_number: int

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _record(ti: dict[str, Any]) -> TaskRecord:
    return TaskRecord(str(ti["task_id"]), int(ti.get("map_index", -1)), ti.get("state"),
                      str(ti.get("hostname") or ""), _when(ti.get("start_date")),
                      _when(ti.get("end_date")), str(ti.get("pool") or ""),
                      int(ti.get("try_number") or 0))


def task_records(api: AirflowApi, run_id: str, dag_id: str = DAG_ID) -> list[TaskRecord]:
    """Every task instance of the run, as its latest try left it."""
    return [_record(ti) for ti in api.task_instances(dag_id, run_id)]


def task_tries(api: AirflowApi, run_id: str, task_id: str, map_index: int = -1,
               dag_id: str = DAG_ID) -> list[TaskRecord]:
    """Every try of one task instance, oldest first: where each ran and how it ended (a try
    whose worker died shows the heartbeat timeout's `failed` and the dead worker's host)."""
    return [_record(ti) for ti in api.task_instance_tries(dag_id, run_id, task_id, map_index)]


def generate(spec: ClusterSpec, *, period: str, members: int, seed: int) -> Any:
    """A synthetic extract for `period` in the cluster's extract folder (replacing one there)."""
    from pipeline.demo.generate import generate_extract

    settings = cluster_settings(spec)
    folder = settings.extracts_dir / period
    if folder.exists():
        shutil.rmtree(folder)
    return generate_extract(folder, members=members, period=period, seed=seed)


def cluster_settings(spec: ClusterSpec) -> Any:
    """The pipeline settings the cluster's workers run with."""
    return settings_in(cluster_environment(spec, load_or_create_secrets(spec.paths.secrets_file)))


def trigger(api: AirflowApi, conf: dict[str, Any], *, dag_id: str = DAG_ID,
            wait_seconds: float = 120.0) -> str:
    """Unpause the DAG (once the dag-processor has registered it) and start a run with `conf`;
    returns the run id."""
    deadline = time.monotonic() + wait_seconds
    while api.dag(dag_id) is None:
        if time.monotonic() > deadline:
            raise ClusterError(f"{dag_id} is not registered: `eob cluster check` shows import errors")
        time.sleep(2.0)
    api.set_paused(dag_id, False)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return str(api.trigger(dag_id, conf, run_id=f"eob-cluster-{conf.get('period')}-{stamp}")["dag_run_id"])


def progress_line(records: list[TaskRecord]) -> str:
    """`3 tasks done · render 2 running, 2 success · send 2 running`: the tasks still going,
    with their instances' states, after how many tasks are finished."""
    by_task: dict[str, Counter[str]] = {}
    for record in records:
        by_task.setdefault(record.task_id, Counter())[record.state or "waiting"] += 1
    done = [task for task, states in by_task.items() if set(states) <= {"success", "skipped"}]
    going = [f"{task} " + ", ".join(f"{n} {state}" if n > 1 or len(states) > 1 else state
                                    for state, n in sorted(states.items()))
             for task, states in by_task.items() if task not in done]
    return " · ".join([f"{len(done)} of {len(by_task)} tasks done", *going])


FAILING = "failing"
"""What `wait_for_run(fail_fast=True)` returns for a run that is still going but can no longer
succeed: a task instance failed with no try left (and its downstream are upstream_failed)."""
OUT_OF_TRIES = {"failed", "upstream_failed"}


def wait_for_run(api: AirflowApi, run_id: str, *, timeout: float, dag_id: str = DAG_ID,
                 on_progress: Say | None = None, poll_seconds: float = 3.0,
                 fail_fast: bool = False) -> str:
    """Poll until the run ends; returns its final state. `on_progress` gets a line whenever the
    task states change. Polls every `poll_seconds`, less often as the run grows longer (up to
    every MAX_POLL_SECONDS). TimeoutError (the run keeps going) when it has not ended in time.
    `fail_fast`: return `FAILING` as soon as a task instance has failed for good, rather than
    wait for the tasks still running (the monthly senders follow the render for up to
    EOB_SEND_FOLLOW_IDLE_SECONDS before they give up on a shard that will never come)."""
    started = time.monotonic()
    deadline, last = started + timeout, ""
    while True:
        state = str(api.dag_run(dag_id, run_id)["state"])
        records = task_records(api, run_id, dag_id) if on_progress or fail_fast else []
        if on_progress is not None:
            line = progress_line(records)
            if line != last:
                on_progress(line)
                last = line
        if state in FINISHED:
            return state
        if fail_fast and any(record.state in OUT_OF_TRIES for record in records):
            return FAILING
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s; it goes "
                               "on: watch it in the Airflow UI or with `eob cluster status`")
        # every poll is two API requests on the cluster's own cores: a long run is polled less often
        time.sleep(min(MAX_POLL_SECONDS, max(poll_seconds, (time.monotonic() - started) / 20)))


MAX_POLL_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the ledger and the relays counted before a run, so that a re-run of a period is
    reconciled on what this run added."""

    accepted_by_relay: int
    relays: dict[str, int]


@dataclass(frozen=True, slots=True)
class RunSummary:
    period: str
    statuses: dict[str, int]
    report: dict[str, Any]
    accepted_by_relay: int  # this run's, from the ledger
    relays_received: dict[str, int]  # this run's, per pool, as the relays recorded them
    failed_checks: list[str] = field(default_factory=list)  # the figures disagree
    attention_checks: list[str] = field(default_factory=list)  # someone must act; all accounted for

    @property
    def reconciled(self) -> bool:
        return (self.accepted_by_relay == sum(self.relays_received.values())
                and not self.failed_checks)


def _ledger_report(spec: ClusterSpec, period: str
                   ) -> tuple[dict[str, int], dict[str, Any], list[str], list[str]]:
    from pipeline.ledger import Ledger
    from pipeline.report import build_report, disagreements, to_act_on
    from pipeline.storage import run_id_for

    ledger = Ledger.open(spec.ledger_url, migrate=False)
    try:
        run_id = run_id_for(period)
        if ledger.fetch_one("get_run", run_id=run_id) is None:
            return {}, {}, [], []
        report = build_report(ledger, run_id)  # counts and checks only: the run's task priced it
        return (ledger.status_counts(run_id), report.summary(), disagreements(report.checks),
                to_act_on(report.checks))
    finally:
        ledger.close()


def baseline(spec: ClusterSpec, period: str) -> Baseline:
    _, report, _, _ = _ledger_report(spec, period)
    return Baseline(int(report.get("accepted_by_relay", 0)), relay_counts(spec.dir))


def summarize(spec: ClusterSpec, period: str, before: Baseline, *, ended_at: float) -> RunSummary:
    """The run from the ledger, and what the relays received since `before` (counts written
    after `ended_at`, a wall-clock time, so none still in flight is missed)."""
    statuses, report, failed, attention = _ledger_report(spec, period)
    after = settled_relay_counts(spec.dir, after=ended_at) if spec.demo_relays else {}
    received = {pool: n - before.relays.get(pool, 0) for pool, n in after.items()}
    accepted = int(report.get("accepted_by_relay", 0)) - before.accepted_by_relay
    return RunSummary(period, statuses, report, accepted, received, failed, attention)


@dataclass(frozen=True, slots=True)
class MonthlyResult:
    run_id: str
    state: str
    seconds: float
    summary: RunSummary
    tasks: list[TaskRecord]

    @property
    def ok(self) -> bool:
        return self.state == "success" and self.summary.reconciled


def run_monthly(spec: ClusterSpec, api: AirflowApi, *, period: str, members: int, seed: int,
                dry_run: bool = False, timeout: float = 1800.0, say: Say = print,
                fail_fast: bool = False) -> MonthlyResult:
    """Generate, trigger, wait, summarize: one whole monthly run on the cluster (`fail_fast`:
    see `wait_for_run`)."""
    extract = generate(spec, period=period, members=members, seed=seed)
    say(f"extract: {extract.members} members, {extract.claim_lines} claim lines in {extract.folder}")
    before = baseline(spec, period)
    started = time.monotonic()
    try:
        run_id = trigger(api, {"period": period, "dry_run": dry_run})
    except ApiError as exc:
        raise ClusterError(f"could not trigger {DAG_ID}: {exc}") from None
    say(f"triggered {DAG_ID} run {run_id}")
    state = wait_for_run(api, run_id, timeout=timeout, fail_fast=fail_fast,
                         on_progress=lambda line: say(f"{time.monotonic() - started:6.0f}s  {line}"))
    seconds = time.monotonic() - started
    summary = summarize(spec, period, before, ended_at=time.time())
    return MonthlyResult(run_id, state, seconds, summary, task_records(api, run_id))
