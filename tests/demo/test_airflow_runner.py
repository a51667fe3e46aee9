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


def test_a_worker_started_while_another_thread_holds_a_lock_does_not_inherit_it():
    # A render shard of a 20,000-member demo hung at its first ledger query: its worker had
    # been forked while another thread of the demo's process (Airflow's execution API, the
    # progress bars) was inside SQLite. Workers come from a forkserver instead (configure()).
    import multiprocessing
    import threading

    from tests.support import held_lock

    inside = threading.Event()
    leave = threading.Event()

    def busy_in_the_library() -> None:
        with held_lock.LOCK:
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=busy_in_the_library)
    thread.start()
    inside.wait(5)
    try:
        assert multiprocessing.get_start_method() == "forkserver"
        worker = multiprocessing.Process(target=held_lock.exit_if_free)
        worker.start()
        worker.join(30)
        assert worker.exitcode == 0, "the worker inherited a lock held by another thread"
    finally:
        leave.set()
        thread.join()


def test_a_worker_starts_with_the_pipeline_imported_and_out_of_the_garbage_collectors_way():
    # every task a worker starts is forked from it: nothing to import, and no full collection
    # in a send task walks Airflow's and the pipeline's million objects again
    import multiprocessing

    from tests.support import worker_probe

    worker = multiprocessing.Process(target=worker_probe.exit_if_warm)
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0


def test_a_parallel_run_in_another_environment_is_refused_not_run_with_the_first_ones(
        monkeypatch: pytest.MonkeyPatch):
    # the forkserver's workers inherit its environment (the run's settings), not this process's
    airflow_runner._start_forkserver()
    monkeypatch.setenv("EOB_WORKSPACE", "/elsewhere")
    with pytest.raises(airflow_runner.DagRunFailed, match="changed: EOB_WORKSPACE"):
        airflow_runner._start_forkserver()
