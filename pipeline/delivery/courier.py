"""The connection workers: each carries one lane's messages on one connection at a time.

A lane starts with one worker and gains another (up to its limit) only while its messages are
late, so idle connections never starve other lanes of the pool's connection slots. A worker
keeps its connection while the lane's next slot is close, gives the slot back when it is far
off or another lane is waiting, and retires when the lane's other connections keep its pace.
Each message's transaction starts the moment its slot comes: its bytes are ready before the
wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

import aiosmtplib

from pipeline.clock import Clock
from pipeline.delivery.connector import Connector, RelayUnreachable
from pipeline.delivery.lanes import MAX_TRIES_PER_MESSAGE, Intake, Lane, Pending
from pipeline.delivery.limits import TokenBucket
from pipeline.delivery.pools import PoolConfig
from pipeline.delivery.reactions import Reactions
from pipeline.delivery.results import Outgoing, Reporter
from pipeline.delivery.session import (
    ConnectionLost,
    RelayRefusedLogin,
    RelayRefusesRelaying,
    TlsUnavailable,
    close_politely,
    deferred_result,
    deliver,
    enhanced_status,
    held_result,
    pool_fault_result,
    redact,
    wire_bytes,
)
from pipeline.delivery.throttle import feedback_for

log = logging.getLogger(__name__)

_IDLE_CLOSE_SECONDS = 2.0  # a lane that must wait longer gives its connection slot back
_BUSY_IDLE_SECONDS = 0.5  # ... or this long, when another lane is waiting for a slot
_SPARE_SECONDS = 0.05  # a lane's extra connection that would idle this long is closed

_Work = Callable[[Lane], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class _After:
    """How a connection's run ended: the message still in hand, a wait, or retirement."""

    pending: Pending | None = None
    pause: float = 0.0
    retire: bool = False


class Crew:
    """The run's worker tasks: started per lane, and all cancelled when one of them fails."""

    def __init__(self, pool_name: str) -> None:
        self._pool_name = pool_name
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False  # an error is tearing the run down: start nothing new

    @property
    def idle(self) -> bool:
        return not self._tasks

    def spawn(self, lane: Lane, work: _Work) -> None:
        """One more connection for a lane that is behind its schedule (up to its limit).

        Lanes start with one connection and grow only while messages are late: a lane
        paced at 5/s needs one connection, and idle extra ones would starve other lanes of
        the pool's connection slots.
        """
        if lane.workers >= lane.max_workers or lane.closed or self._closing:
            return
        lane.workers += 1
        task = asyncio.create_task(self._worker(lane, work),
                                   name=f"{self._pool_name}-{lane.provider}-{lane.workers}")
        self._tasks.add(task)

    async def _worker(self, lane: Lane, work: _Work) -> None:
        try:
            await work(lane)
        finally:
            lane.workers -= 1
            if lane.retry and lane.workers == 0 and not lane.closed:
                self.spawn(lane, work)  # a message handed back by a retiring connection

    async def wait(self) -> None:
        """Until every worker is done; the first failure cancels the rest and is raised."""
        try:
            while self._tasks:
                done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    self._tasks.discard(task)
                    error = task.exception()
                    if error is not None:
                        raise error
        except BaseException:
            self._closing = True
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise


