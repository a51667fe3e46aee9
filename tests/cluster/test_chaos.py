"""Chaos on a real cluster: a worker killed mid-render, a worker killed mid-send, the scheduler
killed mid-run. Each time the month must still finish through Airflow's own recovery (the dead
try failed on its missing heartbeat, then retried), with no statement lost, and no statement
emailed twice beyond what the send stage documents: at most one duplicate per connection that
was in flight when its sender died.

A kill is what a lost host does: SIGKILL to the process's group and to every process started
under it (`lifecycle.kill_one`; Airflow puts task processes in groups of their own), then a
restart as systemd's Restart=on-failure would (`lifecycle.restart_one`). Airflow's recovery
timings are shortened (`QUICK_RECOVERY`); the pipeline's are the shipped ones. Each month has its
own period, so the runs share one cluster without meeting.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pipeline.cluster import ClusterSpec, lifecycle
from pipeline.cluster.api import AirflowApi
from pipeline.cluster.monthly import (
    TaskRecord,
    cluster_settings,
    generate,
    task_records,
    task_tries,
    trigger,
    wait_for_run,
)
from tests.cluster.conftest import (
    FINAL_STATUSES,
    QUICK_RECOVERY,
    Received,
    in_doubt,
    in_flight,
    pool_received,
    queued_for,
    received,
    run_statement_ids,
    running_cluster,
    sent_events,
    status_counts,
    task_failures,
    wait_until,
)

pytestmark = pytest.mark.cluster

SHARDS = 4
RUN_TIMEOUT = 420.0


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[ClusterSpec]:
    with running_cluster(tmp_path_factory.mktemp("chaos"), shards=SHARDS,
                         extra_env=QUICK_RECOVERY) as spec:
        yield spec


@dataclass(frozen=True, slots=True)
class Month:
    spec: ClusterSpec
    api: AirflowApi
    period: str
    run_id: str
    since: float  # wall-clock time of the trigger

    def tasks(self) -> list[TaskRecord]:
        return task_records(self.api, self.run_id)

    def running_on(self, hostname: str) -> list[TaskRecord]:
        return [t for t in self.tasks() if t.state == "running" and t.hostname == hostname]


def start_month(spec: ClusterSpec, period: str, members: int) -> Month:
    generate(spec, period=period, members=members, seed=int(period.replace("-", "")))
    api = lifecycle.api_for(spec)
    since = time.time()
    run_id = trigger(api, {"period": period, "dry_run": False})
    print(f"\n{period}: {members} members, triggered {run_id}")
    return Month(spec, api, period, run_id, since)


def finish(month: Month) -> tuple[str, Counter[str], Received, int]:
    """Wait for the run to end; its state, the ledger's statuses, what the relays received of
    its statements, and how many 250s the ledger recorded for them."""
    started = time.monotonic()
    state = wait_for_run(month.api, month.run_id, timeout=RUN_TIMEOUT, poll_seconds=2.0, fail_fast=True,
                         on_progress=lambda line: print(f"  {time.monotonic() - started:5.0f}s {line}"))
    ended = time.time()
    for failure in task_failures(month.spec, month.run_id):
        print(f"  a try failed: {failure}")
    assert state == "success", f"the run is {state}: {task_failures(month.spec, month.run_id)}"
    statuses = status_counts(month.spec, month.period)
    got = received(month.spec, run_statement_ids(month.spec, month.period), settled_after=ended)
    sent = sent_events(month.spec, month.period)
    print(f"  run {state}; ledger {dict(sorted(statuses.items()))}; {sent} accepted per the "
          f"ledger; relays received {got.total} messages of {got.unique} statements")
    return state, statuses, got, sent


def worker_of(spec: ClusterSpec, hostname: str) -> str:
    """`worker1` for the TI hostname `<machine>-worker1` (pipeline.cluster.hostname)."""
    name = hostname.rpartition("-")[2]
    assert name in spec.worker_names, hostname
    return name


def kill_worker(spec: ClusterSpec, name: str) -> list[int]:
    """SIGKILL the worker and all it started, then restart it as systemd would."""
    record = lifecycle.record_of(spec, name)
    assert record is not None, f"{name} is not running"
    members = lifecycle.processes_of(spec, name)
    own_group = [pid for pid in members if _pgid(pid) not in (None, record.pid)]
    killed = lifecycle.kill_one(spec, name)
    print(f"  SIGKILL {name} (pid {record.pid}): {len(killed)} processes, {len(own_group)} of them "
          f"task processes in a process group of their own")
    assert lifecycle.processes_of(spec, name) == {}, "a process of the killed worker survived"
    lifecycle.restart_one(spec, name)
    print(f"  restarted {name} (pid {lifecycle.record_of(spec, name).pid})")  # type: ignore[union-attr]
    return killed


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def assert_nothing_lost(statuses: Counter[str]) -> None:
    assert sum(statuses.values()) > 0
    stuck = {s: n for s, n in statuses.items() if s not in FINAL_STATUSES}
    assert stuck == {}, f"statements neither emailed, on paper nor in a named queue: {stuck}"


def tries_line(tries: list[TaskRecord]) -> str:
    return ", ".join(f"try {t.try_number} {t.state} on {t.hostname or '?'}" for t in tries)


# -- what a killed sender may leave twice ---------------------------------------------------------


def _windows(spec: ClusterSpec) -> dict[str, int]:
    """Each pool's in-flight window: the connections it may hold open (max_connections)."""
    from pipeline.delivery import send_config

    return {pool.name: pool.max_connections for pool in send_config(cluster_settings(spec)).pools}


