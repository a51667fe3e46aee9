"""A month of 20,000 members on a cluster of 2 Celery workers × 2 slots, 4 render shards and 2
IP pools, through the REST API, judged on Airflow's own records and on the ledger.

What an operator relies on: the shards ran on both workers at once, the Airflow pools held
render and send to their slots while send overlapped render, every statement ended emailed, on
paper or in a named queue, what the ledger says the relays accepted is what they received, and
`down` leaves no process behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from pipeline.cluster import ClusterSpec, lifecycle
from pipeline.cluster.monthly import MonthlyResult, TaskRecord, run_monthly
from pipeline.cluster.processes import read_pid_file, running
from tests.cluster.conftest import (
    FINAL_STATUSES,
    Received,
    intervals,
    leftover_processes,
    overlaps,
    peak_concurrency,
    received,
    run_statement_ids,
    running_cluster,
    sent_events,
    task_failures,
)

pytestmark = pytest.mark.cluster

MEMBERS = 20_000
SHARDS = 4
PERIOD = "2026-06"


@dataclass(frozen=True, slots=True)
class ScaleRun:
    spec: ClusterSpec
    result: MonthlyResult
    pool_slots: dict[str, int]
    received: Received
    sent_events: int
    generate_seconds: float


@pytest.fixture(scope="module")
def big_cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[ClusterSpec]:
    with running_cluster(tmp_path_factory.mktemp("scale"), shards=SHARDS) as spec:
        yield spec


@pytest.fixture(scope="module")
def scale_run(big_cluster: ClusterSpec) -> ScaleRun:
    spec = big_cluster
    api = lifecycle.api_for(spec)
    started = time.monotonic()
    result = run_monthly(spec, api, period=PERIOD, members=MEMBERS, seed=2026, timeout=900,
                         say=lambda line: print(f"  {line}"), fail_fast=True)
    for failure in task_failures(spec, result.run_id):
        print(f"  a try failed: {failure}")
    total = time.monotonic() - started
    slots = {name: int(pool["slots"]) for name, pool in api.pools().items()}
    got = received(spec, run_statement_ids(spec, PERIOD), settled_after=time.time())
    run = ScaleRun(spec, result, slots, got, sent_events(spec, PERIOD), total - result.seconds)
    _print_timings(run)
    return run


def _print_timings(run: ScaleRun) -> None:
    result = run.result
    tasks = [t for t in result.tasks if t.start]
    origin = min(t.start for t in tasks if t.start)

    def at(moment: datetime | None) -> str:
        return f"{(moment - origin).total_seconds():6.1f}" if moment else "     -"

    print(f"\n{MEMBERS} members, {SHARDS} shards: generated in {run.generate_seconds:.0f} s; "
          f"eob_monthly {result.state} {result.seconds:.0f} s after the trigger")
    for t in sorted(tasks, key=lambda t: (t.start, t.label)):
        took = (t.end - t.start).total_seconds() if t.end and t.start else 0.0
        print(f"  {t.label:<22} {t.hostname:<28} {t.pool:<13} try {t.try_number}  "
              f"start {at(t.start)} s  end {at(t.end)} s  ({took:.1f} s)")
    renders, sends = intervals(result.tasks, "render"), intervals(result.tasks, "send")
    if renders:
        span = (max(e for _, e in renders) - min(s for s, _ in renders)).total_seconds()
        statements = int(result.summary.report.get("statements", 0))
        print(f"  render: {span:.0f} s from the first shard's start to the last one's end, "
              f"{statements / span:.0f} statements/s")
    if sends:
        span = (max(e for _, e in sends) - min(s for s, _ in sends)).total_seconds()
        print(f"  send: {span:.0f} s; relays received {run.received.total} "
              f"({', '.join(f'{p} {sum(c.values())}' for p, c in sorted(run.received.by_pool.items()))})")


def _of(run: ScaleRun, task_id: str) -> list[TaskRecord]:
    return [t for t in run.result.tasks if t.task_id == task_id]


def test_the_month_succeeds_through_the_api(scale_run: ScaleRun) -> None:
    assert scale_run.result.state == "success", [(t.label, t.state) for t in scale_run.result.tasks]
    renders, sends = _of(scale_run, "render"), _of(scale_run, "send")
    assert sorted(t.map_index for t in renders) == list(range(SHARDS))
    assert len(sends) == 2
    assert all(t.state == "success" for t in scale_run.result.tasks)
    # nothing had to be retried: each shard and each pool's sender did it in its first try
    assert [t.try_number for t in renders + sends] == [1] * (SHARDS + 2)


def test_render_shards_ran_in_parallel_and_the_run_used_both_workers(scale_run: ScaleRun) -> None:
    """Celery places the tasks: when both pools' senders land on one worker they hold its two
    slots for the whole run and every shard renders on the other, so the renders are shown to
    run side by side and the run's tasks to span both workers."""
    renders, sends = _of(scale_run, "render"), _of(scale_run, "send")
    hosts = {t.hostname for t in renders + sends}
    assert len(hosts) == 2 and all(h.endswith(("-worker1", "-worker2")) for h in hosts), hosts
    print(f"  renders ran on {sorted({t.hostname for t in renders})}, "
          f"senders on {sorted({t.hostname for t in sends})}")
    spans = intervals(scale_run.result.tasks, "render")
    assert len(spans) == SHARDS
    assert any(overlaps(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]), spans


