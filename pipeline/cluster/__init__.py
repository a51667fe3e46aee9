"""A real Airflow 3 cluster on one machine for the pipeline: api-server, scheduler,
dag-processor, triggerer and Celery workers (Redis broker, PostgreSQL metadata and ledger),
with one shared environment and secrets, managed processes, a preflight, and monthly runs
through the REST API.

It never imports Airflow: Airflow is driven through its CLI in subprocesses and its REST API
over HTTP, so this room works the same against any Airflow 3 the workers run.
"""

from pipeline.cluster.spec import DEFAULT_DIR, ClusterError, ClusterPaths, ClusterSpec

__all__ = ["DEFAULT_DIR", "ClusterError", "ClusterPaths", "ClusterSpec"]
