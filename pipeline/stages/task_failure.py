"""How a stage's `NeedsOperator` ends an Airflow task: failed now, without retries.

A refused extract, a pool whose relays cannot be used, a corrected extract that would withdraw
too much: retrying cannot help, and an operator must act. The task fails on its first try, and
its log shows the stage's message as a line of its own and ends with it, without the library's
frames that led to it. Airflow is imported only when a task fails (this module is the second of
the library's two thin adapters to Airflow; `connections` is the other).
"""

from __future__ import annotations

import logging


def operator_failure(exc: Exception) -> Exception:
    """The exception the task raises (`raise operator_failure(exc) from None`), after logging the
    message as its own line; raised by the DAG's task, so no library frame is in the log."""
    from airflow.sdk.exceptions import AirflowFailException

    logging.getLogger("airflow.task").error("%s", exc)
    return AirflowFailException(str(exc))
