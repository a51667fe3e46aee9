"""`eob cluster check`: what an operator runs before the first DAG run on a cluster.

Each check is ok or FAILED with what was found or what to fix, as `eob check` prints them. It
looks at the running processes themselves (their environments from /proc), at Airflow through
its REST API, at the ledger, and, from a worker's own environment, at the relays (`eob check
--relays`, which greets each relay with a verified STARTTLS and sends nothing). No secret value
is ever printed: secrets are compared by their SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.cluster import processes
from pipeline.cluster.api import AirflowApi, ApiError, http_json
from pipeline.cluster.dag_files import declared_dags
from pipeline.cluster.environment import settings_in
from pipeline.cluster.lifecycle import api_for, record_of
from pipeline.cluster.secrets import SECRET_VARIABLES, load_or_create_secrets
from pipeline.cluster.spec import POOLS_TOML, REPO, ClusterSpec

EOB = REPO / ".venv" / "bin" / "eob"
_RELAY_LINE = re.compile(r"^(?P<status>ok|FAILED)\s+(?P<what>pool \S+: relay \S+): (?P<detail>.*)$")
RESTART = "restart the cluster from its secrets file: `eob cluster down && eob cluster up`"


@dataclass(frozen=True, slots=True)
class ClusterCheck:
    """One line of `eob cluster check`: what was checked, whether it passed, what to fix."""

    name: str
    ok: bool
    detail: str


def run_cluster_checks(spec: ClusterSpec) -> list[ClusterCheck]:
    """Every check, in the order a run depends on them."""
    environs = _environments(spec)
    checks = [_processes(spec, environs)]
    checks += _secrets(spec, environs)
    checks += _execution_api(spec, environs)
    api = api_for(spec)
    checks += _dags(api)
    checks += _pools_and_connections(spec, api, environs)
    checks.append(_ledger(spec))
    checks += _relays(spec, environs)
    return checks


def _environments(spec: ClusterSpec) -> dict[str, dict[str, str]]:
    """Each running managed process's environment, as the kernel holds it."""
    found = {}
    for name in spec.process_names:
        record = record_of(spec, name)
        environ = processes.read_environ(record.pid) if record else None
        if environ is not None:
            found[name] = environ
    return found


def _processes(spec: ClusterSpec, environs: Mapping[str, dict[str, str]]) -> ClusterCheck:
    missing = [name for name in spec.process_names if name not in environs]
    if missing:
        return ClusterCheck("processes", False, f"not running: {', '.join(missing)} (logs in "
                                                f"{spec.paths.logs_dir}): `eob cluster up` starts them")
    return ClusterCheck("processes", True, ", ".join(environs))


