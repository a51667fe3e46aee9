"""Child process of the end-to-end test: one demo run with a canary member, result pickled.

Run apart from pytest so that everything the run prints, Airflow's task logs included, reaches
the parent test unfiltered.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.demo import airflow_runner as airflow_local  # noqa: E402
from tests.support.canary import plant_canary  # noqa: E402


def main(folder: Path, members: int) -> None:
    airflow_local.configure(folder / "airflow")
    from pipeline.demo.run import run_demo

    result = run_demo(workspace=folder / "workspace", members=members, period="2026-11", seed=7,
                      shards=2, after_generate=plant_canary, configure_airflow=False)
    with (folder / "result.pickle").open("wb") as handle:
        pickle.dump(result, handle)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
