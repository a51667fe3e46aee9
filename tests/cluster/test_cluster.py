"""A whole Airflow cluster on this machine, brought up as an operator does (`eob cluster up`),
checked, given a small monthly run through its REST API, and taken down.

Its own folder, databases, broker database and ports, so it never meets a developer's cluster
(var/cluster/) or another test run. Nothing is mocked: PostgreSQL, Redis, Airflow's processes,
Celery workers and the loopback relays are all real. Whatever happens, the fixture takes the
cluster down and drops its databases.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator

import pytest

from pipeline.cluster import ClusterSpec, lifecycle
from pipeline.cluster.environment import MARKER
from pipeline.cluster.monthly import task_records
from pipeline.cluster.processes import processes_with
from pipeline.cluster.relays import relay_counts
from tests.cluster.conftest import cluster_options, eob, free_redis_url, need_redis, take_down

pytestmark = pytest.mark.cluster

MEMBERS = 1000
SHARDS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[ClusterSpec]:
    need_redis()
    folder = tmp_path_factory.mktemp("cluster")
    redis_url = free_redis_url()
    try:
        done = eob("cluster", "up", *cluster_options(folder, shards=SHARDS, redis_url=redis_url))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield ClusterSpec.load(folder)
    finally:
        take_down(folder, redis_url)


def test_up_prints_where_the_cluster_answers(cluster: ClusterSpec) -> None:
    assert cluster.paths.secrets_file.stat().st_mode & 0o077 == 0
    assert all(item.pid for item in lifecycle.process_status(cluster))
    done = eob("cluster", "status", "--dir", str(cluster.dir))
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("answers ping") == 2


def test_the_preflight_passes_on_a_fresh_cluster(cluster: ClusterSpec) -> None:
    done = eob("cluster", "check", "--dir", str(cluster.dir))
    assert done.returncode == 0, done.stdout
    for expected in ("ok     AIRFLOW__API_AUTH__JWT_SECRET: identical", "worker2: execution API",
                     "ok     worker slots: 2 workers x 2 = 4 task slots",
                     "ok     DAGs registered", "ok     ledger", "relay 127.0.0.13"):
        assert expected in done.stdout


def test_a_monthly_run_through_the_api_reconciles_ledger_and_relays(cluster: ClusterSpec) -> None:
    done = eob("cluster", "run", "--dir", str(cluster.dir), "--members", str(MEMBERS),
               "--shards", str(SHARDS), "--period", "2026-11", "--timeout", "900")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "reconciled: ledger and relays agree" in done.stdout
    run_id = re.search(r"triggered eob_monthly run (\S+)", done.stdout)
    assert run_id is not None
    tasks = task_records(lifecycle.api_for(cluster), run_id[1])
    renders = [t for t in tasks if t.task_id == "render"]
    sends = [t for t in tasks if t.task_id == "send"]
    assert sorted(t.map_index for t in renders) == list(range(SHARDS))
    assert {t.pool for t in renders} == {"eob_render"} and {t.pool for t in sends} == {"eob_send"}
    assert len(sends) == 2 and all(t.state == "success" for t in tasks if t.task_id in ("render", "send"))
    # two slots per worker, and render (2 pool slots) overlaps the two sends: at least three
    # tasks run at once, so both workers ran some, and Airflow's own records tell them apart
    host = socket.gethostname()
    assert {t.hostname for t in tasks if t.hostname} == {f"{host}-worker1", f"{host}-worker2"}
    _ledger_agrees_with_the_relays(cluster)


def _ledger_agrees_with_the_relays(cluster: ClusterSpec) -> None:
    """On PostgreSQL: every statement the ledger says a relay accepted, the relays received."""
    import json

    from pipeline.ledger import Ledger
    from pipeline.report import build_report

    assert cluster.ledger_url.startswith("postgresql://")
    ledger = Ledger.open(cluster.ledger_url, migrate=False)
    try:
        report = build_report(ledger, "eob-2026-11").summary()
    finally:
        ledger.close()
    counts = relay_counts(cluster.dir)
    assert set(counts) == {"pool_a", "pool_b"} and min(counts.values()) > 0
    journal = [json.loads(line) for line in
               (cluster.paths.relays_dir / "received.jsonl").read_text().splitlines()]
    assert report["accepted_by_relay"] == sum(counts.values()) == len(journal) > MEMBERS // 2
    assert all(entry["tls"] for entry in journal)
    assert len({entry["statement"] for entry in journal}) == len(journal)


def test_the_preflight_fails_when_one_process_has_another_jwt_secret(cluster: ClusterSpec) -> None:
    stray = "a-stray-jwt-secret-" + uuid.uuid4().hex
    lifecycle.restart_one(cluster, "dag-processor", {"AIRFLOW__API_AUTH__JWT_SECRET": stray})
    try:
        done = eob("cluster", "check", "--dir", str(cluster.dir))
        assert done.returncode == 1, done.stdout
        assert ("FAILED AIRFLOW__API_AUTH__JWT_SECRET: dag-processor has another value than "
                "secrets.json") in done.stdout
        assert "eob cluster down && eob cluster up" in done.stdout
        assert "ok     AIRFLOW__CORE__FERNET_KEY" in done.stdout
        assert stray not in done.stdout + done.stderr
    finally:
        lifecycle.restart_one(cluster, "dag-processor")


def test_down_leaves_no_process_of_the_cluster(cluster: ClusterSpec) -> None:
    done = eob("cluster", "down", "--dir", str(cluster.dir), timeout=300)
    assert done.returncode == 0, done.stdout
    assert "no process of this cluster is left" in done.stdout
    assert processes_with(MARKER, f"{cluster.dir}:") == {}
    assert not list(cluster.paths.run_dir.glob("*.pid"))
    assert eob("cluster", "status", "--dir", str(cluster.dir)).returncode == 1
