"""One sender per IP pool at a time: a lease in the ledger.

Two send tasks for one pool (the monthly run's and the reconcile DAG's, or an Airflow retry that
starts while the killed try's process is gone but its lease is not) would read the same queued
rows and email the same statement twice. A sender takes the pool's lease before it reads the
queue, renews it from a background thread while it sends, and releases it when done. A lease
that is not renewed expires after ``ttl`` seconds, so a worker that died (SIGKILL, lost host)
holds nothing for long; on the same host a holder whose process has exited is taken over at once.

The holder names host, process and a random part: never a member or an address.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.clock import iso
from pipeline.ledger import Ledger

log = logging.getLogger(__name__)


class PoolBusy(RuntimeError):
    """Another live sender holds the pool's lease (it is sending this pool's queue now)."""

    def __init__(self, pool: str, holder: str, expires_at: str) -> None:
        self.pool, self.holder, self.expires_at = pool, holder, expires_at
        super().__init__(f"pool {pool} is being sent by {holder} (lease until {expires_at})")


class LeaseLost(RuntimeError):
    """The lease expired under a sender (it could not renew in time): it must stop sending."""


def _this_host() -> str:
    """The host name and this boot of it (two machines cloned with one name differ by boot)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = "noboot"
    return f"{socket.gethostname()}/{boot}"


def holder_name() -> str:
    return f"{_this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_gone(holder: str) -> bool:
    """True when the holder ran on this host (this boot of it) and its process no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _this_host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class PoolLease:
    """The lease on one pool's queue; use as a context manager around a send."""

    def __init__(self, ledger: Ledger, pool: str, *, ttl: float,
                 now: Callable[[], datetime], holder: str | None = None) -> None:
        self.ledger, self.pool, self.ttl, self._now = ledger, pool, ttl, now
        self.holder = holder or holder_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()
        self._valid_until = 0.0  # monotonic: a renewal older than the ttl (less a margin) is void

    def _expiry(self) -> str:
        return iso(self._now() + timedelta(seconds=self.ttl))

    def try_take(self) -> bool:
        """Take the lease if free, expired, ours, or held by a process gone from this host."""
        started = time.monotonic()
        params: dict[str, Any] = {"pool": self.pool, "holder": self.holder,
                                  "now": iso(self._now()), "expires_at": self._expiry()}
        self._valid_until = started + self.ttl * 0.8
        if self.ledger.execute("send_lease_take", **params):
            return True
        current = self.ledger.fetch_one("send_lease_get", pool=self.pool)
        previous = current["holder"] if current is not None else None
        gone = previous is not None and _holder_gone(previous)
        if gone and self.ledger.execute("send_lease_steal", previous=previous, **params):
            log.warning("pool %s: took over the send lease of %s, whose process has exited",
                        self.pool, previous)
            return True
        return False

    def take(self, *, wait_seconds: float = 0.0, poll: float = 2.0) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for another holder to finish or
        expire; raises PoolBusy when it is still held."""
        deadline = time.monotonic() + wait_seconds
        while not self.try_take():
            current = self.ledger.fetch_one("send_lease_get", pool=self.pool) or {}
            if time.monotonic() >= deadline:
                raise PoolBusy(self.pool, current.get("holder", "?"), current.get("expires_at", "?"))
            time.sleep(min(poll, max(0.05, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.pool}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            started = time.monotonic()
            try:
                renewed = self.ledger.execute("send_lease_renew", pool=self.pool, holder=self.holder,
                                              expires_at=self._expiry())
            except Exception:  # a database blip: try again at the next beat, before expiry
                log.warning("pool %s: could not renew the send lease; trying again", self.pool)
                continue
            if renewed:
                self._valid_until = started + self.ttl * 0.8
                continue
            if not self._stop.is_set():  # not the release racing this beat: really lost
                log.error("pool %s: the send lease was lost; this sender stops", self.pool)
                self.lost.set()
                return

    def valid(self) -> bool:
        """Still ours for sure: not lost, and renewed recently enough that it cannot have lapsed
        (a process frozen past its ttl stops before building another message)."""
        return not self.lost.is_set() and time.monotonic() < self._valid_until

    def check(self) -> None:
        """Raise LeaseLost when another sender may now hold the pool."""
        if not self.valid():
            raise LeaseLost(f"pool {self.pool}: the send lease expired while sending")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.ledger.execute("send_lease_release", pool=self.pool, holder=self.holder)

    def __enter__(self) -> PoolLease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
