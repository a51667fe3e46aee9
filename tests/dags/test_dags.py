"""DAG integrity: every DAG imports cleanly, cheaply, without I/O, and names only known pools."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import REPO

DAGS = REPO / "dags"
POOLS = json.loads((REPO / "infra" / "airflow" / "pools.json").read_text())


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), known_pools=set(POOLS) | {"default_pool"})


def test_every_dag_imports_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"eob_monthly", "eob_reconcile", "eob_paper", "eob_notices", "eob_reports"}


def test_dags_reference_only_pools_that_infra_defines(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert not dagbag.dag_warnings, [w.message for w in dagbag.dag_warnings]
    used = {task.pool for dag in dagbag.dags.values() for task in dag.tasks}
    assert used <= set(POOLS) | {"default_pool"}
    assert {"eob_render", "eob_send", "eob_paper", "eob_notices"} <= used


def test_paper_dag_reads_the_vendor_files_then_batches_then_checks(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["eob_paper"]
    order = {t.task_id: {d.task_id for d in t.downstream_list} for t in dag.tasks}
    assert order == {"read_vendor_files": {"make_batches"}, "make_batches": {"check_paper"},
                     "check_paper": set()}
    assert dag.task_dict["make_batches"].pool == "eob_paper"
    assert set(dag.params) == {"day", "dry_run"} and dag.params["dry_run"] is False


def test_notices_run_daily_and_as_soon_as_a_monthly_compose_flags_claims(dagbag) -> None:  # type: ignore[no-untyped-def]
    """One task in its own pool (so the monthly run's senders, holding eob_send, never hold it
    back), scheduled every morning or on the asset the monthly compose task emits."""
    from airflow.sdk import Asset, AssetOrTimeSchedule

    dag = dagbag.dags["eob_notices"]
    assert [t.task_id for t in dag.tasks] == ["send_notices"]
    assert dag.task_dict["send_notices"].pool == "eob_notices" and POOLS["eob_notices"]["slots"] >= 1
    assert set(dag.params) == {"day", "dry_run"} and dag.params["dry_run"] is False
    assert dag.max_active_runs == 1
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    emitted = {asset.uri for asset in dagbag.dags["eob_monthly"].get_task("compose").outlets}
    assert emitted == {"eob://ledger/prompt-notices"}
    assert dag.timetable.asset_condition == Asset("eob://ledger/prompt-notices")
    assert dag.timetable.timetable.expression == "0 7 * * *"


def test_reports_dag_writes_the_month_to_date_daily(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["eob_reports"]
    assert [t.task_id for t in dag.tasks] == ["month_to_date"]
    assert dag.timetable.expression == "30 6 * * *" and dag.max_active_runs == 1
    assert set(dag.params) == {"day"}


def test_every_task_retries_and_dags_are_tagged(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert not dag.catchup, dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag.dag_id}.{task.task_id} has no retries"


def test_monthly_dag_is_wired_stage_by_stage(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["eob_monthly"]
    edges = [("choose_period", "wait_for_extract"), ("wait_for_extract", "ingest"),
             ("ingest", "compose"), ("compose", "render"), ("wait_for_extract", "ip_pools"),
             ("ip_pools", "send"), ("compose", "send"), ("render", "route"), ("route", "report"),
             ("send", "report")]
    for upstream, downstream in edges:
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_monthly_senders_start_with_the_renders_not_after_them(dagbag) -> None:  # type: ignore[no-untyped-def]
    """Rendering and sending overlap: no send task waits for a render shard or for route."""
    dag = dagbag.dags["eob_monthly"]
    send = dag.get_task("send")
    assert not send.get_flat_relative_ids(upstream=True) & {"render", "route"}
    assert send.pool == "eob_send" and dag.get_task("render").pool == "eob_render"


def test_monthly_dag_waits_for_the_extract_without_holding_a_worker(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import BaseSensorOperator

    dag = dagbag.dags["eob_monthly"]
    sensor = dag.get_task("wait_for_extract")
    assert isinstance(sensor, BaseSensorOperator)
    assert sensor.mode == "reschedule"
    assert 10 * 60 <= sensor.poke_interval <= 2 * 3600
    assert 24 * 3600 <= sensor.timeout <= 7 * 24 * 3600
    assert dag.get_task("ingest").upstream_task_ids == {"wait_for_extract"}
    assert sensor.upstream_task_ids == {"choose_period"}


def test_extract_sensor_pokes_the_period_folder_and_hands_the_period_on(  # type: ignore[no-untyped-def]
        dagbag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.demo.generate import generate_extract

    monkeypatch.setenv("EOB_WORKSPACE", str(tmp_path))
    poke = dagbag.dags["eob_monthly"].get_task("wait_for_extract").python_callable
    assert not poke("2026-11").is_done
    generate_extract(tmp_path / "extracts" / "2026-11", members=5, period="2026-11", seed=1)
    assert not poke("2026-11").is_done  # just written: the files may still be growing
    monkeypatch.setenv("EOB_EXTRACT_QUIET_MINUTES", "0")
    arrived = poke("2026-11")
    assert arrived.is_done and arrived.xcom_value == "2026-11"


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_a_dag_file_does_no_io_and_imports_no_heavy_library(dag_file: str) -> None:
    """Parse in a fresh interpreter with an audit hook that records file opens and sockets."""
    script = textwrap.dedent(f"""
        import sys, runpy
        import pendulum
        from airflow.sdk import Asset, Param, dag, task
        # warm Airflow up with an empty DAG: its own lazy set-up is not the DAG file's I/O
        @dag(dag_id="warm_up", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
             params=dict(p=Param(None, type=["null", "string"])))
        def warm_up():
            @task(outlets=[Asset("eob://warm-up")])
            def t(x): ...  # noqa: E704
            t.expand(x=[1])
        warm_up()
        events = []
        def hook(event, args):
            if event == "open" and isinstance(args[0], str) and not args[0].endswith(
                    (".py", ".pyc", ".so", ".pth", ".typed")) and "site-packages" not in args[0] \\
                    and "/lib/python" not in args[0]:
                events.append(("open", args[0]))
            elif event in ("socket.connect", "socket.bind", "sqlite3.connect"):
                events.append((event, str(args[1:2])))
        before = set(sys.modules)
        sys.addaudithook(hook)
        runpy.run_path({str(DAGS / dag_file)!r})
        heavy = [m for m in ("pandas", "pyarrow", "reportlab", "pikepdf", "aiosmtplib", "boto3")
                 if m in sys.modules and m not in before]
        print(repr((events, heavy)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    events, heavy = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own output
    assert events == [], f"{dag_file} does I/O at parse time: {events}"
    assert heavy == [], f"{dag_file} imports heavy libraries at parse time: {heavy}"


def test_library_never_imports_airflow() -> None:
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        import pipeline
        for info in pkgutil.iter_modules(pipeline.__path__):
            if info.name != "airflow_local":
                importlib.import_module(f"pipeline.{info.name}")
        print("airflow" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_files_call_the_stages_package_only(dag_file: str) -> None:
    """DAG files wire `pipeline.stages` into tasks; the rooms below it are not theirs to call."""
    import ast

    tree = ast.parse((DAGS / dag_file).read_text())
    used = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    ours = {name for name in used if name.split(".")[0] == "pipeline"}
    assert ours == {"pipeline.stages"}, f"{dag_file} imports {sorted(ours - {'pipeline.stages'})}"


def _monthly_run_in_a_child(tmp_path: Path, **settings: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    """A real Airflow run of eob_monthly (dag.test) in a child process, whose whole output is the
    task log: its outcome and its output lines."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("EOB_")}
    env.update({"EOB_WORKSPACE": str(tmp_path / "ws"), "EOB_AIRFLOW_LOG_LEVEL": "INFO", **settings})
    child = subprocess.run(
        [sys.executable, str(REPO / "tests" / "support" / "dag_child.py"), str(tmp_path / "airflow"),
         "eob_monthly", json.dumps({"period": "2026-11"})],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    log = (child.stdout + child.stderr).splitlines()
    assert child.returncode == 0, "\n".join(log[-40:])
    return json.loads(next(line for line in reversed(log) if line.startswith("OUTCOME "))[8:]), log


def test_a_refused_extract_fails_ingest_on_its_first_try_with_the_clean_message(tmp_path: Path) -> None:
    """A real Airflow run of eob_monthly (dag.test, in a child process: its whole output is the
    task log) on an extract with a claims file missing a column: ingest fails once, no retry (the
    retry delay is zeroed so a retry would show at once), nothing after it runs, and the task log
    ends with the operator's message, not with the library's frames."""

    from pipeline.demo.generate import generate_extract
    from pipeline.stages import ExtractRefused

    extract = generate_extract(tmp_path / "ws" / "extracts" / "2026-11", members=20, period="2026-11", seed=3)
    damaged = extract.folder / "claims_part2.csv"
    damaged.write_text(damaged.read_text().replace("billed,", "", 1))
    outcome, log = _monthly_run_in_a_child(tmp_path, EOB_ENVIRONMENT="demo",
                                           EOB_EXTRACT_QUIET_MINUTES="0", EOB_SHARDS="2")

    assert outcome["state"] == "failed"
    tasks = outcome["tasks"]
    assert tasks["ingest"] == {"state": "failed", "tries": 1}
    for later in ("compose", "render", "route", "send", "report"):
        assert tasks[later] == {"state": "upstream_failed", "tries": 0}, later
    message = str(ExtractRefused("2026-11", "claims_part2.csv: missing column(s) billed"))
    start = next(i for i, line in enumerate(log) if "starting task_id=ingest " in line)
    end = next(i for i, line in enumerate(log) if "end task task_id=ingest " in line)
    task_log = log[start:end]
    assert any("[error" in line and line.split("] ", 1)[1].startswith(message) for line in task_log), \
        "the message is not a log line of its own"
    own = [line for line in task_log if not any(mark in line for mark in (
        "::group::", "::endgroup::", "Task instance state updated"))]  # Airflow's bookkeeping
    assert own[-1] == f"airflow.sdk.exceptions.AirflowFailException: {message}"
    assert sum("Task failed with exception" in line for line in task_log) == 1
    assert not [line for line in task_log if "/pipeline/" in line or "ExtractFileError" in line], \
        "library frames in the task log"


def test_a_configuration_that_cannot_run_fails_the_first_task_without_retries(tmp_path: Path) -> None:
    """Production mode on the shipped test secrets: the DAG's first task that opens the context
    fails on its first try, naming the settings to change, and nothing after it runs."""

    outcome, log = _monthly_run_in_a_child(tmp_path, EOB_ENVIRONMENT="production")
    assert outcome["tasks"]["wait_for_extract"] == {"state": "failed", "tries": 1}
    assert outcome["tasks"]["ingest"] == {"state": "upstream_failed", "tries": 0}
    failure = next(line for line in log if "AirflowFailException: refusing to start" in line)
    assert "EOB_VERP_SECRET" in failure and "change-me" not in failure
    assert not (tmp_path / "ws" / "ledger.sqlite").exists()
