"""The modules a task process of the pipeline imports first thing, imported ahead once by the
process its tasks are forked from (a Celery worker, `worker_start`; the embedded run's
forkserver, `pipeline.demo.airflow_runner`), so that no task spends CPU importing them again."""

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
