"""Run the project's DAGs with Airflow on this machine (`dag.test()`), for the demo and tests.

Two ways, both Airflow's own: in this process, one task after another (`dag.test()`, quick to
start, what most tests use), or ``parallel``: `dag.test(use_executor=True)` hands each task to
Airflow's LocalExecutor, whose worker processes run the tasks side by side (render shards on
every core, each IP pool's sender alongside them) and talk to Airflow's execution API, served
here from a thread on a loopback port.

The workers are started by a forkserver, never forked from this process: this process runs
threads (the execution API writing Airflow's SQLite database, the demo's relays and progress
bars), and a process forked while one of them holds a library's lock inherits the lock held,
by nobody, for ever. A render shard forked while another thread was inside SQLite hung at its
first ledger query, and the month with it. The forkserver is a new, single-threaded
interpreter; it imports Airflow's task runner and the pipeline once and freezes them out of
the garbage collector (`pipeline.demo.forkserver_preload`), so a worker and every task it starts
begin with them imported and never collect them, as a Celery worker's tasks do.

This is the one module of the library that touches Airflow, and it imports it lazily: the
environment (AIRFLOW_HOME, DAGS_FOLDER, metadata DB) must be set before Airflow is imported.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import secrets
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
POOLS_FILE = Path(__file__).resolve().parents[2] / "infra" / "airflow" / "pools.json"


class DagRunFailed(RuntimeError):
    """A DAG run ended in a state other than success; the message lists the failed tasks."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    state: str
    tries: int  # how many times it ran (0: never, e.g. upstream_failed)


@dataclass(frozen=True, slots=True)
class DagRunOutcome:
    dag_id: str
    state: str
    task_states: dict[str, int]
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)  # by task id; mapped: "render[0]"


def configure(airflow_home: Path) -> None:
    """Point Airflow at a private home and this project's DAGs; must precede `import airflow`."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{airflow_home / 'airflow.db'}"
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    # the parallel runs: LocalExecutor workers (forked from this process, so they share its
    # secret) reach the execution API this process serves on a loopback port
    os.environ["AIRFLOW__CORE__EXECUTOR"] = f"{__name__}.DrainingLocalExecutor"
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", str(PARALLELISM))
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(64)
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{_free_port()}/execution/"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = os.environ.get("EOB_AIRFLOW_LOG_LEVEL", "WARNING")
    use_forkserver()
    # Airflow's in-process API client imports starlette's test client, which warns about httpx
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    # the standard provider's sensor module still imports a helper Airflow core has moved
    warnings.filterwarnings("ignore", message=".*operator_helpers.determine_kwargs.*")


def use_forkserver() -> None:
    """Start this process's worker processes from a forkserver (see the module docstring)."""
    multiprocessing.set_start_method("forkserver", force=True)
    multiprocessing.set_forkserver_preload([*FORKSERVER_PRELOAD, "pipeline.demo.forkserver_preload"])


_forkserver_environment: dict[str, str] | None = None


def _start_forkserver() -> None:
    """Start the forkserver now, with this process's environment (the run's settings, which its
    workers and their tasks inherit from it, not from this process); refuse a later parallel
    run in another environment, whose tasks would otherwise read the first run's settings."""
    global _forkserver_environment
    from multiprocessing import forkserver

    environment = dict(os.environ)
    if _forkserver_environment is None:
        forkserver.ensure_running()
        _forkserver_environment = environment
    elif environment != _forkserver_environment:
        changed = sorted(k for k in environment.keys() | _forkserver_environment.keys()
                         if environment.get(k) != _forkserver_environment.get(k))
        raise DagRunFailed("a parallel run needs the environment of this process's first one "
                           f"(its workers inherit that); changed: {', '.join(changed)}")


FORKSERVER_PRELOAD = (
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
)
"""Airflow's side of a LocalExecutor worker, imported once by the forkserver."""

PARALLELISM = 8
"""Tasks the LocalExecutor runs at once: every render shard and every pool's sender of a demo."""
WORKER_EXIT_SECONDS = 30.0
"""How long a LocalExecutor worker may take to exit once the run has ended (every task is done)."""


def __getattr__(name: str) -> Any:
    """`DrainingLocalExecutor`, built on first use: Airflow is imported only then (see above)."""
    if name == "DrainingLocalExecutor":
        return _draining_local_executor()
    raise AttributeError(name)