def _digest(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def _secrets(spec: ClusterSpec, environs: Mapping[str, dict[str, str]]) -> list[ClusterCheck]:
    """Each shared secret: every Airflow process holds the value of the cluster's secrets file."""
    expected = load_or_create_secrets(spec.paths.secrets_file).environment()
    checks = []
    for variable in SECRET_VARIABLES:
        held: dict[str, str | None] = {name: _digest(environ.get(variable))
                                       for name, environ in environs.items()
                                       if name != "relays"}  # not Airflow: holds no Airflow secret
        checks.append(_secret_check(spec, variable, _digest(expected[variable]), held))
    return checks


def _secret_check(spec: ClusterSpec, variable: str, wanted: str | None,
                  held: Mapping[str, str | None]) -> ClusterCheck:
    if not held:
        return ClusterCheck(variable, False, "no Airflow process is running to compare: `eob cluster up`")
    wrong = sorted(name for name, digest in held.items() if digest != wanted)
    if not wrong:
        return ClusterCheck(variable, True, f"identical in {len(held)} processes (compared by SHA-256)")
    unset = [name for name in wrong if held[name] is None]
    return ClusterCheck(variable, False, (
        f"{', '.join(wrong)} {'has' if len(wrong) == 1 else 'have'} another value than "
        f"{spec.paths.secrets_file.name} and the other processes"
        + (f" ({', '.join(unset)}: unset)" if unset else "")
        + f"; values are not shown. A task signed or encrypted by one process would be refused "
        f"by another: {RESTART}"))


def _execution_api(spec: ClusterSpec, environs: Mapping[str, dict[str, str]]) -> list[ClusterCheck]:
    """The Task Execution API (`/execution/health`) at the URL each worker was started with."""
    checks = []
    for name in spec.worker_names:
        url = environs.get(name, {}).get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
        check = f"{name}: execution API"
        if url is None:
            checks.append(ClusterCheck(check, False, "the worker is not running, or was started "
                                                     "without AIRFLOW__CORE__EXECUTION_API_SERVER_URL"))
            continue
        try:
            answer = _health(url.rstrip("/") + "/health")
        except ApiError as exc:
            checks.append(ClusterCheck(check, False, f"{exc}: the api-server must serve the "
                                                     f"execution app at {url} (`eob cluster status`)"))
            continue
        ok = (answer or {}).get("status") == "healthy"
        checks.append(ClusterCheck(check, ok, f"{url} answers {answer}"))
    return checks


HEALTH_TRIES = 3
"""A busy api-server (a run in progress, a slow host) may miss one answer; three misses fail."""


def _health(url: str) -> Any:
    for _ in range(HEALTH_TRIES - 1):
        try:
            return http_json("GET", url)
        except ApiError as exc:
            if exc.status is not None:
                raise  # an HTTP error is an answer: asking again will not change it
    return http_json("GET", url)


def _dags(api: AirflowApi) -> list[ClusterCheck]:
    try:
        errors = api.import_errors()
        registered = set(api.dag_ids())
    except ApiError as exc:
        return [ClusterCheck("DAGs", False, f"{exc}: is the api-server up? (`eob cluster status`)")]
    checks = [ClusterCheck("DAG import errors", not errors, "none" if not errors else "; ".join(
        f"{e.get('filename')}: {str(e.get('stack_trace', '')).strip().splitlines()[-1:]}"
        for e in errors) + " — fix the file; the dag-processor parses it again within a minute")]
    missing = sorted(declared_dags().dag_ids - registered)
    checks.append(ClusterCheck("DAGs registered", not missing, (
        f"missing {', '.join(missing)}: see the dag-processor's log" if missing
        else ", ".join(sorted(declared_dags().dag_ids)))))
    return checks


def _required_connections(environs: Mapping[str, dict[str, str]]) -> tuple[set[str], str]:
    """The connection ids the pools name: the cluster's pool file if its workers have one,
    else infra/pools.toml, the pool file the shipped connections file is written for."""
    from pipeline.delivery.pools import load_pool_file, send_config

    worker = next((env for name, env in environs.items() if name.startswith("worker")), None)
    settings = settings_in(worker) if worker is not None else None
    if settings is not None and settings.pools_file is not None:
        config, source = send_config(settings), str(settings.pools_file)
    else:
        config, source = load_pool_file(POOLS_TOML), str(POOLS_TOML.relative_to(REPO))
    return {p.credentials_conn_id for p in config.pools if p.credentials_conn_id}, source


def _worker_slots(spec: ClusterSpec, pools: Mapping[str, dict[str, object]]) -> ClusterCheck:
    """Enough Celery slots that send tasks cannot starve render: a send task may start while
    render runs and wait for its statements, holding its worker slot, so with no slot left
    beside the sends the run never finishes."""
    slots = spec.workers * spec.concurrency
    send = int(str(pools.get("eob_send", {}).get("slots", 0)))
    render = int(str(pools.get("eob_render", {}).get("slots", 0)))
    detail = (f"{spec.workers} workers x {spec.concurrency} = {slots} task slots; eob_send "
              f"{send} + eob_render {render}")
    if slots <= send:
        return ClusterCheck("worker slots", False, f"{detail}: the send tasks can hold every slot "
                            "while they wait for render, which then never runs: `eob cluster down`, "
                            f"then `eob cluster up --concurrency {-(-(send + render) // spec.workers)}`")
    return ClusterCheck("worker slots", True, detail + ("" if slots >= send + render else
                        " (render runs with fewer slots than its pool allows while sends run)"))


def _pools_and_connections(spec: ClusterSpec, api: AirflowApi,
                           environs: Mapping[str, dict[str, str]]) -> list[ClusterCheck]:
    try:
        pools = api.pools()
        connections = set(api.connection_ids())
    except ApiError as exc:
        return [ClusterCheck("pools and connections", False, str(exc))]
    wanted = sorted(declared_dags().pools)
    missing = [name for name in wanted if name not in pools or int(pools[name]["slots"]) < 1]
    checks = [ClusterCheck("Airflow pools", not missing, (
        f"missing or without slots: {', '.join(missing)}: `airflow pools import "
        "infra/airflow/pools.json` (eob cluster up does)" if missing else
        ", ".join(f"{name} ({pools[name]['slots']} slots)" for name in wanted)))]
    checks.append(_worker_slots(spec, pools))
    required, source = _required_connections(environs)
    absent = sorted(required - connections)
    checks.append(ClusterCheck("relay connections", not absent, (
        f"{', '.join(absent)} named by {source} but not in Airflow: `airflow connections import "
        "infra/airflow/connections.json`, then set the real logins" if absent else
        f"{', '.join(sorted(required))} (named by {source}; replace the placeholder logins "
        "before a real run)")))
    return checks


def _ledger(spec: ClusterSpec) -> ClusterCheck:
    from pipeline.ledger import Ledger
    from pipeline.ledger.sql import migrations

    try:
        ledger = Ledger.open(spec.ledger_url, migrate=False)
        try:
            version = ledger.schema_version()
            latest = max(m.version for m in migrations(ledger.dialect))
        finally:
            ledger.close()
    except Exception as exc:  # no database, no table: not migrated, whatever the driver says
        return ClusterCheck("ledger", False, f"{spec.ledger_db}: {type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0]}: `eob cluster up` migrates it")
    if version < latest:
        return ClusterCheck("ledger", False, f"{spec.ledger_db} at schema {version}, the code needs "
                                             f"{latest}: `eob cluster up` migrates it")
    return ClusterCheck("ledger", True, f"{spec.ledger_db} at schema version {version} (latest)")


def _relays(spec: ClusterSpec, environs: Mapping[str, dict[str, str]]) -> list[ClusterCheck]:
    """`eob check --relays` run with the first worker's own environment: the configuration and
    each relay (EHLO, verified STARTTLS, QUIT) as that worker's tasks will see them."""
    name = next((n for n in spec.worker_names if n in environs), None)
    if name is None:
        return [ClusterCheck("relays", False, "no worker running to check the relays from")]
    command = [str(EOB) if EOB.exists() else sys.executable, "check", "--relays"]
    if not EOB.exists():
        command[1:1] = ["-c", "from pipeline.cli import app; app()"]
    done = subprocess.run(command, env=environs[name], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    lines = done.stdout.splitlines()
    relays = [match for match in map(_RELAY_LINE.match, lines) if match]
    checks = [ClusterCheck(f"{name}: {m['what']}", m["status"] == "ok", m["detail"]) for m in relays]
    failed = [line for line in lines if line.startswith("FAILED") and not _RELAY_LINE.match(line)]
    summary = lines[-1] if lines else done.stderr.strip()[-300:]
    checks.append(ClusterCheck(f"{name}: eob check --relays", done.returncode == 0,
                               summary if done.returncode == 0 else "; ".join(failed) or summary))
    return checks
