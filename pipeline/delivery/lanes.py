"""Provider lanes and what feeds them: where a pool's connections get their next message.

Each provider rates each of our IPs on its own, so a pool's messages are split into lanes
(gmail, yahoo, outlook, icloud, default), each with its own limiter and connections. A feed
hands every lane its messages, lazily: either the caller already split them by provider
(``LaneFeeds``), or one iterable is split here with a small bounded buffer (``Demux``).
``Intake`` stands in front of the feed and stops the flow when the run must end (its time
budget, the warm-up quota).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from pipeline.clock import Clock
from pipeline.delivery.connector import Connector
from pipeline.delivery.pools import ProviderLimit
from pipeline.delivery.results import Outgoing, Reporter
from pipeline.delivery.session import held_result
from pipeline.delivery.throttle import LaneLimiter
from pipeline.delivery.warmup import Quota

log = logging.getLogger(__name__)

MAX_TRIES_PER_MESSAGE = 2  # a message cut off by a drop or throttled is tried once more


@dataclass(frozen=True, slots=True)
class Pending:
    """A message in a lane's hands, with its tries so far and its reserved slot, if any."""

    item: Outgoing
    tries: int = 0
    ready_at: float | None = None  # when the lane's reserved slot comes due (sender clock)


@dataclass(slots=True)
class Lane:
    provider: str
    limit: ProviderLimit
    limiter: LaneLimiter
    per_connection: int
    max_workers: int = 1
    workers: int = 0
    retry: deque[Pending] = field(default_factory=deque)
    closed: str | None = None  # why this lane takes nothing more in this run
    sender_refusals: int = 0  # replies so far that would suspend the lane (see Reactions)


LATER: Outgoing = Outgoing("", "", "", EmailMessage())
"""Sentinel: no message for this lane right now, but the feed is not at its end."""


class Feed:
    """Where lanes get their next message from."""

    async def next_for(self, provider: str, *, block: bool = True) -> Outgoing | None:
        """The provider's next message; None at the end. With ``block=False`` a feed that would
        have to wait returns ``LATER`` instead (a caller holding a connection must not wait
        for other lanes to make room)."""
        raise NotImplementedError  # pragma: no cover - interface

    def providers(self) -> list[str]:
        return []

    def close(self) -> None:
        """Stop handing out messages (waiters return None)."""

    def drain(self, provider: str) -> list[Outgoing]:
        """Take back what is parked for a provider (its lane has closed)."""
        return []


class LaneFeeds(Feed):
    """The caller already split the work by provider: one lazy iterator per lane."""

    def __init__(self, lanes: Mapping[str, Iterable[Outgoing]]) -> None:
        self._iters: dict[str, Iterator[Outgoing]] = {p: iter(items) for p, items in lanes.items()}
        self._closed = False

    async def next_for(self, provider: str, *, block: bool = True) -> Outgoing | None:
        if self._closed:
            return None
        return next(self._iters.get(provider, iter(())), None)

    def providers(self) -> list[str]:
        return list(self._iters)

    def close(self) -> None:
        self._closed = True


class Demux(Feed):
    """One shared lazy iterable split into provider lanes, with a bounded buffer.

    A lane that wants a message pulls from the shared iterator, parking messages for other
    providers in their buffers (at most ``bound`` in all); ``on_new`` tells the sender a
    provider has appeared or has a parked message, so it can start that lane's workers.
    """

    def __init__(
        self, items: Iterable[Outgoing], provider_of: Callable[[Outgoing], str],
        on_new: Callable[[str], None], bound: int,
    ) -> None:
        self._items = iter(items)
        self._provider_of = provider_of
        self._on_new = on_new
        self._bound = max(1, bound)
        self._buffers: dict[str, deque[Outgoing]] = {}
        self._buffered = 0
        self._exhausted = False
        self._closed = False
        self._changed = asyncio.Event()

    def prime(self) -> bool:
        """Pull one message so its lane exists before anyone asks for work; False at the end."""
        return self._pull_one() is not None

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _pull_one(self) -> tuple[str, Outgoing] | None:
        item = next(self._items, None)
        if item is None:
            self._exhausted = True
            self._signal()
            return None
        provider = self._provider_of(item)
        self._buffers.setdefault(provider, deque()).append(item)
        self._buffered += 1
        self._signal()
        self._on_new(provider)
        return provider, item

    async def next_for(self, provider: str, *, block: bool = True) -> Outgoing | None:
        while not self._closed:
            buffer = self._buffers.get(provider)
            if buffer:
                self._buffered -= 1
                self._signal()
                return buffer.popleft()
            if self._exhausted:
                return None
            if self._buffered < self._bound:
                self._pull_one()
                continue
            if not block:
                return LATER
            await self._changed.wait()
        return None

    def drain(self, provider: str) -> list[Outgoing]:
        buffer = self._buffers.pop(provider, deque())
        self._buffered -= len(buffer)
        self._signal()
        return list(buffer)

    def close(self) -> None:
        self._closed = True
        self._signal()


class Intake:
    """A lane's next message: its own retries first, then the feed, until the run must stop."""

    def __init__(
        self, pool_name: str, feed: Feed, clock: Clock, *, quota: Quota | None,
        max_seconds: float | None, reporter: Reporter, connector: Connector,
    ) -> None:
        self._pool_name = pool_name
        self._feed = feed
        self._clock = clock
        self._quota = quota
        self._reporter = reporter
        self._stats = reporter.stats
        self._connector = connector
        self._deadline = clock.monotonic() + max_seconds if max_seconds is not None else None

    def stop(self, why: str) -> None:
        if self._stats.stopped is None:
            self._stats.stopped = why
            log.info("pool %s: no new messages this run: %s", self._pool_name, why)
        self._feed.close()

    async def next(self, lane: Lane, *, block: bool = True) -> Pending | None:
        """The lane's next message, unless the run must stop taking new ones.

        ``block=False`` (a caller holding a connection slot): None also when the feed would
        have to wait for other lanes; the caller lets the slot go and asks again blocking.
        """
        if lane.retry:
            return lane.retry.popleft()
        if lane.closed or self._stats.stopped:
            return None
        if self._deadline is not None and self._clock.monotonic() >= self._deadline:
            self.stop("time budget for this run used up")
            return None
        item = await self._feed.next_for(lane.provider, block=block)
        if item is None or item is LATER:
            return None
        quota = self._quota
        if quota is not None and self._connector.down is None and not quota.try_take():
            self.stop("warm-up cap reached")
            self._reporter.report_for(lane.provider,
                                      held_result(item, "warm-up cap reached; stays queued"))
            return None
        return Pending(item)
