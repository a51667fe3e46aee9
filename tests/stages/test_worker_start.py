"""The Celery workers' configuration: Airflow's own, and the pipeline imported once per worker
before its pool forks, so the task processes it forks start with it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from pipeline.stages.worker_start import WARM_MODULES

PROBE = textwrap.dedent("""
    import json, os, sys
    from airflow.providers.celery.executors.celery_executor_utils import get_celery_configuration
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
    from celery.signals import worker_init

    config = get_celery_configuration()
    modules = json.loads(sys.argv[1])
    before = [m for m in modules if m in sys.modules]
    worker_init.send(sender=None)
    pid = os.fork()
    if pid == 0:  # a task process, as Airflow forks it from the worker
        import gc
        # imported, and frozen out of the collector: no full collection of a task walks them
        os._exit(0 if all(m in sys.modules for m in modules) and gc.get_freeze_count() > 100_000
                 else 3)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"same_config": config is DEFAULT_CELERY_CONFIG, "before": before,
                      "child_has_them": os.waitstatus_to_exitcode(status) == 0}))
""")


def probe(option: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CELERY__")}
    if option is not None:
        env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = option
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(WARM_MODULES))],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_with_the_option_hands_its_tasks_the_pipeline_imported() -> None:
    got = probe("pipeline.stages.worker_start.CELERY_CONFIG")
    assert got["same_config"], "the workers must run Airflow's own Celery configuration"
    # reading the option (the scheduler does too) leaves the heavy rooms to the worker's start
    assert "pipeline.render" not in got["before"] and "pipeline.compose" not in got["before"]
    assert got["child_has_them"]


def test_without_the_option_nothing_is_imported_ahead() -> None:
    got = probe(None)
    assert got["same_config"] and not got["child_has_them"]
