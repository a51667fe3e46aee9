"""Imported by the embedded run's forkserver, once, as the last module of its preload list
(`pipeline.demo.airflow_runner.use_forkserver`): the pipeline imported and frozen out of the
garbage collector (`pipeline.stages.warm_modules`) in the process every LocalExecutor worker,
and every task a worker starts, is forked from. Importing it is what it is for."""

from pipeline.stages.warm_modules import import_ahead

FROZEN_OBJECTS = import_ahead()