class Courier:
    """Sends lanes' messages, one connection per worker, at the lane's and the pool's pace.

    The pool's connection slots and token bucket are shared by every lane's workers.
    """

    def __init__(
        self, pool: PoolConfig, clock: Clock, *, crew: Crew, intake: Intake, connector: Connector,
        reactions: Reactions, reporter: Reporter, sign: Callable[[bytes], bytes] | None,
        on_attempt: Callable[[Outgoing], None] | None,
    ) -> None:
        self._pool_name = pool.name
        self._clock = clock
        self._sleep = clock.sleep
        self._crew = crew
        self._intake = intake
        self._connector = connector
        self._reactions = reactions
        self._reporter = reporter
        self._sign = sign
        self._on_attempt = on_attempt
        # A tenth of a second's quota as burst keeps the stream smooth at the relay.
        self._bucket = TokenBucket(pool.max_per_second, max(1.0, pool.max_per_second / 10), clock)
        self._slots = asyncio.Semaphore(pool.max_connections)
        self._slot_waiters = 0

    def start(self, lane: Lane) -> None:
        """Another worker for the lane, if its limit allows."""
        self._crew.spawn(lane, self._work)

    async def _work(self, lane: Lane) -> None:
        pending: Pending | None = None
        while True:
            pending = pending or await self._intake.next(lane)
            if pending is None:
                return
            if self._connector.down is not None:
                self._reporter.report_for(lane.provider,
                                          pool_fault_result(pending.item, self._connector.down))
                pending = None
                continue
            if lane.closed:
                self._reporter.report_for(lane.provider, held_result(pending.item, lane.closed))
                pending = None
                continue
            pending, delay = self._pace(lane, pending)
            if delay > _SPARE_SECONDS and lane.workers > 1:
                lane.retry.appendleft(pending)  # the lane's other connections keep up
                return
            if delay > _IDLE_CLOSE_SECONDS:
                await self._sleep(delay)  # wait without holding a connection slot
            self._slot_waiters += 1
            try:
                await self._slots.acquire()
            finally:
                self._slot_waiters -= 1
            try:
                after = await self._connection(lane, pending)
            finally:
                self._slots.release()
            if after.retire:
                return
            pending = after.pending
            if after.pause > 0:
                await self._sleep(after.pause)

    async def _connection(self, lane: Lane, pending: Pending) -> _After:
        """One connection's life: open (or trip the breaker), send, quit."""
        try:
            smtp = await self._connector.open()
        except (TlsUnavailable, RelayUnreachable, RelayRefusedLogin) as exc:
            self._connector.trip(str(exc))
            return _After(pending)  # the breaker now defers this message and the rest
        try:
            after = await self._send_on(smtp, lane, pending)
        except BaseException:
            smtp.close()
            raise
        await close_politely(smtp)
        return after

    def _pace(self, lane: Lane, current: Pending) -> tuple[Pending, float]:
        """Reserve the lane's slot; returns the message and how long until it is due."""
        if current.ready_at is None:
            wait = lane.limiter.reserve()
            current = replace(current, ready_at=self._clock.monotonic() + wait)
        assert current.ready_at is not None
        return current, current.ready_at - self._clock.monotonic()

    async def _send_on(self, smtp: aiosmtplib.SMTP, lane: Lane, first: Pending) -> _After:
        """Send on one connection until its quota, the lane's end, a long wait, or a drop.

        Returns the message still in hand (a drop mid-transaction, or a slot too far ahead to
        keep the connection idle for) and how long to wait before reconnecting; or retires
        the connection when the lane's other connections can keep its pace.
        """
        current: Pending | None = first
        sent = 0
        while current is not None:
            current, delay = self._pace(lane, current)
            if delay <= 0:
                self.start(lane)  # behind schedule: another connection would help
            elif delay > _SPARE_SECONDS and lane.workers > 1:
                lane.retry.appendleft(current)
                return _After(retire=True)
            if delay > _IDLE_CLOSE_SECONDS or (delay > _BUSY_IDLE_SECONDS and self._slot_waiters):
                return _After(current, delay)  # give the slot to a lane that can use it
            item = current.item
            try:
                data = wire_bytes(item, self._sign)
            except Exception as exc:  # an unserializable message must not sink the batch
                log.error("pool %s: statement %s: cannot serialize (%s); deferred",
                          self._pool_name, item.statement_id, type(exc).__name__)
                self._reporter.report_for(
                    lane.provider, deferred_result(item, f"internal error: {type(exc).__name__}"))
                current = await self._intake.next(lane, block=False)
                continue
            if delay > 0:
                await self._sleep(delay)
            await self._bucket.acquire(self._sleep)
            await lane.limiter.admit(self._sleep)
            if lane.closed:  # suspended while this message waited for its slot
                self._reporter.report_for(lane.provider, held_result(item, lane.closed))
                return _After()
            if self._on_attempt is not None:
                self._on_attempt(item)
            try:
                result = await deliver(smtp, item, data)
            except RelayRefusesRelaying as exc:
                self._connector.trip(str(exc))
                return _After(current)  # the breaker now defers this message and the rest
            except ConnectionLost as lost:
                said = f"{lost.code} {lost.server_message}" if lost.code is not None else ""
                feedback = feedback_for(lost.code, enhanced_status(lost.server_message), said)
                if self._reactions.react(lane, feedback, redact(lost.reason, item.recipient)):
                    self._reporter.report_for(lane.provider,
                                              held_result(item, lane.closed or lost.reason))
                    return _After()
                return _After(self._retry_or_defer(lane, current, lost))
            except Exception as exc:  # one broken message must not sink the batch
                log.error("pool %s: statement %s: unexpected %s; deferred", self._pool_name,
                          item.statement_id, type(exc).__name__)
                self._reporter.report_for(
                    lane.provider, deferred_result(item, f"internal error: {type(exc).__name__}"))
                return _After()  # connection state unknown: the caller closes it
            sent += 1
            if self._reactions.refused_for_us(lane, current, result):
                return _After()
            if sent >= lane.per_connection or not smtp.is_connected:
                return _After()
            current = await self._intake.next(lane, block=False)
        return _After()

    def _retry_or_defer(self, lane: Lane, current: Pending, lost: ConnectionLost) -> Pending | None:
        if current.tries + 1 < MAX_TRIES_PER_MESSAGE:
            log.info("pool %s: statement %s: connection lost (%s); retrying on a new one",
                     self._pool_name, current.item.statement_id, lost.reason)
            return Pending(current.item, current.tries + 1)
        deferred = deferred_result(current.item, lost.reason, lost.code, lost.server_message)
        self._reporter.report_for(lane.provider, deferred)
        return None
