"""What the cluster tests share: a whole cluster of their own, and what they read back from it.

Every cluster gets its own folder (a tmp dir), its own metadata and ledger databases, a Redis
database nobody else uses, and free ports, so it never meets a developer's cluster
(var/cluster/, port 8080, relay port 2525) or another test run. Whatever happens, it is taken
down, its databases are dropped and its Redis database is emptied (a worker killed mid-task
leaves its unacknowledged messages there, which a later cluster on that database would
otherwise be handed).

Nothing is mocked: PostgreSQL, Redis, Airflow's processes, Celery workers and the loopback
relays are all real. The helpers read what an operator would: Airflow's records through the REST
API, the ledger's statements on PostgreSQL, and the relays' journal of what they accepted.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.cluster import ClusterSpec, lifecycle
from pipeline.cluster.environment import MARKER, clean_base
from pipeline.cluster.monthly import TaskRecord
from pipeline.cluster.relays import relay_journal, settled_relay_counts
from tests.support import REPO

EOB = [str(REPO / ".venv" / "bin" / "eob")]
REDIS = ("127.0.0.1", 6379)

QUICK_RECOVERY = {
    # a killed worker's task is failed 20 s after its last heartbeat (every 5 s while it runs),
    # looked for every 5 s, and retried 5 s later: seconds, not the production 5 + 5 minutes
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
    # a restarted scheduler adopts (or resets) what the killed one had queued within 15 s
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
    # a task handed to a worker that died before it started is queued again within 2 minutes
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}
"""Airflow's recovery timings shortened for the chaos tests (`ClusterSpec.extra_env`)."""

FINAL_STATUSES = {
    "sent", "delivered",  # accepted by a relay
    "paper_queued", "paper_exception", "batched", "printed", "mailed",  # on paper
    "retry_scheduled", "verification_pending",  # in a named queue (the report's queue_*)
}
"""Where every statement of a finished monthly run must be: emailed, on paper, or in a queue
the report names. Never composed, rendered or queued: that one would be lost."""


def skip_or_fail(message: str) -> None:
    """Skip where the machine lacks what a cluster needs; CI (EOB_REQUIRE_CLUSTER=1) fails."""
    if os.environ.get("EOB_REQUIRE_CLUSTER") == "1":
        pytest.fail(message + " — but EOB_REQUIRE_CLUSTER=1 demands the cluster tests")
    pytest.skip(message)


def need_redis() -> None:
    try:
        socket.create_connection(REDIS, timeout=3).close()
    except OSError:
        skip_or_fail("no Redis at 127.0.0.1:6379 (the Celery broker): the cluster tests need one")


