"""The modules a task process of the pipeline imports first thing, imported ahead once by the
process its tasks are forked from (a Celery worker, `worker_start`; the embedded run's
forkserver, `pipeline.demo.forkserver_preload`), so that no task spends CPU importing them again.

They are then frozen out of the garbage collector (`gc.freeze`): Airflow, SQLAlchemy, pandas and
the pipeline are over a million objects that live as long as the process, and every full
collection in every task forked from it would otherwise walk them all again. Measured on the
embedded run of 20,000 members, ingest to the last send: 186–191 s with them imported ahead
but not frozen, 168–171 s frozen (the send tasks collect often; a render task freezes its own
caches after its first statement, `pipeline.render.freeze_caches`).
"""

from __future__ import annotations

import gc
import importlib

WARM_MODULES = (
    "pipeline.stages",
    "pipeline.stages.render",
    "pipeline.stages.send",
    "pipeline.stages.reconcile",
    "pipeline.compose",
    "pipeline.render",
    "pipeline.delivery",
)
"""What the monthly and reconcile tasks import first thing; importing is all that happens here
(no settings are read, no connection is opened, no thread is started: those belong to each
task)."""


def import_ahead() -> int:
    """Import `WARM_MODULES`, then freeze every object alive out of the collector's generations;
    returns how many objects were frozen."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
