"""One environment for every process of a cluster, built from the spec and the secrets.

Every process (api-server, scheduler, dag-processor, triggerer, each worker, the relays, and
the one-off `airflow db migrate` and imports) starts from `cluster_environment`: the same
metadata database, broker, secrets and EOB_* settings. A worker adds only its name and the
hostname callable that tells it apart. Variables of the calling shell that Airflow or the
pipeline would read (`AIRFLOW*`, `EOB_*`) are dropped first, so an operator's or a test's own
settings never leak into the cluster.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping

from pipeline.cluster.secrets import ClusterSecrets, write_private
from pipeline.cluster.spec import DAGS_FOLDER, ClusterSpec
from pipeline.settings import Settings

MARKER = "EOB_CLUSTER_PROCESS"
"""Set in each managed process's environment to `<cluster dir>:<name>`, so that `down` can find
every process of this cluster (task processes inherit it) and nothing else."""
HOSTNAME_CALLABLE = "pipeline.cluster.hostname.worker_hostname"
RELAY_HOSTS = {"pool_a": ("127.0.0.2", "127.0.0.12"), "pool_b": ("127.0.0.3", "127.0.0.13")}
"""The demo's two loopback pools (source address, relay address), as `pipeline.settings` has them."""


def clean_base(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything Airflow or the pipeline would read."""
    env = os.environ if environ is None else environ
    return {key: value for key, value in env.items()
            if not key.startswith(("AIRFLOW", "EOB_", "_AIRFLOW")) and key != "PYTHONPATH"}


def airflow_environment(spec: ClusterSpec, found: ClusterSecrets) -> dict[str, str]:
    """Airflow's configuration: CeleryExecutor on Redis, PostgreSQL metadata (psycopg 3), the
    api-server on loopback, the simple auth manager with the ops user, no examples."""
    paths = spec.paths
    metadata = spec.database_url(spec.airflow_db, "postgresql+psycopg")
    env = {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # DAG files change only with a release: a parse every 30 s (the default) takes CPU from
        # the tasks on a small host
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        # A task's supervisor notices its process has exited only at its next wake-up when the
        # process closes its sockets before it exits (it does, then tears the interpreter down):
        # at the default 5 s a freed worker slot sat idle for up to 5 s after every other task.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        # a worker imports the pipeline once; each task it forks then starts without importing it
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "pipeline.stages.worker_start.CELERY_CONFIG",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{spec.api_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        # Airflow would derive postgresql+asyncpg:// (not installed); psycopg 3 is async too
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
        "AIRFLOW__CELERY__BROKER_URL": spec.redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(spec.concurrency),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(spec.api_port),
        "AIRFLOW__API__BASE_URL": spec.api_url,
        "AIRFLOW__API__WORKERS": "1",  # two cores: one uvicorn worker is plenty for ops
        # Without it, unpausing eob_monthly starts a scheduled run for last month at once (its
        # cron's latest tick is in the past), which would queue ahead of `eob cluster run`.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(spec.schedules),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **found.environment(),
        # setproctitle (the api-server, Celery) otherwise overwrites /proc/<pid>/environ, which
        # `eob cluster check` reads to compare the secrets each process really holds
        "SPT_NOENV": "1",
    }
    return env


def pipeline_environment(spec: ClusterSpec) -> dict[str, str]:
    """The EOB_* settings the tasks read: a demo-mode pipeline with its ledger in the cluster's
    PostgreSQL ledger database and its workspace inside the cluster folder."""
    from pipeline.demo.run import demo_environment

    paths = spec.paths
    env = demo_environment(paths.workspace, paths.tls_dir / "ca.pem", spec.shards)
    env["EOB_LEDGER_URL"] = spec.ledger_url
    if spec.demo_relays:
        env["EOB_POOLS"] = json.dumps([
            {"name": name, "source_ip": source, "relay_host": relay, "relay_port": spec.relay_port}
            for name, (source, relay) in RELAY_HOSTS.items()])
    return env


def cluster_environment(spec: ClusterSpec, found: ClusterSecrets,
                        environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every process of the cluster starts with (its own additions: `process_environment`)."""
    return {**clean_base(environ), **airflow_environment(spec, found), **pipeline_environment(spec),
            **spec.extra_env}


def process_environment(base: Mapping[str, str], spec: ClusterSpec, name: str) -> dict[str, str]:
    """One managed process's environment: the cluster's, its marker, and for a worker its name
    and the hostname callable that makes Airflow record it apart from the other workers."""
    env = {**base, MARKER: f"{spec.dir}:{name}"}
    if name in spec.worker_names:
        env["EOB_WORKER_NAME"] = name
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = HOSTNAME_CALLABLE
    return env


def write_env_file(spec: ClusterSpec, env: Mapping[str, str]) -> None:
    """`cluster.env` (0600: it holds the secrets): `set -a; . var/cluster/cluster.env` gives a
    shell the cluster's configuration, e.g. to run `airflow dags list` against it."""
    base = clean_base(env)
    lines = [f"{key}={shlex.quote(value)}" for key, value in sorted(env.items()) if key not in base]
    write_private(spec.paths.env_file, "# written by eob cluster up; secrets inside, keep 0600\n"
                  + "\n".join(lines) + "\n")


def settings_in(env: Mapping[str, str]) -> Settings:
    """The pipeline's Settings exactly as a process with environment `env` sees them (the
    caller's own EOB_* variables do not count)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
