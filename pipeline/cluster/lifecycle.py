"""`eob cluster up`, `down`, `status`: the cluster's processes started, stopped and observed.

Every process gets the same environment (`environment.py`) and its own log file and pid file
in the cluster folder; each runs in its own process group so that stopping it stops its
children (Celery's pool processes) too. Task processes, which Airflow's supervisor puts in groups
of their own, are found and stopped by the environment marker every process of the cluster
inherits (`processes_of`, and `down`'s final sweep).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.cluster import processes
from pipeline.cluster.api import AirflowApi, ApiError
from pipeline.cluster.bootstrap import AIRFLOW, bootstrap
from pipeline.cluster.dag_files import declared_dags
from pipeline.cluster.environment import (
    MARKER,
    RELAY_HOSTS,
    cluster_environment,
    process_environment,
    write_env_file,
)
from pipeline.cluster.secrets import OPS_USER, load_or_create_secrets, write_passwords_file
from pipeline.cluster.spec import REPO, ClusterError, ClusterSpec

Say = Callable[[str], None]
_HEALTHY = "healthy"


def command_for(spec: ClusterSpec, name: str) -> list[str]:
    """The command line of one managed process."""
    if name == "relays":
        return [sys.executable, "-m", "pipeline.cluster.relays", "--dir", str(spec.dir)]
    if name in spec.worker_names:
        # logs are read from the shared folder on this one machine: no log server per worker
        return [str(AIRFLOW), "celery", "worker", "--celery-hostname", f"{name}@%h",
                "--concurrency", str(spec.concurrency), "--skip-serve-logs"]
    if name == "triggerer":
        return [str(AIRFLOW), "triggerer", "--skip-serve-logs"]
    return [str(AIRFLOW), name]


def api_for(spec: ClusterSpec) -> AirflowApi:
    found = load_or_create_secrets(spec.paths.secrets_file)
    return AirflowApi(spec.api_url, OPS_USER, found.ops_password)


def environment_for(spec: ClusterSpec, name: str) -> dict[str, str]:
    found = load_or_create_secrets(spec.paths.secrets_file)
    return process_environment(cluster_environment(spec, found), spec, name)


def record_of(spec: ClusterSpec, name: str) -> processes.PidRecord | None:
    """The pid record of a running managed process, None when it is not running."""
    record = processes.read_pid_file(spec.paths.pid_file(name))
    return record if processes.running(record) else None


def start_one(spec: ClusterSpec, name: str, env: dict[str, str]) -> processes.PidRecord:
    paths = spec.paths
    return processes.start_process(command_for(spec, name), env=env, log_file=paths.log_file(name),
                                   pid_file=paths.pid_file(name), cwd=REPO)


# -- up -------------------------------------------------------------------------------------------


def up(spec: ClusterSpec, say: Say = print, *, timeout: float = 300.0) -> float:
    """Bring the whole cluster up (or the processes of it that are not running); returns the
    seconds it took. Waits until it answers: api-server healthy, scheduler, dag-processor and
    triggerer heartbeating, every worker answering a ping, every DAG of dags/ registered."""
    started = time.monotonic()
    paths = spec.paths
    paths.make()
    new_secrets = not paths.secrets_file.exists()
    found = load_or_create_secrets(paths.secrets_file)
    write_passwords_file(paths.passwords_file, found)
    spec.save()
    env = cluster_environment(spec, found)
    write_env_file(spec, env)
    _refuse_busy_ports(spec)
    try:
        bootstrap(spec, env, say, new_secrets=new_secrets)
    except ClusterError:
        if new_secrets:  # nothing used them yet: the next attempt judges afresh
            for made in (paths.secrets_file, paths.passwords_file, paths.env_file):
                made.unlink(missing_ok=True)
        raise
    for name in spec.process_names:
        if record_of(spec, name):
            say(f"{name}: already running")
            continue
        record = start_one(spec, name, process_environment(env, spec, name))
        say(f"{name}: started, pid {record.pid}, log {paths.log_file(name)}")
        if name == "relays":
            _wait(spec, "the relays to listen", lambda: _relays_listen(spec), started + timeout)
    wait_until_ready(spec, say, deadline=started + timeout)
    return time.monotonic() - started


def _refuse_busy_ports(spec: ClusterSpec) -> None:
    """A port someone else holds would make a process die at start, far from the reason."""
    wanted = [("api-server", "127.0.0.1", spec.api_port, "--api-port")]
    if spec.demo_relays:
        wanted += [("relays", host, spec.relay_port, "--relay-port")
                   for _, host in RELAY_HOSTS.values()]
    for name, host, port, option in wanted:
        if not record_of(spec, name) and _listening(host, port):
            raise ClusterError(f"{host}:{port} is already in use by another program (not this "
                               f"cluster's {name}): stop it or choose another {option}")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _relays_listen(spec: ClusterSpec) -> bool:
    return all(_listening(host, spec.relay_port) for _, host in RELAY_HOSTS.values())


def _wait(spec: ClusterSpec, what: str, ready: Callable[[], bool], deadline: float) -> None:
    """Poll `ready` until true; a managed process that died meanwhile fails at once, with the
    end of its log."""
    while True:
        _fail_on_dead_process(spec)
        if ready():
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}: see the logs in {spec.paths.logs_dir}")
        time.sleep(1.0)


def _fail_on_dead_process(spec: ClusterSpec) -> None:
    for name in spec.process_names:
        if processes.read_pid_file(spec.paths.pid_file(name)) and not record_of(spec, name):
            log = spec.paths.log_file(name)
            tail = log.read_text(errors="replace").splitlines()[-12:] if log.exists() else []
            raise ClusterError(f"{name} exited while the cluster came up; the end of {log}:\n"
                               + "\n".join(tail))


def wait_until_ready(spec: ClusterSpec, say: Say, *, deadline: float) -> None:
    api = api_for(spec)
    _wait(spec, "the api-server's health endpoint", lambda: _answers(api), deadline)
    say("api-server: healthy")
    _wait(spec, "scheduler, dag-processor and triggerer heartbeats",
          lambda: all(status == _HEALTHY for status in component_health(api).values()), deadline)
    say("scheduler, dag-processor, triggerer: heartbeating")
    expected = set(celery_names(spec))
    _wait(spec, f"workers {', '.join(sorted(expected))} to answer a ping",
          lambda: expected <= set(ping_workers(spec.redis_url)), deadline)
    say(f"workers answering: {', '.join(sorted(expected))}")
    _wait(spec, "the DAGs of dags/ to be parsed", lambda: _dags_parsed(api), deadline)
    say("DAGs parsed and registered")


def _answers(api: AirflowApi) -> bool:
    try:
        api.health()
        return True
    except ApiError:
        return False


def component_health(api: AirflowApi) -> dict[str, str]:
    """scheduler, dag_processor, triggerer → healthy / unhealthy / not seen (from the API)."""
    try:
        health = api.health()
    except ApiError as exc:
        return {"api-server": f"not answering ({exc})"}
    return {name: str((health.get(name) or {}).get("status") or "never started")
            for name in ("metadatabase", "scheduler", "dag_processor", "triggerer")}


def _dags_parsed(api: AirflowApi) -> bool:
    """Every DAG of dags/ registered, or an import error reported (which `check` then shows)."""
    try:
        return declared_dags().dag_ids <= set(api.dag_ids()) or bool(api.import_errors())
    except ApiError:
        return False


def celery_names(spec: ClusterSpec) -> list[str]:
    """The Celery node names the workers were started with (`workerN@<this host>`)."""
    return [f"{name}@{socket.gethostname()}" for name in spec.worker_names]


def ping_workers(redis_url: str, timeout: float = 2.0) -> list[str]:
    """The Celery workers answering a broadcast ping through the broker (Celery, not Airflow)."""
    from celery import Celery

    app = Celery(broker=redis_url)
    try:
        replies: list[dict[str, Any]] = app.control.ping(timeout=timeout) or []
    except Exception:  # the broker down: nobody answers
        return []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


# -- down -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownResult:
    stopped: list[str]
    killed: list[int]  # pids that ignored SIGTERM within the grace period
    survivors: dict[int, str]  # pid → marker of a process of this cluster still alive


def down(spec: ClusterSpec, *, grace_seconds: float = 30.0) -> DownResult:
    """Stop every managed process by its pid file (SIGTERM to its group, wait, SIGKILL), remove
    the pid files, then look for any process of this cluster left (by its environment marker)
    and kill it; `survivors` lists those that are still there after all that."""
    names = [name for name in spec.process_names if record_of(spec, name)]
    records = [r for r in (record_of(spec, name) for name in names) if r is not None]
    killed = processes.stop_groups(records, grace_seconds=grace_seconds)
    for name in spec.process_names:
        spec.paths.pid_file(name).unlink(missing_ok=True)
    prefix = f"{spec.dir}:"
    strays = processes.processes_with(MARKER, prefix)
    processes.kill_pids(strays)
    return DownResult(names, killed + list(strays), processes.processes_with(MARKER, prefix))


# -- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    name: str
    pid: int | None
    uptime: float | None


def process_status(spec: ClusterSpec) -> list[ProcessStatus]:
    found = []
    for name in spec.process_names:
        record = record_of(spec, name)
        found.append(ProcessStatus(name, record.pid if record else None,
                                   processes.uptime_seconds(record.pid) if record else None))
    return found


def processes_of(spec: ClusterSpec, name: str) -> dict[int, str]:
    """Every live process of one managed process (pid → marker): its own and everything started
    under it, which inherits its marker. Airflow's task supervisor puts each task process in a
    process group of its own, so a worker's group alone does not hold its running tasks."""
    marker = f"{spec.dir}:{name}"
    return {pid: value for pid, value in processes.processes_with(MARKER, marker).items()
            if value == marker}


def kill_one(spec: ClusterSpec, name: str) -> list[int]:
    """SIGKILL one managed process outright, as a lost host or the kernel's OOM killer of a whole
    cgroup would: its process group and every process started under it (a worker's task
    processes included), with no time to clean up. The pid file stays, naming a dead process,
    until `restart_one` or `down`. Returns the pids killed."""
    record = record_of(spec, name)
    victims = set(processes_of(spec, name))
    if record is not None:
        processes.kill_group(record.pid)
        victims.add(record.pid)
    processes.kill_pids(sorted(victims))
    return sorted(victims)


def restart_one(spec: ClusterSpec, name: str, overrides: dict[str, str] | None = None) -> None:
    """Stop one managed process and start it again, with `overrides` on top of its environment
    (an operator's experiment, or a test giving a process a wrong secret on purpose). Like
    systemd's restart of a unit, nothing of the old one survives: processes it started that left
    its group (a worker's task processes) are killed too."""
    record = record_of(spec, name)
    if record:
        processes.stop_groups([record], grace_seconds=30.0)
    processes.kill_pids(processes_of(spec, name))
    start_one(spec, name, {**environment_for(spec, name), **(overrides or {})})
