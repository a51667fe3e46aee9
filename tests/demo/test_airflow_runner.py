"""The demo's LocalExecutor: once a run is over, ending it cannot hang on a worker."""

from __future__ import annotations

import logging
import os
import time

import pytest

from pipeline.demo import airflow_runner


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_workers_that_take_their_stop_message_exit_without_being_terminated(caplog):
    executor = airflow_runner.DrainingLocalExecutor(parallelism=2)
    executor.start()
    pids = list(executor.workers)
    assert len(pids) == 2
    with caplog.at_level(logging.WARNING, logger=airflow_runner.__name__):
        executor.end()
    assert all(_gone(pid) for pid in pids)
    assert "terminated" not in caplog.text


def test_a_worker_that_never_gets_its_stop_message_is_ended_not_waited_for(
        monkeypatch: pytest.MonkeyPatch, caplog):
    # the pinned Airflow's own end() joins such a worker forever (apache/airflow#67870): a
    # finished demo run then never returns
    monkeypatch.setattr(airflow_runner, "WORKER_EXIT_SECONDS", 1.0)
    executor = airflow_runner.DrainingLocalExecutor(parallelism=2)
    executor.start()
    pids = list(executor.workers)
    monkeypatch.setattr(executor.activity_queue, "put", lambda item: None)  # stop messages lost
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=airflow_runner.__name__):
        executor.end()
    assert time.monotonic() - started < 10
    assert all(_gone(pid) for pid in pids)
    assert caplog.text.count("did not exit after the run ended; terminated") == 2
