"""The host name a worker reports to Airflow (`[core] hostname_callable`).

Both Celery workers of the local cluster run on one machine, so Airflow's default (the machine's
FQDN) would give every task instance the same `hostname`, and no one could tell from Airflow's
own records which worker ran what. Each worker process is started with `EOB_WORKER_NAME` set,
and with `AIRFLOW__CORE__HOSTNAME_CALLABLE=pipeline.cluster.hostname.worker_hostname`.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """`<machine>-<worker name>`, e.g. `build-7-worker1`; the machine's name alone elsewhere."""
    name = os.environ.get("EOB_WORKER_NAME", "").strip()
    host = socket.gethostname()
    return f"{host}-{name}" if name else host
