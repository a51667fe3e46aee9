"""Managed processes: each started in its own process group, with a log file and a pid file.

A pid file holds the pid and the process's start time (from /proc), so a pid the kernel has
since given to another program is never mistaken for ours, and never signalled. Stopping sends
SIGTERM to the whole group (a Celery worker's children, the api-server's uvicorn workers), waits,
then SIGKILLs what is left. Airflow's task supervisor moves each task process into a group of its
own: those are found by the environment marker they inherit (`lifecycle.processes_of`).
Linux only: /proc is how a process is inspected.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class PidRecord:
    """What a pid file says: the pid and its start time in clock ticks after boot."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rpartition(")")[2].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat; two fields precede this list


def is_alive(pid: int) -> bool:
    """Running, not a zombie; a zombie child of this process is reaped on the way."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def write_pid_file(path: Path, pid: int) -> PidRecord:
    record = PidRecord(pid, start_ticks(pid) or 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{record.pid} {record.start_ticks}\n")
    return record


def read_pid_file(path: Path) -> PidRecord | None:
    """The record, or None when there is no pid file or it is unreadable."""
    try:
        pid, ticks = path.read_text().split()
        return PidRecord(int(pid), int(ticks))
    except (FileNotFoundError, ValueError):
        return None


def running(record: PidRecord | None) -> bool:
    """The recorded process is alive and is the same process (same start time)."""
    return (record is not None and is_alive(record.pid)
            and start_ticks(record.pid) == record.start_ticks)


def uptime_seconds(pid: int) -> float | None:
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    return max(boot_uptime - ticks / _CLOCK_TICKS, 0.0)


def start_process(command: Sequence[str], *, env: Mapping[str, str], log_file: Path,
                  pid_file: Path, cwd: Path) -> PidRecord:
    """Start `command` detached in a new session (its own process group), output appended to
    `log_file`, and record it in `pid_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n=== started {time.strftime('%Y-%m-%d %H:%M:%S')}: {command[0]} "
                  f"{' '.join(command[1:3])}\n".encode())
        log.flush()
        child = subprocess.Popen(list(command), env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
    return write_pid_file(pid_file, child.pid)


def read_environ(pid: int) -> dict[str, str] | None:
    """A process's environment as it was started (/proc/<pid>/environ), or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, _, value in pairs}


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (a managed process and the children it kept in
    its group); returns at once."""
    _signal_group(pid, signal.SIGKILL)


def stop_groups(records: Iterable[PidRecord], *, grace_seconds: float = 30.0) -> list[int]:
    """SIGTERM each recorded process's group, wait up to `grace_seconds` for the leaders, then
    SIGKILL the groups still there. Returns the pids that were killed."""
    alive = [record for record in records if running(record)]
    for record in alive:
        _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(is_alive(r.pid) for r in alive):
        time.sleep(0.2)
    killed = [record.pid for record in alive if is_alive(record.pid)]
    for record in alive:  # the whole group: children that outlived their leader too
        _signal_group(record.pid, signal.SIGKILL)
    for pid in killed:
        _wait_gone(pid, 5.0)
    return killed


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.1)


def processes_with(variable: str, value_prefix: str) -> dict[int, str]:
    """Every live process whose environment has `variable` starting with `value_prefix`
    (pid → that value), other than this process."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        environ = read_environ(int(entry.name))
        value = (environ or {}).get(variable)
        if value is not None and value.startswith(value_prefix) and is_alive(int(entry.name)):
            found[int(entry.name)] = value
    return found


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        _wait_gone(pid, 5.0)
