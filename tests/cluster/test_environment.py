"""One environment for every process of a cluster; a worker differs only by its name."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.cluster.environment import (
    HOSTNAME_CALLABLE,
    MARKER,
    cluster_environment,
    process_environment,
    settings_in,
    write_env_file,
)
from pipeline.cluster.hostname import worker_hostname
from pipeline.cluster.secrets import SECRET_VARIABLES, load_or_create_secrets
from pipeline.cluster.spec import DAGS_FOLDER, ClusterError, ClusterSpec


@pytest.fixture
def spec(tmp_path: Path) -> ClusterSpec:
    made = ClusterSpec(dir=tmp_path / "cluster", airflow_db="t_airflow", ledger_db="t_ledger",
                       api_port=18123, relay_port=12600, shards=3)
    made.paths.make()
    return made


def _env(spec: ClusterSpec, caller: dict[str, str] | None = None) -> dict[str, str]:
    found = load_or_create_secrets(spec.paths.secrets_file)
    return cluster_environment(spec, found, caller if caller is not None else {"PATH": "/usr/bin"})


def test_the_callers_airflow_and_pipeline_settings_never_leak_in(spec: ClusterSpec) -> None:
    env = _env(spec, {"PATH": "/usr/bin", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                      "AIRFLOW_HOME": "/elsewhere", "EOB_POOLS_FILE": "/etc/pools.toml"})
    assert env["PATH"] == "/usr/bin"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW_HOME"] == str(spec.paths.airflow_home)
    assert "EOB_POOLS_FILE" not in env


def test_airflow_runs_on_celery_redis_and_postgresql_with_psycopg3(spec: ClusterSpec) -> None:
    env = _env(spec)
    metadata = "postgresql+psycopg://postgres@127.0.0.1:5432/t_airflow"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == metadata
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == metadata
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + metadata
    assert env["AIRFLOW__CELERY__BROKER_URL"] == spec.redis_url
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "ops:op"


def test_every_process_gets_the_same_secrets_and_a_worker_its_own_hostname(spec: ClusterSpec) -> None:
    base = _env(spec)
    envs = {name: process_environment(base, spec, name) for name in spec.process_names}
    for variable in SECRET_VARIABLES:
        assert len({env[variable] for env in envs.values()}) == 1
    assert envs["worker1"]["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == HOSTNAME_CALLABLE
    assert envs["worker1"]["EOB_WORKER_NAME"] == "worker1" != envs["worker2"]["EOB_WORKER_NAME"]
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in envs["scheduler"]
    assert envs["scheduler"][MARKER] == f"{spec.dir}:scheduler"


def test_the_hostname_callable_tells_workers_on_one_machine_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOB_WORKER_NAME", "worker1")
    first = worker_hostname()
    monkeypatch.setenv("EOB_WORKER_NAME", "worker2")
    assert first.endswith("-worker1") and worker_hostname().endswith("-worker2")
    monkeypatch.delenv("EOB_WORKER_NAME")
    assert "-worker" not in worker_hostname()


def test_the_tasks_see_a_demo_pipeline_on_the_postgresql_ledger(spec: ClusterSpec) -> None:
    settings = settings_in(_env(spec))
    assert settings.environment == "demo"
    assert settings.ledger_dsn == "postgresql://postgres@127.0.0.1:5432/t_ledger"
    assert settings.workspace == spec.paths.workspace
    assert settings.shards == 3
    assert {(p.name, p.relay_host, p.relay_port) for p in settings.pools} == {
        ("pool_a", "127.0.0.12", 12600), ("pool_b", "127.0.0.13", 12600)}
    assert json.loads(_env(spec)["EOB_POOLS"])[0]["source_ip"] == "127.0.0.2"


def test_the_env_file_is_private_and_a_shell_can_source_it(spec: ClusterSpec) -> None:
    env = _env(spec)
    write_env_file(spec, env)
    assert stat.S_IMODE(spec.paths.env_file.stat().st_mode) == 0o600
    shown = subprocess.run(["bash", "-c", f"set -a; . {spec.paths.env_file}; echo $EOB_POOLS"],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert json.loads(shown.stdout) == json.loads(env["EOB_POOLS"])
    assert "PATH=" not in spec.paths.env_file.read_text()  # only the cluster's own variables


def test_a_spec_refuses_what_would_mix_two_things(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="separate databases"):
        ClusterSpec(dir=tmp_path, airflow_db="same", ledger_db="same")
    with pytest.raises(ClusterError, match="names a server"):
        ClusterSpec(dir=tmp_path, pg_url="postgresql://postgres@127.0.0.1:5432/eob")
    with pytest.raises(ClusterError, match="lower-case"):
        ClusterSpec(dir=tmp_path, ledger_db='x"; DROP')


def test_a_spec_round_trips_through_its_file(spec: ClusterSpec) -> None:
    spec.save()
    assert ClusterSpec.load(spec.dir) == spec
    with pytest.raises(ClusterError, match="eob cluster up"):
        ClusterSpec.load(spec.dir / "nothing-here")
