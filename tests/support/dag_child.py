"""Child process of a DAG test: one in-process Airflow run of a DAG (`dag.test()`), its outcome
printed as the last line of stdout (`OUTCOME {json}`).

Run apart from pytest so that everything the run prints, Airflow's task logs included, reaches
the parent test unfiltered (in pytest, which handler gets the task log depends on the tests run
before). Every task's delay between tries is zero, so a retry shows at once instead of minutes
later. Usage: dag_child.py AIRFLOW_HOME DAG_ID CONF_JSON; the EOB_* settings come from the
environment.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.demo import airflow_runner  # noqa: E402


def main(airflow_home: Path, dag_id: str, conf: dict[str, object]) -> None:
    airflow_runner.configure(airflow_home)
    airflow_runner.init_metadata_db()
    outcome = airflow_runner.run_dag(dag_id, conf, check=False, retry_delay=timedelta(0))
    print("OUTCOME " + json.dumps(dataclasses.asdict(outcome)), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