def test_the_airflow_pools_bounded_render_and_send(scale_run: ScaleRun) -> None:
    renders = _of(scale_run, "render")
    sends = _of(scale_run, "send")
    assert {t.pool for t in renders} == {"eob_render"} and {t.pool for t in sends} == {"eob_send"}
    render_spans = intervals(scale_run.result.tasks, "render")
    send_spans = intervals(scale_run.result.tasks, "send")
    render_peak, send_peak = peak_concurrency(render_spans), peak_concurrency(send_spans)
    print(f"at most {render_peak} render TIs at once (eob_render has "
          f"{scale_run.pool_slots['eob_render']} slots), {send_peak} send TIs (eob_send has "
          f"{scale_run.pool_slots['eob_send']})")
    # 4 shards waiting for 2 render slots: the pool, not the workers' 4 slots, held them to 2
    assert render_peak == scale_run.pool_slots["eob_render"] == 2
    assert send_peak <= scale_run.pool_slots["eob_send"]
    assert peak_concurrency(render_spans + send_spans) <= 4  # 2 workers × 2 slots
    # each pool's sender ran while shards were rendering (it sends as batches are routed)
    for send in send_spans:
        assert any(overlaps(send, render) for render in render_spans), (send, render_spans)


def test_a_freed_render_slot_is_taken_at_once(scale_run: ScaleRun) -> None:
    """The shards beyond the pool's slots start as soon as an earlier one ends: a worker slot
    that sat idle after each task (the supervisor noticing its task's exit only at its next
    wake-up) costs every render wave seconds."""
    spans = sorted(intervals(scale_run.result.tasks, "render"))
    slots = scale_run.pool_slots["eob_render"]
    ends = sorted(end for _, end in spans)
    waits = [(start - ends[i - slots]).total_seconds() for i, (start, _) in enumerate(spans)
             if i >= slots]
    print(f"  a waiting shard started {', '.join(f'{w:.1f}' for w in waits)} s after a slot freed")
    assert waits and all(wait <= 3.0 for wait in waits), waits


def test_every_statement_is_accounted_for_and_the_relays_agree(scale_run: ScaleRun) -> None:
    summary = scale_run.result.summary
    statuses, report = summary.statuses, summary.report
    print(f"ledger: {dict(sorted(statuses.items()))}; accepted by relay {summary.accepted_by_relay}, "
          f"relays received {summary.relays_received}")
    assert report["statements"] == sum(statuses.values()) > MEMBERS * 0.9
    assert set(statuses) <= FINAL_STATUSES, statuses  # none composed, rendered or queued
    emailed = statuses.get("sent", 0) + statuses.get("delivered", 0)
    assert emailed > MEMBERS // 2
    queues = sum(v for k, v in report.items() if k.startswith("queue_") and k != "queue_paper")
    assert emailed + report["paper"] + queues == report["statements"]
    assert summary.failed_checks == []
    got = scale_run.received
    assert set(got.by_pool) == {"pool_a", "pool_b"} and min(map(len, got.by_pool.values())) > 0
    # the ledger's 250s are exactly what the relays received: none missing, none twice
    assert summary.accepted_by_relay == scale_run.sent_events == emailed
    assert got.duplicates() == 0, got.twice()[:10]
    assert got.total == got.unique == emailed == sum(summary.relays_received.values())
    assert summary.reconciled


def test_down_leaves_no_process_of_the_cluster(scale_run: ScaleRun) -> None:
    spec = scale_run.spec
    pid_files = sorted(spec.paths.run_dir.glob("*.pid"))
    records = [r for r in (read_pid_file(f) for f in pid_files) if r is not None]
    assert len(records) == len(spec.process_names) and all(running(r) for r in records)
    before = leftover_processes(spec)
    assert {r.pid for r in records} <= set(before)  # the scan finds the managed processes
    started = time.monotonic()
    result = lifecycle.down(spec)
    print(f"down in {time.monotonic() - started:.1f} s: stopped {', '.join(result.stopped)}; "
          f"{len(before)} processes of the cluster before, killed after the grace period: "
          f"{result.killed or 'none'}")
    assert result.survivors == {}
    assert not list(spec.paths.run_dir.glob("*.pid"))
    assert not [r.pid for r in records if running(r)]
    assert leftover_processes(spec) == {}
