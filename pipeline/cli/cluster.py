"""`eob cluster …`: a real Airflow 3 cluster on this machine (api-server, scheduler,
dag-processor, triggerer, Celery workers on Redis, PostgreSQL for Airflow and the ledger), its
preflight, and a monthly run through its REST API. Everything lives in one folder
(default var/cluster/); see pipeline/cluster for how."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cluster import ClusterError, ClusterSpec
from pipeline.cluster.spec import DEFAULT_DIR

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()

Dir = Annotated[Path, typer.Option("--dir", help="The cluster folder (logs, pids, secrets, workspace)")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]{message}[/]")
    return typer.Exit(code)


def _load(directory: Path) -> ClusterSpec:
    try:
        return ClusterSpec.load(directory.resolve())
    except ClusterError as exc:
        raise _fail(str(exc)) from None


def _spec_for_up(directory: Path, given: dict[str, Any]) -> ClusterSpec:
    """The saved spec of this folder (a cluster brought up before) with the options given now;
    the defaults for a new folder."""
    directory = directory.resolve()
    chosen = {key: value for key, value in given.items() if value is not None}
    try:
        saved = ClusterSpec.load(directory) if (directory / "cluster.json").exists() else None
        if saved is None:
            return ClusterSpec(dir=directory, **chosen)
        return dataclasses.replace(saved, dir=directory, **chosen)
    except (ClusterError, TypeError) as exc:
        raise _fail(str(exc), 2) from None


@app.command()
def up(
    directory: Dir = DEFAULT_DIR,
    workers: Annotated[int | None, typer.Option(help="Celery workers (default 2)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Tasks at once per worker (default 2)")] = None,
    shards: Annotated[int | None, typer.Option(
        help="EOB_SHARDS of the workers: render tasks per run (default 4)")] = None,
    pg_url: Annotated[str | None, typer.Option(
        help="PostgreSQL server (default postgresql://postgres@127.0.0.1:5432)")] = None,
    airflow_db: Annotated[str | None, typer.Option(help="Airflow's database (default eob_airflow)")] = None,
    ledger_db: Annotated[str | None, typer.Option(help="The ledger's database (default eob_ledger)")] = None,
    redis_url: Annotated[str | None, typer.Option(
        help="Celery broker (default redis://127.0.0.1:6379/2)")] = None,
    api_port: Annotated[int | None, typer.Option(help="api-server port on 127.0.0.1 (default 8080)")] = None,
    relay_port: Annotated[int | None, typer.Option(help="Port of the demo relays (default 2525)")] = None,
    demo_relays: Annotated[bool | None, typer.Option(
        "--demo-relays/--no-demo-relays", help="Run the demo's loopback SMTP relays (default on)")] = None,
    schedules: Annotated[bool | None, typer.Option(
        "--schedules/--no-schedules", help="Let the scheduler start runs on the DAGs' schedules "
        "(default off: runs are started by `eob cluster run`)")] = None,
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="KEY=VALUE added to every process's environment, e.g. "
        "EOB_POOLS_FILE=/etc/eob/pools.toml with --no-demo-relays (replaces the saved ones)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cluster to answer")] = 300.0,
) -> None:
    """Create the databases, migrate, import pools and connections, start every process and wait
    until the cluster answers. A re-run starts only what is not running."""
    from pipeline.cluster import lifecycle

    spec = _spec_for_up(directory, {
        "workers": workers, "concurrency": concurrency, "shards": shards, "pg_url": pg_url,
        "airflow_db": airflow_db, "ledger_db": ledger_db, "redis_url": redis_url,
        "api_port": api_port, "relay_port": relay_port, "demo_relays": demo_relays,
        "schedules": schedules, "extra_env": _pairs(env) if env is not None else None})
    _refuse_changes_while_running(spec)
    try:
        seconds = lifecycle.up(spec, lambda line: console.print(f"  {line}"), timeout=timeout)
    except ClusterError as exc:
        started = [p.name for p in lifecycle.process_status(spec) if p.pid is not None]
        raise _fail(str(exc) + (f"\nstill running: {', '.join(started)}; `eob cluster down --dir "
                                f"{spec.dir}` stops them" if started else "")) from None
    console.print(f"cluster up in {seconds:.0f} s: {spec.api_url} (user ops, password in "
                  f"{spec.paths.secrets_file}); next: eob cluster check --dir {spec.dir}")


def _pairs(items: list[str]) -> dict[str, str]:
    if any(not item.partition("=")[0] or "=" not in item for item in items):
        raise _fail("--env takes KEY=VALUE", 2)
    return dict(item.partition("=")[::2] for item in items)


def _refuse_changes_while_running(spec: ClusterSpec) -> None:
    """Running processes keep the environment they started with: a changed option applies only
    after `down`."""
    from pipeline.cluster import lifecycle

    if not spec.paths.spec_file.exists():
        return
    saved = ClusterSpec.load(spec.dir)
    running = [p.name for p in lifecycle.process_status(saved) if p.pid is not None]
    changed = [f.name for f in dataclasses.fields(spec) if getattr(spec, f.name) != getattr(saved, f.name)]
    if running and changed:
        raise _fail(f"the cluster is running with other settings ({', '.join(changed)}): `eob "
                    f"cluster down --dir {spec.dir}` first, then up with the new ones", 2)


@app.command()
def down(directory: Dir = DEFAULT_DIR) -> None:
    """Stop every process (SIGTERM to its group, then SIGKILL), and make sure none is left."""
    from pipeline.cluster import lifecycle

    result = lifecycle.down(_load(directory))
    console.print(f"stopped: {', '.join(result.stopped) or 'nothing was running'}")
    if result.killed:
        console.print(f"[yellow]killed (did not stop in time, or outside their group): "
                      f"{', '.join(map(str, result.killed))}[/]")
    if result.survivors:
        raise _fail("still running: " + ", ".join(f"{pid} ({name})" for pid, name in
                                                   result.survivors.items())
                    + ": stop them by hand (kill -9 PID) and look at why in the logs")
    console.print("no process of this cluster is left")


@app.command()
def status(directory: Dir = DEFAULT_DIR) -> None:
    """Each process (pid, uptime), the health the API reports, the workers answering a ping.
    Exits with 1 when anything is down."""
    from pipeline.cluster import lifecycle

    spec = _load(directory)
    table = Table(title=f"cluster {spec.dir}")
    for column in ("process", "pid", "up for", "health"):
        table.add_column(column)
    health = lifecycle.component_health(lifecycle.api_for(spec))
    pings = set(lifecycle.ping_workers(spec.redis_url))
    problems = 0
    for item in lifecycle.process_status(spec):
        answer = _health_of(spec, item.name, health, pings)
        problems += item.pid is None or answer not in ("healthy", "answers ping", "-")
        table.add_row(item.name, str(item.pid or "[red]not running[/]"),
                      f"{item.uptime:.0f} s" if item.uptime is not None else "", answer)
    console.print(table)
    console.print(f"metadata database: {health.get('metadatabase', 'unknown')}")
    if problems:
        raise _fail(f"{problems} process(es) down or unhealthy: logs in {spec.paths.logs_dir}; "
                    "`eob cluster up` starts what is not running")


def _health_of(spec: ClusterSpec, name: str, health: dict[str, str], pings: set[str]) -> str:
    if name in spec.worker_names:
        return "answers ping" if any(p.startswith(f"{name}@") for p in pings) else "no ping answer"
    if name == "api-server":
        return health.get("api-server", "healthy")  # present only when it does not answer
    return health.get(name.replace("-", "_"), "-")


@app.command()
def check(directory: Dir = DEFAULT_DIR) -> None:
    """The preflight before the first DAG run: secrets identical in every process, the execution
    API reachable from the workers, DAGs parsed, pools and connections present, the ledger
    migrated, the relays answering with verified STARTTLS. Exits with 1 when any failed."""
    from pipeline.cli.check import print_checks
    from pipeline.cluster.preflight import run_cluster_checks

    print_checks(run_cluster_checks(_load(directory)), "eob cluster check")


@app.command()
def run(
    directory: Dir = DEFAULT_DIR,
    members: Annotated[int, typer.Option(min=1, help="Members in the synthetic extract")] = 1000,
    shards: Annotated[int | None, typer.Option(
        help="Must be the cluster's (set by `eob cluster up --shards`); given only to check")] = None,
    period: Annotated[str, typer.Option(help="Statement month, YYYY-MM")] = "2026-11",
    seed: Annotated[int, typer.Option(help="Random seed of the extract")] = 7,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and route, send nothing")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run to end")] = 1800.0,
) -> None:
    """Generate an extract, run eob_monthly through the REST API, print the run from the ledger
    and reconcile it with what the relays received. Exits with 1 when the run failed or the
    counts do not reconcile."""
    from pipeline.cluster import lifecycle
    from pipeline.cluster.monthly import run_monthly

    spec = _load(directory)
    if shards is not None and shards != spec.shards:
        raise _fail(f"the workers run with EOB_SHARDS={spec.shards}: `eob cluster down` and `eob "
                    f"cluster up --shards {shards}` to run with {shards}", 2)
    try:
        result = run_monthly(spec, lifecycle.api_for(spec), period=period, members=members,
                             seed=seed, dry_run=dry_run, timeout=timeout,
                             say=lambda line: console.print(f"  {line}"))
    except (ClusterError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    _print_run(result)
    if not result.ok:
        raise _fail(f"run {result.run_id} ended {result.state}; reconciled: "
                    f"{result.summary.reconciled}; task logs in {spec.paths.airflow_home / 'logs'}")


def _print_run(result: Any) -> None:
    s = result.summary
    table = Table(title=f"eob_monthly {result.run_id}: {result.state} in {result.seconds:.0f} s")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for status, n in sorted(s.statuses.items()):
        table.add_row(f"statements {status}", str(n))
    report = s.report
    for label, key in (("statements", "statements"), ("emailed, no bounce", "sent"),
                       ("on paper", "paper"), ("bounced", "bounced"), ("failed", "failed")):
        table.add_row(label, str(report.get(key, 0)))
    table.add_row("accepted by the relays (ledger, this run)", str(s.accepted_by_relay))
    for pool, n in sorted(s.relays_received.items()):
        table.add_row(f"  received by the loopback relay of {pool}", str(n))
    table.add_row("  received in all", str(sum(s.relays_received.values())))
    console.print(table)
    hosts = sorted({task.hostname for task in result.tasks if task.hostname})
    console.print(f"tasks ran on: {', '.join(hosts)}")
    if s.failed_checks:
        console.print(f"[red]report checks failed: {', '.join(s.failed_checks)}[/]")
    if s.attention_checks:
        from pipeline.report import TO_ACT_ON

        console.print(f"[yellow]{TO_ACT_ON}: {', '.join(s.attention_checks)}[/]")
    console.print("reconciled: ledger and relays agree" if s.reconciled else
                  "[bold red]NOT reconciled: the ledger and the relays disagree[/]")
