"""The Celery configuration of the pipeline's Airflow workers: Airflow's own, plus a warm start.

Airflow runs each task in a process forked from a Celery worker. A worker that has imported the
pipeline once, before its pool starts, hands every task process the modules already imported,
so a task no longer spends about 0.7 s of CPU importing pandas, pyarrow, reportlab, pikepdf and
the stages again: on a busy worker that CPU came out of the render shards running beside it.

Set on every worker (and, harmlessly, on the scheduler, whose Celery executor reads the same
option; the warm start runs only where a Celery worker starts)::

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=pipeline.stages.worker_start.CELERY_CONFIG
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_init

from pipeline.stages.warm_modules import WARM_MODULES, import_ahead

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """`CELERY_CONFIG` is Airflow's default Celery configuration, unchanged (read when Airflow
    asks for it, so importing this module needs no Airflow)."""
    if name == "CELERY_CONFIG":
        from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

        return DEFAULT_CELERY_CONFIG
    raise AttributeError(name)


@worker_init.connect
def warm_start(**_: Any) -> None:
    """Import the pipeline in the worker's main process, before it forks its pool, and freeze it
    out of the garbage collector (`warm_modules`)."""
    frozen = import_ahead()
    log.info("the pipeline is imported once for every task this worker runs (%d modules, "
             "%d objects frozen)", len(WARM_MODULES), frozen)
