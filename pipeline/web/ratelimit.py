"""Sign-in attempts per client address per minute: a sliding window on the injected clock.

The account lockout (pipeline.desk.accounts) stops guessing one user's password; this stops
one address trying many users. It is counted per web worker process: with N workers a client
gets at most N times the limit, still far below what password guessing needs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from pipeline.clock import Now

WINDOW = timedelta(minutes=1)
MAX_CLIENTS = 10_000
"""Addresses remembered at once; the least recently seen are forgotten first."""


class SignInLimiter:
    def __init__(self, per_minute: int, now: Now) -> None:
        self._limit = per_minute
        self._now = now
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str | None) -> bool:
        """Count an attempt from `client`; False when it already made its minute's worth."""
        key = client or "-"
        now = self._now()
        with self._lock:
            times = self._seen.pop(key, None) or deque()
            while times and now - times[0] >= WINDOW:
                times.popleft()
            allowed = len(times) < self._limit
            if allowed:
                times.append(now)
            self._seen[key] = times
            while len(self._seen) > MAX_CLIENTS:
                self._seen.popitem(last=False)
            return allowed
