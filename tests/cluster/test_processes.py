"""Managed processes: pid files that cannot be fooled by a reused pid, process groups stopped
whole, TERM then KILL."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from pipeline.cluster import processes


def _start(tmp_path: Path, script: str, name: str = "p") -> processes.PidRecord:
    return processes.start_process(["sh", "-c", script], env={"PATH": os.environ["PATH"], "MARK": name},
                                   log_file=tmp_path / f"{name}.log", pid_file=tmp_path / f"{name}.pid",
                                   cwd=tmp_path)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_started_process_is_recorded_running_with_its_environment(tmp_path: Path) -> None:
    mark = f"p-{uuid.uuid4().hex}"
    record = _start(tmp_path, "sleep 60", mark)
    try:
        assert processes.read_pid_file(tmp_path / f"{mark}.pid") == record
        assert processes.running(record)
        assert os.getpgid(record.pid) == record.pid  # its own process group
        assert (processes.read_environ(record.pid) or {})["MARK"] == mark
        uptime = processes.uptime_seconds(record.pid)
        assert uptime is not None and 0 <= uptime < 30
        found = processes.processes_with("MARK", mark)  # the shell, and its child if it forked one
        assert record.pid in found and set(found.values()) == {mark}
    finally:
        processes.stop_groups([record], grace_seconds=5)
    assert not processes.running(record)


def test_a_pid_file_naming_another_process_is_not_taken_for_ours(tmp_path: Path) -> None:
    record = _start(tmp_path, "sleep 60")
    try:
        forged = processes.PidRecord(record.pid, record.start_ticks + 1)  # the pid, reused
        assert not processes.running(forged)
        assert processes.stop_groups([forged], grace_seconds=1) == []
        assert processes.running(record)  # never signalled
    finally:
        processes.stop_groups([record], grace_seconds=5)
    assert processes.read_pid_file(tmp_path / "missing.pid") is None


def test_stopping_stops_the_whole_group_and_kills_what_ignores_term(tmp_path: Path) -> None:
    polite = _start(tmp_path, "sleep 60 & sleep 60; wait", "polite")
    stubborn = _start(tmp_path, "trap '' TERM; sleep 60 & wait; sleep 60", "stubborn")
    time.sleep(0.3)
    children = _children(polite.pid) + _children(stubborn.pid)
    assert len(children) >= 2
    killed = processes.stop_groups([polite, stubborn], grace_seconds=1.0)
    assert killed == [stubborn.pid]
    assert not any(processes.is_alive(pid) for pid in [polite.pid, stubborn.pid, *children])
