"""Batches checked by worker threads but applied strictly in file order."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["OrderedWork"]


class OrderedWork:
    """Work done by `workers` threads at once; each result is applied by the thread that computed
    it, but only after the previous one was applied: quarantine and staging stay in file order,
    memory stays at a few batches, and the reading thread only reads."""

    def __init__(self, workers: int = 2) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.slots = threading.Semaphore(workers + 1)
        self.last: threading.Event | None = None
        self.futures: deque[Future] = deque()  # type: ignore[type-arg]
        self.failed = False

    def submit(self, compute: Callable, apply: Callable, *args: object) -> None:  # type: ignore[type-arg]
        self.slots.acquire()
        previous, done = self.last, threading.Event()
        self.last = done

        def task() -> None:
            try:
                result = compute(*args)
                if previous is not None:
                    previous.wait()
                if not self.failed:
                    apply(result)
            except BaseException:
                self.failed = True
                raise
            finally:
                done.set()
                self.slots.release()

        self.futures.append(self.pool.submit(task))
        while self.futures and self.futures[0].done():
            self.futures.popleft().result()

    def __enter__(self) -> OrderedWork:
        return self

    def __exit__(self, exc_type, *_rest) -> None:  # type: ignore[no-untyped-def]
        try:
            if exc_type is not None:
                self.failed = True
            while self.futures:
                self.futures.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