def _pool_names(spec: ClusterSpec) -> list[str]:
    """The pools in the order `ip_pools` returns them: the send TIs' map indexes."""
    from pipeline.delivery import send_config

    return list(send_config(cluster_settings(spec)).pool_names)


def assert_duplicates_within_window(month: Month, got: Received, killed_pools: set[str]) -> None:
    """A statement reaches the relays twice only when its sender died with it in flight: the
    ledger then had it in doubt (an attempt without an outcome) and resent it. At most one per
    connection that pool may hold open; none at all on a pool whose sender lived."""
    windows, doubt = _windows(month.spec), in_doubt(month.spec, month.period)
    for name, connections in sorted(windows.items()):
        window = connections if name in killed_pools else 0
        print(f"  {name}: {len(doubt.get(name, ()))} statements in doubt, {got.duplicates(name)} "
              f"received twice (window {window}: "
              + (f"its sender was killed, max_connections {connections})" if window
                 else "its sender lived)"))
        assert len(doubt.get(name, ())) <= window
        assert got.duplicates(name) <= window, got.twice()[:10]
    in_doubt_anywhere = set().union(*doubt.values()) if doubt else set()
    assert set(got.twice()) <= in_doubt_anywhere, "a statement whose 250 was recorded went again"
    assert got.total == got.unique + got.duplicates()


# -- a worker killed mid-render ----------------------------------------------------------------


def _render_victim(month: Month, pools: list[str]) -> tuple[TaskRecord, Counter[str], list[str]] | None:
    """A render TI partway through its shard (some of it rendered or further, some still
    composed), and the pools whose senders share its worker. Preferably on a worker that runs no
    sender (Celery places the two send tasks; often one per worker), else beside a sender with
    nothing queued at this instant (between rounds: nothing in flight), else, once no shard is
    left to start and it is half done, beside a busy one."""
    tasks = month.tasks()
    senders: dict[str, list[str]] = {}
    for t in tasks:
        if t.task_id == "send" and t.state in ("running", "queued"):
            senders.setdefault(t.hostname, []).append(pools[t.map_index])
    unstarted = sum(1 for t in tasks if t.task_id == "render" and t.state not in ("running", "success"))
    found = []
    for t in tasks:
        if t.task_id != "render" or t.state != "running" or not t.hostname:
            continue
        shard = status_counts(month.spec, month.period, t.map_index)
        if shard["composed"] > 0 and sum(shard.values()) - shard["composed"] >= 100:
            found.append((t, shard, senders.get(t.hostname, [])))
    for t, shard, beside in found:
        if not beside:
            return t, shard, beside
    for t, shard, beside in found:
        if all(queued_for(month.spec, month.period, pool) == 0 for pool in beside):
            return t, shard, beside
    for t, shard, beside in found:
        if unstarted == 0 and shard["composed"] < sum(shard.values()) // 2:
            return t, shard, beside
    return None


def test_a_worker_killed_mid_render_is_retried_and_nothing_is_lost(chaos_cluster: ClusterSpec) -> None:
    spec = chaos_cluster
    pools = _pool_names(spec)
    month = start_month(spec, "2026-08", 4000)
    victim, shard, beside = wait_until("a render shard partly rendered",
                                       lambda: _render_victim(month, pools), timeout=240, poll=0.3)
    hostname = victim.hostname
    also = [t.label for t in month.running_on(hostname) if t.label != victim.label]
    print(f"  killing {worker_of(spec, hostname)} while {victim.label} (try {victim.try_number}) "
          f"had {sum(shard.values()) - shard['composed']} of {sum(shard.values())} statements of "
          f"its shard rendered; also on it: {also or 'nothing'}"
          + (f" (the sender of {', '.join(beside)})" if beside else ""))
    kill_worker(spec, worker_of(spec, hostname))

    state, statuses, got, sent = finish(month)
    tries = task_tries(month.api, month.run_id, "render", victim.map_index)
    print(f"  {victim.label}: {tries_line(tries)}")
    assert state == "success"
    # Airflow failed the dead try on its missing heartbeat and a later try finished the shard
    assert len(tries) >= 2 and tries[-1].state == "success"
    assert tries[0].hostname == hostname and tries[0].state == "failed"
    assert_nothing_lost(statuses)
    # every 250 the ledger recorded is a statement the relays hold, and each only once, unless
    # a sender died beside the shard with messages in flight (then within its window)
    assert sent == got.unique
    print(f"  statements the relays received twice: {got.duplicates()}")
    assert_duplicates_within_window(month, got, set(beside))
    if not beside:
        assert got.duplicates() == 0 and got.total == sent