def free_port(*hosts: str) -> int:
    """A port nobody listens on at any of `hosts` (bound for a moment to be sure)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def free_redis_url() -> str:
    """A Redis database that holds nothing (a cluster in use keeps Kombu's bindings in its
    database), other than 0-2 (2 is `eob cluster up`'s default)."""
    import redis

    numbers = list(range(3, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=number)
        try:
            if client.dbsize() == 0:
                return f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
        finally:
            client.close()
    skip_or_fail("every Redis database 3-15 holds keys: no free broker database for a test cluster")


def empty_redis_database(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def eob(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`eob …` as an operator runs it, without this test process's Airflow or EOB settings."""
    return subprocess.run([*EOB, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**clean_base(), "COLUMNS": "200"})


def drop_databases(spec: ClusterSpec) -> None:
    import psycopg

    with psycopg.connect(spec.database_url("postgres"), autocommit=True) as conn:
        for name in (spec.airflow_db, spec.ledger_db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster_options(folder: Path, *, shards: int, redis_url: str) -> list[str]:
    """`eob cluster up` options for a cluster of its own: 2 workers × 2 slots."""
    tag = uuid.uuid4().hex[:8]
    return ["--dir", str(folder), "--workers", "2", "--concurrency", "2", "--shards", str(shards),
            "--airflow-db", f"eob_test_{tag}_airflow", "--ledger-db", f"eob_test_{tag}_ledger",
            "--redis-url", redis_url, "--api-port", str(free_port("127.0.0.1")),
            "--relay-port", str(free_port("127.0.0.12", "127.0.0.13"))]


def take_down(folder: Path, redis_url: str) -> None:
    """Whatever state the cluster is in: down, its databases dropped, its broker emptied."""
    try:
        if (folder / "cluster.json").exists():
            spec = ClusterSpec.load(folder)
            lifecycle.down(spec)
            drop_databases(spec)
    finally:
        empty_redis_database(redis_url)


@contextmanager
def running_cluster(folder: Path, *, shards: int, extra_env: dict[str, str] | None = None
                    ) -> Iterator[ClusterSpec]:
    """A cluster brought up in `folder` (`lifecycle.up`, what `eob cluster up` does), taken down
    and cleaned away afterwards."""
    need_redis()
    redis_url = free_redis_url()
    tag = uuid.uuid4().hex[:8]
    spec = ClusterSpec(dir=folder.resolve(), airflow_db=f"eob_test_{tag}_airflow",
                       ledger_db=f"eob_test_{tag}_ledger", redis_url=redis_url,
                       api_port=free_port("127.0.0.1"),
                       relay_port=free_port("127.0.0.12", "127.0.0.13"),
                       workers=2, concurrency=2, shards=shards, extra_env=dict(extra_env or {}))
    try:
        seconds = lifecycle.up(spec, say=lambda line: print(f"  up: {line}"))
        print(f"cluster up in {seconds:.0f} s: {spec.dir}, API {spec.api_url}, broker {redis_url}")
        yield spec
    finally:
        take_down(folder, redis_url)


# -- what a cluster left behind ---------------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "X"


def leftover_processes(spec: ClusterSpec) -> dict[int, str]:
    """Every live process of the cluster, found by scanning /proc: its environment marker
    (inherited by every child, task processes included), an Airflow process whose AIRFLOW_HOME
    is the cluster's, or a command line that names the cluster folder. pid → what gave it away."""
    folder = str(spec.dir)
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if _state(pid) in ("Z", "X"):
            continue
        env, cmdline = _environ(pid), _cmdline(pid)
        if env.get(MARKER, "").startswith(f"{folder}:"):
            found[pid] = f"{MARKER}={env[MARKER]}: {cmdline[:120]}"
        elif env.get("AIRFLOW_HOME", "").startswith(folder):
            found[pid] = f"AIRFLOW_HOME in the cluster: {cmdline[:120]}"
        elif folder in cmdline:
            found[pid] = f"command line: {cmdline[:120]}"
    return found


# -- the ledger on PostgreSQL ------------------------------------------------------------------


def ledger_rows(spec: ClusterSpec, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(spec.ledger_url, connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


def ledger_run_id(period: str) -> str:
    from pipeline.storage import run_id_for

    return run_id_for(period)


def status_counts(spec: ClusterSpec, period: str, shard: int | None = None) -> Counter[str]:
    """The run's statements by status (of one render shard when `shard` is given)."""
    sql = "SELECT status, count(*) FROM statements WHERE run_id = %s"
    params: list[Any] = [ledger_run_id(period)]
    if shard is not None:
        sql += " AND shard = %s"
        params.append(shard)
    try:
        return Counter({str(s): int(n) for s, n in ledger_rows(spec, sql + " GROUP BY status", *params)})
    except Exception:  # the ledger's run not there yet: nothing counted
        return Counter()


def sent_events(spec: ClusterSpec, period: str) -> int:
    """How many times the ledger recorded a relay's 250 for the run's statements."""
    rows = ledger_rows(spec, "SELECT count(*) FROM statement_events e JOIN statements s USING "
                             "(statement_id) WHERE s.run_id = %s AND e.event = 'sent'",
                       ledger_run_id(period))
    return int(rows[0][0])


def in_doubt(spec: ClusterSpec, period: str) -> dict[str, set[str]]:
    """pool → the run's statements a sender found in doubt (its last attempt had no recorded
    outcome: the sender before it died with the message in flight) and sent again."""
    import json

    found: dict[str, set[str]] = {}
    for statement_id, detail in ledger_rows(
            spec, "SELECT e.statement_id, e.detail FROM statement_events e JOIN statements s USING "
                  "(statement_id) WHERE s.run_id = %s AND e.event = 'send_in_doubt'",
            ledger_run_id(period)):
        found.setdefault(str(json.loads(detail).get("pool")), set()).add(str(statement_id))
    return found


def in_flight(spec: ClusterSpec, period: str, pool: str) -> int:
    """The run's statements on `pool` whose last event is a `send_attempt`: handed to a relay
    connection, outcome not yet committed (what would be in doubt if the sender died now)."""
    rows = ledger_rows(spec, """
        SELECT count(*) FROM statements s
        WHERE s.run_id = %s AND s.pool = %s AND s.status = 'queued'
          AND (SELECT e.event FROM statement_events e WHERE e.statement_id = s.statement_id
               ORDER BY e.event_id DESC LIMIT 1) = 'send_attempt'""", ledger_run_id(period), pool)
    return int(rows[0][0])


def queued_for(spec: ClusterSpec, period: str, pool: str) -> int:
    """The run's statements queued for `pool` now (what its sender has yet to send)."""
    rows = ledger_rows(spec, "SELECT count(*) FROM statements WHERE run_id = %s AND pool = %s "
                             "AND status = 'queued'", ledger_run_id(period), pool)
    return int(rows[0][0])


def run_statement_ids(spec: ClusterSpec, period: str) -> set[str]:
    return {str(row[0]) for row in ledger_rows(
        spec, "SELECT statement_id FROM statements WHERE run_id = %s", ledger_run_id(period))}


# -- what the relays received ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """The relays' journal, restricted to one run's statements."""

    by_pool: dict[str, Counter[str]]  # pool → statement id → times received

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_pool.values())

    @property
    def unique(self) -> int:
        return len({sid for c in self.by_pool.values() for sid in c})

    def duplicates(self, pool: str | None = None) -> int:
        """Messages received beyond the first of their statement (on `pool`, or on any)."""
        if pool is not None:
            return sum(n - 1 for n in self.by_pool.get(pool, Counter()).values())
        overall: Counter[str] = Counter()
        for counts in self.by_pool.values():
            overall.update(counts)
        return sum(n - 1 for n in overall.values())

    def twice(self) -> list[str]:
        overall: Counter[str] = Counter()
        for counts in self.by_pool.values():
            overall.update(counts)
        return sorted(sid for sid, n in overall.items() if n > 1)


def received(spec: ClusterSpec, statement_ids: set[str], *, settled_after: float) -> Received:
    """What the relays accepted of these statements, once they have written their journal after
    the wall-clock time `settled_after`."""
    settled_relay_counts(spec.dir, after=settled_after)
    by_pool: dict[str, Counter[str]] = {}
    for entry in relay_journal(spec.dir):
        if entry["statement"] in statement_ids:
            by_pool.setdefault(str(entry["pool"]), Counter())[str(entry["statement"])] += 1
    return Received(by_pool)


def pool_received(spec: ClusterSpec, pool: str, since: float) -> int:
    """Messages the relays of `pool` recorded since the wall-clock time `since` (any run)."""
    return sum(1 for entry in relay_journal(spec.dir)
               if entry["pool"] == pool and float(entry["at"]) >= since)


# -- Airflow's records ---------------------------------------------------------------------------


def task_failures(spec: ClusterSpec, run_id: str) -> list[str]:
    """`render[2] attempt 1: TypeError: …` for every try of the run whose task raised, from the
    task logs in the cluster's Airflow home (what `airflow tasks logs` would show)."""
    import json

    found = []
    folder = spec.paths.airflow_home / "logs" / "dag_id=eob_monthly" / f"run_id={run_id}"
    for log in sorted(folder.glob("task_id=*/**/attempt=*.log")):
        parts = {k: v for k, _, v in (part.partition("=") for part in log.relative_to(folder).parts)}
        label = parts["task_id"] + (f"[{parts['map_index']}]" if "map_index" in parts else "")
        for line in log.read_text(errors="replace").splitlines():
            if '"Task failed with exception"' not in line:
                continue
            try:
                details = json.loads(line).get("error_detail") or [{}]
            except json.JSONDecodeError:
                details = [{}]
            where = [f"{Path(f.get('filename', '?')).name}:{f.get('lineno')}"
                     for f in details[0].get("frames", [])[-3:]]
            found.append(f"{label} attempt {parts['attempt'].removesuffix('.log')}: "
                         f"{details[0].get('exc_type')}: {str(details[0].get('exc_value'))[:200]} "
                         f"(at {' < '.join(reversed(where))})")
    return found


def intervals(tasks: Sequence[TaskRecord], task_id: str) -> list[tuple[datetime, datetime]]:
    return [(t.start, t.end) for t in tasks if t.task_id == task_id and t.start and t.end]


def peak_concurrency(spans: Sequence[tuple[datetime, datetime]]) -> int:
    """The most intervals running at one instant (one ending as another starts: not both)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
                    key=lambda item: (item[0], item[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def wait_until(what: str, ready: Any, *, timeout: float, poll: float = 0.5) -> Any:
    """Poll `ready()` until it returns something true; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
