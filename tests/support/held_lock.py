"""A lock some thread of a process holds while that process starts a worker process, standing in
for a library's internal lock (SQLite's allocator mutex, a logging handler's lock): a worker
forked at that moment inherits it held, by nobody, for ever."""

from __future__ import annotations

import threading

LOCK = threading.Lock()


def exit_if_free() -> None:
    """A worker's first use of the library: exit 0 if the lock can be taken, 3 if it is held."""
    raise SystemExit(0 if LOCK.acquire(timeout=5) else 3)