# -- a worker killed mid-send --------------------------------------------------------------------


def _send_victim(month: Month, pools: list[str]) -> tuple[TaskRecord, str, list[TaskRecord]] | None:
    """A send TI whose pool's relays have received some of this run, caught with messages on
    its connections (attempted, outcome not yet committed); and what else runs on its worker."""
    tasks = month.tasks()
    for t in tasks:
        if t.task_id != "send" or t.state != "running" or not t.hostname:
            continue
        pool = pools[t.map_index]
        if pool_received(month.spec, pool, month.since) >= 150 and in_flight(month.spec, month.period, pool):
            return t, pool, [o for o in tasks if o.state == "running" and o.hostname == t.hostname]
    return None


def test_a_worker_killed_mid_send_resends_at_most_its_window(chaos_cluster: ClusterSpec) -> None:
    spec = chaos_cluster
    pools = _pool_names(spec)
    month = start_month(spec, "2026-09", 3000)
    victim, pool, on_it = wait_until("a sender with messages in flight",
                                     lambda: _send_victim(month, pools), timeout=240, poll=0.2)
    hostname = victim.hostname
    kill_worker(spec, worker_of(spec, hostname))  # at once: its messages are still in flight
    killed_pools = {pools[t.map_index] for t in on_it if t.task_id == "send"}
    print(f"  killed {worker_of(spec, hostname)} while {victim.label} ({pool}, try "
          f"{victim.try_number}) had messages in flight, {pool_received(spec, pool, month.since)} of "
          f"its messages received; running on it: {[t.label for t in on_it]}")

    state, statuses, got, sent = finish(month)
    tries = task_tries(month.api, month.run_id, "send", victim.map_index)
    print(f"  {victim.label}: {tries_line(tries)}")
    assert state == "success"
    assert len(tries) >= 2 and tries[0].hostname == hostname and tries[0].state == "failed"
    assert tries[-1].state == "success"
    assert_nothing_lost(statuses)
    # every 250 the ledger recorded is a statement the relays hold; a resend is recorded once
    assert sent == got.unique
    print(f"  statements the relays received twice: {got.duplicates()}")
    assert_duplicates_within_window(month, got, killed_pools)


# -- the scheduler killed mid-run ----------------------------------------------------------------


def test_a_scheduler_killed_mid_run_is_restarted_and_the_month_completes(
        chaos_cluster: ClusterSpec) -> None:
    spec = chaos_cluster
    month = start_month(spec, "2026-10", 3000)

    def rendering() -> list[TaskRecord]:
        tasks = month.tasks()
        going = [t for t in tasks if t.task_id == "render" and t.state == "running"]
        return going if going and status_counts(spec, month.period)["composed"] > 0 else []

    going = wait_until("render shards running", rendering, timeout=240, poll=0.5)
    running = [t for t in month.tasks() if t.state == "running"]
    killed = lifecycle.kill_one(spec, "scheduler")
    print(f"  SIGKILL scheduler ({len(killed)} processes) while {[t.label for t in running]} ran")
    time.sleep(3.0)
    lifecycle.restart_one(spec, "scheduler")
    print(f"  restarted the scheduler (pid {lifecycle.record_of(spec, 'scheduler').pid})")  # type: ignore[union-attr]

    state, statuses, got, sent = finish(month)
    after = {t.label: t for t in month.tasks()}
    print("  " + "; ".join(f"{t.label} try {after[t.label].try_number} {after[t.label].state}"
                           for t in going))
    assert state == "success"
    # a scheduler restart stops no running task: each finished in the try it was in
    for t in running:
        assert after[t.label].try_number == t.try_number and after[t.label].state == "success", t
    assert_nothing_lost(statuses)
    # no sender died: every statement accepted once, and the ledger has every one
    assert in_doubt(spec, month.period) == {}
    assert got.duplicates() == 0, got.twice()[:10]
    assert sent == got.unique == got.total
