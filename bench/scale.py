"""Benchmark: the monthly run at scale, on a real Airflow cluster and on the embedded default.

A real cluster (`eob cluster up`: api-server, scheduler, dag-processor, triggerer, two Celery
workers of two slots each, Redis, PostgreSQL for the metadata and the ledger, loopback relays),
brought up with new databases for each of the first two measurements:

1. Render speed-up: the same kind of month rendered as a dry run (render and route, nothing
   sent) with 4 shards, with the `eob_render` Airflow pool at one slot (one render task at a
   time, on one worker) and at two (one per worker, the shipped setting), four months in the
   order 1, 2, 2, 1 slots so that a change in the shared machine's speed meanwhile weighs on
   both. Render throughput is the statements rendered over the span of the render tasks as
   Airflow recorded them (first start to last end), pooled over a setting's two runs.
   `speedup` = two / one, on this machine's two cores.
2. End to end on the cluster: `eob_monthly` for --members members through the REST API, relays on
   loopback not throttling. `e2e_per_min` = statements handed to a relay or to the paper queue
   per minute from the start of ingest to the end of the last send task (Airflow's records),
   with each stage's span. The run must reconcile (the ledger's count of statements accepted by
   a relay equals the relays' own, and the report's checks agree), or there is no figure.
3. The same month on the embedded default (`eob demo`: the LocalExecutor in one command), from
   its Airflow records the same way (the demo exits non-zero when its month does not reconcile).

The shared machine's speed changes from day to day by more than any change of ours (one bare
render process has done 151 statements/s on a fast day and 51 on the slowest), so the
benchmark also measures it, before the runs and after them, with `bench/render.py --quick` (one
process, nothing else of ours running): `bare_render_per_s`, their mean. Compare minutes from
different days only next to it.

    .venv/bin/python bench/scale.py [--members 100000] [--speedup-members 12000] [--shards 4]
        [--skip-cluster] [--skip-embedded] [--skip-speedup]

The last line is one key=value summary: speedup= render_per_s_1= render_per_s_2= e2e_per_min=
cluster_minutes= embedded_per_min= embedded_minutes= bare_render_per_s= members=.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.cluster.lifecycle import api_for, down, up  # noqa: E402
from pipeline.cluster.monthly import run_monthly  # noqa: E402
from pipeline.cluster.spec import ClusterSpec  # noqa: E402

STAGES = ("ingest", "compose", "render", "route", "send", "report")


@dataclass(frozen=True, slots=True)
class Span:
    task_id: str
    start: datetime
    end: datetime


def stage_spans(spans: Iterable[Span]) -> dict[str, tuple[datetime, datetime]]:
    """Each stage's first start and last end over its (mapped) task instances."""
    found: dict[str, tuple[datetime, datetime]] = {}
    for span in spans:
        first, last = found.get(span.task_id, (span.start, span.end))
        found[span.task_id] = (min(first, span.start), max(last, span.end))
    return found


def print_stages(title: str, stages: dict[str, tuple[datetime, datetime]]) -> None:
    origin = stages["ingest"][0]
    print(f"  {title}: stage spans (seconds from the start of ingest)")
    for name in STAGES:
        if name in stages:
            start, end = stages[name]
            offset, until = (start - origin).total_seconds(), (end - origin).total_seconds()
            print(f"    {name:<8} {offset:7.1f} → {until:7.1f}   ({until - offset:.1f} s)")


def handed_off(statuses: dict[str, int]) -> int:
    """Statements out of the pipeline's hands: accepted by a relay (and what became of them since),
    refused for good, or in the paper queue."""
    waiting = {"composed", "rendered", "queued", "failed", "superseded"}
    return sum(n for status, n in statuses.items() if status not in waiting)