@functools.cache
def _draining_local_executor() -> type:
    """Airflow's LocalExecutor with an `end()` that cannot hang once the run is over.

    The pinned release joins each worker without a limit and reads the workers' results only
    afterwards (apache/airflow#67870, fixed upstream later): a worker blocked writing its result,
    or one that never took its stop message, keeps the finished run waiting forever. Here the
    results are read while waiting, and a worker still alive after `WORKER_EXIT_SECONDS` (every
    task has finished by then) is terminated, with a warning."""
    from airflow.executors.local_executor import LocalExecutor

    class DrainingLocalExecutor(LocalExecutor):  # type: ignore[misc]
        def start(self) -> None:
            super().start()
            # Airflow starts every worker at once only when it forks them; from a forkserver it
            # would start one per queued task as they come, each a fork of the forkserver too
            while len(self.workers) < self.parallelism:
                self._spawn_worker()

        def end(self) -> None:
            for proc in self.workers.values():
                if proc.is_alive():
                    self.activity_queue.put(None)  # one stop message per live worker
            deadline = time.monotonic() + WORKER_EXIT_SECONDS
            for pid, proc in self.workers.items():
                while proc.is_alive() and time.monotonic() < deadline:
                    self._read_results()
                    proc.join(timeout=0.1)
                if proc.is_alive():
                    logging.getLogger(__name__).warning(
                        "LocalExecutor worker %s did not exit after the run ended; terminated", pid)
                    proc.terminate()
                    proc.join(timeout=5)
                    if proc.is_alive():
                        proc.kill()
                        proc.join()
                proc.close()
            self._read_results()
            self.activity_queue.close()
            self.result_queue.close()

    return DrainingLocalExecutor


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _ExecutionApi:
    """Airflow's execution API (what task processes report to), served from a daemon thread for
    as long as this process runs parallel DAG runs."""

    _lock = threading.Lock()
    _server: Any = None

    @classmethod
    def ensure_started(cls) -> None:
        with cls._lock:
            if cls._server is not None:
                return
            import uvicorn
            from airflow.api_fastapi.app import create_app

            url = os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
            port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
            server = uvicorn.Server(uvicorn.Config(create_app("execution"), host="127.0.0.1",
                                                   port=port, log_level="warning"))
            threading.Thread(target=server.run, name="airflow-execution-api", daemon=True).start()
            deadline = time.monotonic() + 30
            while not server.started:
                if time.monotonic() > deadline:
                    raise DagRunFailed(f"Airflow's execution API did not start on port {port}")
                time.sleep(0.05)
            cls._server = server


def init_metadata_db() -> None:
    """A fresh metadata database with the project's pools."""
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.resetdb()
    for name, spec in json.loads(POOLS_FILE.read_text()).items():
        Pool.create_or_update_pool(name, slots=spec["slots"], description=spec["description"],
                                   include_deferred=spec.get("include_deferred", False))


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    if bag.import_errors:
        raise DagRunFailed(f"DAG file for {dag_id} does not import: {bag.import_errors}")
    return bag.get_dag(dag_id)


def run_dag(dag_id: str, conf: dict[str, Any] | None = None, *, check: bool = True,
            retry_delay: timedelta | None = None, parallel: bool = False) -> DagRunOutcome:
    """Run one DAG to completion; raises DagRunFailed unless it succeeded (with `check`).
    `retry_delay` replaces every task's delay between tries, so that a test can see how often a
    task is tried without waiting minutes for each retry. `parallel`: tasks run side by side in
    LocalExecutor worker processes (see the module docstring), else one by one in this process."""
    dag = load_dag(dag_id)
    if retry_delay is not None:
        for operator in dag.tasks:
            operator.retry_delay = retry_delay
    if parallel:
        _ExecutionApi.ensure_started()
        _start_forkserver()
        # dag.test() warns once a second while tasks run elsewhere; the outcome is read below
        dag_logger = logging.getLogger("airflow.sdk.definitions.dag")
        level = dag_logger.level
        dag_logger.setLevel(logging.ERROR)
        try:
            dag_run = dag.test(run_conf=conf or {}, use_executor=True)
        finally:
            dag_logger.setLevel(level)
    else:
        dag_run = dag.test(run_conf=conf or {})
    states: dict[str, int] = {}
    tasks: dict[str, TaskOutcome] = {}
    failed = []
    for ti in dag_run.get_task_instances():
        states[str(ti.state)] = states.get(str(ti.state), 0) + 1
        name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        tasks[name] = TaskOutcome(str(ti.state), int(ti.try_number or 0))
        if str(ti.state) not in ("success", "skipped"):
            failed.append(f"{ti.task_id}[{ti.map_index}]={ti.state}")
    outcome = DagRunOutcome(dag_id, str(dag_run.state), states, tasks)
    if check and outcome.state != "success":
        raise DagRunFailed(f"{dag_id} ended {outcome.state}; tasks not successful: {failed}")
    return outcome
