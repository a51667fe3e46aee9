"""Send one IP pool's messages: STARTTLS required, paced per provider, results streamed.

One asyncio event loop drives the pool. Messages are split into provider lanes (gmail,
yahoo, outlook, icloud, default) because each provider rates each of our IPs on its own:
a lane has its own connections (at most the provider's limit, carrying only that provider's
mail, each reused for the provider's messages-per-connection), its own adaptive rate and a
hard per-second window. All lanes share the pool's connection cap and the pool's token
bucket. Every connection is bound to one of the pool's source IPs and goes to one of its
relays, round robin; a relay that fails TLS is dropped for the rest of the run, and there is
no plaintext fallback (see ``pipeline.delivery.session``).

Every message gets at most one ``SendResult``, handed to ``on_result`` the moment it is
known: the caller commits it before the next message goes out on that connection, so a
crash can duplicate at most the messages in flight (one per connection), never lose a 250.
``on_attempt`` is called right before a transaction starts, so the caller can record the
intent and recognise, after a crash, which statements were in doubt.

A run is wired here from parts with one job each: the feed and ``Intake`` (lanes), the
``Connector``, the ``Courier`` and its ``Crew`` of workers, ``Reactions`` to refusals, and
the ``Reporter`` every result leaves through.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.clock import Clock, SystemClock
from pipeline.delivery.connector import Connector
from pipeline.delivery.courier import Courier, Crew
from pipeline.delivery.lanes import Demux, Feed, Intake, Lane, LaneFeeds
from pipeline.delivery.pools import DEFAULT_PROVIDER_DOMAINS, PoolConfig, RelayCredentials
from pipeline.delivery.reactions import Reactions
from pipeline.delivery.results import Outgoing, Reporter, SendResult, SendStats
from pipeline.delivery.session import held_result
from pipeline.delivery.throttle import LaneLimiter, ThrottlePolicy, ThrottleState
from pipeline.delivery.warmup import Quota
from pipeline.settings import PoolSettings

log = logging.getLogger(__name__)

ALL_PROVIDERS = "*"


def provider_lookup(domains: Mapping[str, Iterable[str]] | None = None) -> Callable[[str], str]:
    """A fast domain → provider function (``default`` for anything unlisted)."""
    table = {d.lower(): p for p, ds in (domains or DEFAULT_PROVIDER_DOMAINS).items() for d in ds}
    return lambda domain: table.get(domain.strip().lower().rstrip("."), "default")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(slots=True)
class SendControls:
    """Everything beyond the pool's static limits that shapes one send run.

    ``held`` maps providers (or ``"*"``) to the reason they take nothing in this run (an
    operator pause, a suspension still in force). ``quota`` is the warm-up allowance.
    ``max_seconds`` bounds the run: when it passes, lanes stop pulling new messages.
    ``throttle_state`` carries rate cuts over from earlier runs, and ``start_throttled`` cuts
    every other lane once at the start (the pool is on a throttling hold); ``on_suspend(provider,
    seconds, reason)`` persists a new suspension; ``sign`` (DKIM) gets the serialized message
    and returns it signed; ``credentials`` log in after STARTTLS (never before).
    """

    provider_of: Callable[[str], str] = field(default_factory=provider_lookup)
    held: Mapping[str, str] = field(default_factory=dict)
    quota: Quota | None = None
    max_seconds: float | None = None
    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    throttle_state: Mapping[str, ThrottleState] = field(default_factory=dict)
    start_throttled: bool = False
    on_attempt: Callable[[Outgoing], None] | None = None
    on_suspend: Callable[[str, float, str], None] | None = None
    sign: Callable[[bytes], bytes] | None = None
    credentials: RelayCredentials | None = None


def as_pool_config(pool: PoolConfig | PoolSettings) -> PoolConfig:
    return pool if isinstance(pool, PoolConfig) else PoolConfig.from_settings(pool)


# -- lanes -------------------------------------------------------------------------------------


class _Lanes:
    """The run's provider lanes, each opened with its limits when its provider first has work."""

    def __init__(
        self, pool: PoolConfig, clock: Clock, controls: SendControls, start: Callable[[Lane], None]
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._controls = controls
        self._start = start
        self._lanes: dict[str, Lane] = {}

    def get(self, provider: str) -> Lane:
        return self._lanes.get(provider) or self._open(provider)

    def _open(self, provider: str) -> Lane:
        limit = self._pool.limit_for(provider)
        lane = Lane(
            provider=provider,
            limit=limit,
            limiter=LaneLimiter(limit.max_per_second or self._pool.max_per_second,
                                self._controls.policy, self._clock,
                                self._controls.throttle_state.get(provider),
                                hard_cap=limit.max_per_second is not None),
            per_connection=max(1, min(self._pool.messages_per_connection,
                                      limit.messages_per_connection)),
            max_workers=min(limit.max_connections, self._pool.max_connections),
        )
        if self._controls.start_throttled and provider not in self._controls.throttle_state:
            lane.limiter.throttled()
        held = self._controls.held
        reason = held.get(provider) or held.get(ALL_PROVIDERS)
        if reason:
            lane.closed = reason
        self._lanes[provider] = lane
        if not lane.closed:
            self._start(lane)
        return lane

    def throttle_states(self) -> dict[str, ThrottleState]:
        """Each lane's rate cut still in force, for the next run to start from."""
        states: dict[str, ThrottleState] = {}
        for provider, lane in self._lanes.items():
            state = lane.limiter.adaptive.state()
            if state is not None:
                states[provider] = state
        return states


# -- the run -----------------------------------------------------------------------------------


class _Batch:
    """One send run: the parts wired together, from the first lane to the last result."""

    def __init__(
        self,
        pool: PoolConfig,
        outgoing: Iterable[Outgoing] | Mapping[str, Iterable[Outgoing]],
        on_result: Callable[[SendResult], None],
        *,
        tls_context: ssl.SSLContext,
        ehlo_hostname: str,
        timeout: float,
        clock: Clock,
        connect_attempts: int,
        connect_backoff: float,
        controls: SendControls,
    ) -> None:
        self._controls = controls
        self._reporter = Reporter(pool.name, on_result)
        self.stats = self._reporter.stats
        self._feed: Feed
        self._demux: Demux | None = None
        if isinstance(outgoing, Mapping):
            self._feed = LaneFeeds(outgoing)
        else:
            self._demux = Demux(outgoing, self._provider_of, self._lane_wanted,
                                bound=2 * pool.max_connections)
            self._feed = self._demux
        connector = Connector(pool, self.stats, tls_context=tls_context,
                              ehlo_hostname=ehlo_hostname, timeout=timeout,
                              credentials=controls.credentials, attempts=connect_attempts,
                              backoff=connect_backoff)
        intake = Intake(pool.name, self._feed, clock, quota=controls.quota,
                        max_seconds=controls.max_seconds, reporter=self._reporter,
                        connector=connector)
        reactions = Reactions(pool.name, self._feed, self._reporter, policy=controls.policy,
                              on_suspend=controls.on_suspend)
        self._crew = Crew(pool.name)
        courier = Courier(pool, clock, crew=self._crew, intake=intake, connector=connector,
                          reactions=reactions, reporter=self._reporter, sign=controls.sign,
                          on_attempt=controls.on_attempt)
        self._lanes = _Lanes(pool, clock, controls, start=courier.start)

    def _provider_of(self, item: Outgoing) -> str:
        return self._controls.provider_of(domain_of(item.recipient))

    def _lane_wanted(self, provider: str) -> None:
        """A provider has work: make its lane (and workers) if new; hold work for a closed one."""
        lane = self._lanes.get(provider)
        if lane.closed:
            for item in self._feed.drain(provider):
                self._reporter.report_for(provider, held_result(item, lane.closed))

    async def run(self) -> SendStats:
        for provider in self._feed.providers():
            self._lane_wanted(provider)
        if self._demux is not None:
            while self._crew.idle and self._demux.prime():
                pass  # messages for held providers are reported as they come; find an open lane
        await self._crew.wait()
        self.stats.throttle_state.update(self._lanes.throttle_states())
        return self.stats


async def send_pool_async(
    pool: PoolConfig | PoolSettings,
    outgoing: Iterable[Outgoing] | Mapping[str, Iterable[Outgoing]],
    on_result: Callable[[SendResult], None],
    *,
    tls_context: ssl.SSLContext,
    ehlo_hostname: str,
    timeout: float,
    clock: Clock | None = None,
    connect_attempts: int = 3,
    connect_backoff: float = 0.5,
    controls: SendControls | None = None,
) -> SendStats:
    """The coroutine behind send_pool, for callers that already run an event loop."""
    if connect_attempts < 1:
        raise ValueError("connect_attempts must be at least 1")
    config = as_pool_config(pool)
    batch = _Batch(
        config,
        outgoing,
        on_result,
        tls_context=tls_context,
        ehlo_hostname=ehlo_hostname,
        timeout=timeout,
        clock=clock or SystemClock(),
        connect_attempts=connect_attempts,
        connect_backoff=connect_backoff,
        controls=controls or SendControls(),
    )
    stats = await batch.run()
    log.info(
        "pool %s: attempted=%d accepted=%d rejected=%d deferred=%d held=%d connections=%d",
        config.name, stats.attempted, stats.accepted, stats.rejected, stats.deferred,
        stats.held, stats.connections,
    )
    return stats


def send_pool(
    pool: PoolConfig | PoolSettings,
    outgoing: Iterable[Outgoing] | Mapping[str, Iterable[Outgoing]],
    on_result: Callable[[SendResult], None],
    *,
    tls_context: ssl.SSLContext,
    ehlo_hostname: str,
    timeout: float,
    clock: Clock | None = None,
    connect_attempts: int = 3,
    connect_backoff: float = 0.5,
    controls: SendControls | None = None,
) -> SendStats:
    """Send a whole batch through one pool on one event loop; see the module docstring.

    ``outgoing`` is consumed lazily on this thread (a generator may read from the caller's
    database session): either one iterable, split into provider lanes here with a small
    bounded buffer, or a mapping provider → iterable when the caller already knows each
    recipient's provider (then a paused provider's messages are never even built). Pacing
    runs on ``clock`` and waits with its ``sleep``, so a fake clock runs a batch without
    waiting in real time.
    """
    return asyncio.run(
        send_pool_async(
            pool,
            outgoing,
            on_result,
            tls_context=tls_context,
            ehlo_hostname=ehlo_hostname,
            timeout=timeout,
            clock=clock,
            connect_attempts=connect_attempts,
            connect_backoff=connect_backoff,
            controls=controls,
        )
    )