def cluster_spec(base: Path, name: str, *, workers: int, concurrency: int, shards: int) -> ClusterSpec:
    return ClusterSpec(dir=base / name, airflow_db=f"bench_{name}_airflow", ledger_db=f"bench_{name}_ledger",
                       redis_url="redis://127.0.0.1:6379/9", api_port=18480, relay_port=2625,
                       workers=workers, concurrency=concurrency, shards=shards)


def drop_databases(spec: ClusterSpec) -> None:
    import psycopg

    with psycopg.connect(f"{spec.pg_url}/postgres", autocommit=True) as conn:
        for name in (spec.airflow_db, spec.ledger_db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster_run(spec: ClusterSpec, *, members: int, dry_run: bool,
                period: str) -> tuple[dict[str, int], list[Span]]:
    result = run_monthly(spec, api_for(spec), period=period, members=members, seed=5,
                         dry_run=dry_run, timeout=3600, say=lambda _line: None)
    if result.state != "success":
        raise SystemExit(f"eob_monthly ended {result.state} on the cluster")
    summary = result.summary
    if not dry_run:  # a fast month that lost or doubled statements measures nothing
        print(f"  accepted by a relay: {summary.accepted_by_relay} by the ledger, "
              f"{sum(summary.relays_received.values())} by the relays {summary.relays_received}")
        if not summary.reconciled:
            raise SystemExit(f"the month does not reconcile: {summary.failed_checks or 'counts differ'}")
    return summary.statuses, [Span(t.task_id, t.start, t.end) for t in result.tasks
                                     if t.start and t.end]


def set_render_slots(spec: ClusterSpec, slots: int) -> None:
    api_for(spec).call("PATCH", "pools/eob_render", {"pool": "eob_render", "slots": slots,
                                                     "include_deferred": False}, update_mask="slots")


def render_work(statuses: dict[str, int], spans: list[Span]) -> tuple[int, float]:
    """Statements rendered, and the seconds from the first shard's start to the last one's end."""
    start, end = stage_spans(spans)["render"]
    rendered = sum(n for status, n in statuses.items() if status not in ("composed", "failed", "superseded"))
    return rendered, (end - start).total_seconds()


def embedded(members: int, shards: int, workspace: Path) -> tuple[dict[str, int], list[Span]]:
    command = [str(REPO / "eob"), "demo", "--members", str(members), "--shards", str(shards),
               "--workspace", str(workspace)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    metadata = sqlite3.connect(workspace / "airflow" / "airflow.db")
    spans = [Span(task, datetime.fromisoformat(start), datetime.fromisoformat(end))
             for task, start, end in metadata.execute(
                 "SELECT task_id, start_date, end_date FROM task_instance "
                 "WHERE dag_id = 'eob_monthly' AND start_date IS NOT NULL AND end_date IS NOT NULL")]
    ledger = sqlite3.connect(workspace / "ledger.sqlite")
    # the statuses right after eob_monthly are what counts; the demo then reconciles and prints,
    # which moves bounced and paper statements on but never back to a waiting status
    statuses = dict(ledger.execute("SELECT status, COUNT(*) FROM statements GROUP BY status").fetchall())
    return statuses, spans


def per_minute(statuses: dict[str, int], spans: list[Span]) -> tuple[float, float]:
    stages = stage_spans(spans)
    seconds = (stages["send"][1] - stages["ingest"][0]).total_seconds()
    return handed_off(statuses) / seconds * 60, seconds / 60


def speedup(spec: ClusterSpec, members: int) -> dict[str, str]:
    """Slots in the order 1, 2, 2, 1 (a drift in the machine's speed during the measurement
    weighs on both settings alike); each setting's rate pools its two runs."""
    done: dict[int, list[tuple[int, float]]] = {1: [], 2: []}
    for slots, period in zip((1, 2, 2, 1), ("2026-06", "2026-07", "2026-08", "2026-09"), strict=True):
        set_render_slots(spec, slots)
        print(f"render speed-up: {members} members, dry run, eob_render at {slots} slot(s)")
        statuses, spans = cluster_run(spec, members=members, dry_run=True, period=period)
        rendered, seconds = render_work(statuses, spans)
        done[slots].append((rendered, seconds))
        print(f"  render: {rendered / seconds:.1f} statements/s ({rendered} in {seconds:.1f} s)")
    set_render_slots(spec, 2)
    rates = {slots: sum(n for n, _ in runs) / sum(s for _, s in runs) for slots, runs in done.items()}
    return {"speedup": f"{rates[2] / rates[1]:.2f}", "render_per_s_1": f"{rates[1]:.1f}",
            "render_per_s_2": f"{rates[2]:.1f}"}


def end_to_end(spec: ClusterSpec, members: int, shards: int) -> dict[str, str]:
    print(f"end to end on the cluster: {members} members, {shards} shards")
    statuses, spans = cluster_run(spec, members=members, dry_run=False, period="2026-10")
    rate, minutes = per_minute(statuses, spans)
    print_stages("cluster", stage_spans(spans))
    print(f"  statuses: {statuses}")
    print(f"  {rate:.0f} statements/min, {minutes:.1f} min ingest → last send")
    return {"e2e_per_min": f"{rate:.0f}", "cluster_minutes": f"{minutes:.1f}"}


def on_new_cluster(base: Path, shards: int,
                   measure: Callable[[ClusterSpec], dict[str, str]]) -> dict[str, str]:
    spec = cluster_spec(base, "cluster", workers=2, concurrency=2, shards=shards)
    drop_databases(spec)
    try:
        print(f"cluster up: {up(spec, say=lambda _line: None):.0f} s "
              f"({spec.workers} workers × {spec.concurrency} slots)")
        return measure(spec)
    finally:
        print(f"cluster down: {down(spec)}")
        drop_databases(spec)


def bare_render_per_s(when: str) -> float:
    """The machine's speed now: `bench/render.py --quick`'s statements per second of one process."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "render.py"), "--quick"], check=True,
                         capture_output=True, text=True).stdout
    fields = dict(item.split("=", 1) for item in out.strip().splitlines()[-1].split())
    per_s = float(fields["per_core"])
    print(f"machine {when}: one bare render process, {per_s:.1f} statements/s")
    return per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--speedup-members", type=int, default=12_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-speedup", action="store_true")
    args = parser.parse_args()
    summary: dict[str, str] = {"members": str(args.members)}
    speeds = [bare_render_per_s("before")]
    with tempfile.TemporaryDirectory(prefix="eob-bench-scale-") as folder:
        base = Path(folder)
        # Each cluster measurement on a cluster of its own, with new databases: the speed-up's dry
        # runs leave their statements queued (a later run's senders would send them too), and a
        # 100,000-member ledger behind a measurement makes it one of a ledger's upkeep as well.
        if not args.skip_cluster:
            summary |= on_new_cluster(base, args.shards, lambda spec: end_to_end(spec, args.members,
                                                                                 args.shards))
        if not args.skip_speedup:
            summary |= on_new_cluster(base, args.shards, lambda spec: speedup(spec, args.speedup_members))
        if not args.skip_embedded:
            print(f"end to end embedded (eob demo): {args.members} members, {args.shards} shards")
            statuses, spans = embedded(args.members, args.shards, base / "embedded")
            rate, minutes = per_minute(statuses, spans)
            print_stages("embedded", stage_spans(spans))
            print(f"  {rate:.0f} statements/min, {minutes:.1f} min ingest → last send")
            summary |= {"embedded_per_min": f"{rate:.0f}", "embedded_minutes": f"{minutes:.1f}"}
    speeds.append(bare_render_per_s("after"))
    summary["bare_render_per_s"] = f"{sum(speeds) / len(speeds):.1f}"
    print(" ".join(f"{key}={value}" for key, value in summary.items()))


if __name__ == "__main__":
    main()
