"""Send one IP pool's messages: STARTTLS required, paced per provider, results streamed.

One asyncio event loop drives the pool. Messages are split into provider lanes (gmail,
yahoo, outlook, icloud, default) because each provider rates each of our IPs on its own:
a lane has its own connections (at most the provider's limit, carrying only that provider's
mail, each reused for the provider's messages-per-connection), its own adaptive rate and a
hard per-second window. All lanes share the pool's connection cap and the pool's token
bucket. Every connection is bound to one of the pool's source IPs and goes to one of its
relays, round robin; a relay that fails TLS is dropped for the rest of the run.

Every message gets at most one ``SendResult``, handed to ``on_result`` the moment it is
known: the caller commits it before the next message goes out on that connection, so a
crash can duplicate at most the messages in flight (one per connection), never lose a 250.
``on_attempt`` is called right before a transaction starts, so the caller can record the
intent and recognise, after a crash, which statements were in doubt.

TLS is not negotiable: a relay that does not offer STARTTLS, or whose certificate does not
verify, gets nothing, and the messages come back ``deferred`` with the reason. There is no
plaintext fallback anywhere in this module.

Outcomes: ``accepted`` (250), ``rejected`` (5xx for this recipient), ``deferred`` (4xx,
connection trouble, relay unusable) and ``held``: not attempted, or refused because of *us*
(the provider suspended this pool, an operator paused it, the warm-up quota ran out). A held
statement stays queued for a later run without using up one of its attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from pipeline.delivery.limits import Clock, SystemClock, TokenBucket
from pipeline.delivery.pools import (
    DEFAULT_PROVIDER_DOMAINS,
    PoolConfig,
    ProviderLimit,
    Relay,
    RelayCredentials,
)
from pipeline.delivery.throttle import Feedback, LaneLimiter, ThrottlePolicy, ThrottleState, feedback_for
from pipeline.delivery.warmup import Quota
from pipeline.settings import PoolSettings

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"
DEFERRED = "deferred"
HELD = "held"
ALL_PROVIDERS = "*"

_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_REPLY_LIMIT = 300
_MAX_TRIES_PER_MESSAGE = 2  # a message cut off by a drop or throttled is tried once more
_IDLE_CLOSE_SECONDS = 2.0  # a lane that must wait longer gives its connection slot back
_BUSY_IDLE_SECONDS = 0.5  # ... or this long, when another lane is waiting for a slot
_SPARE_SECONDS = 0.05  # a lane's extra connection that would idle this long is closed
_CLOSING = 421  # "service not available, closing transmission channel"
_CONNECTION_ERRORS = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class Outgoing:
    statement_id: str
    recipient: str
    envelope_from: str
    message: EmailMessage


@dataclass(frozen=True, slots=True)
class SendResult:
    statement_id: str
    outcome: str
    reply_code: int | None
    enhanced_status: str | None
    reply_text: str
    provider: str = ""


@dataclass(slots=True)
class SendStats:
    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    deferred: int = 0
    held: int = 0
    connections: int = 0
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    rate_cuts: dict[str, int] = field(default_factory=dict)
    suspended: dict[str, str] = field(default_factory=dict)
    throttle_state: dict[str, ThrottleState] = field(default_factory=dict)
    stopped: str | None = None

    def count(self, result: SendResult) -> None:
        per = self.by_provider.setdefault(result.provider, {})
        per[result.outcome] = per.get(result.outcome, 0) + 1
        if result.outcome == HELD:
            self.held += 1
            return
        self.attempted += 1
        if result.outcome == ACCEPTED:
            self.accepted += 1
        elif result.outcome == REJECTED:
            self.rejected += 1
        else:
            self.deferred += 1

    def summary(self) -> dict[str, object]:
        """Counts only (no addresses): what a task returns and logs."""
        return {
            "attempted": self.attempted, "accepted": self.accepted, "rejected": self.rejected,
            "deferred": self.deferred, "held": self.held, "connections": self.connections,
            "by_provider": self.by_provider, "rate_cuts": self.rate_cuts,
            "suspended": self.suspended, "stopped": self.stopped,
        }


def provider_lookup(domains: Mapping[str, Iterable[str]] | None = None) -> Callable[[str], str]:
    """A fast domain → provider function (``default`` for anything unlisted)."""
    table = {d.lower(): p for p, ds in (domains or DEFAULT_PROVIDER_DOMAINS).items() for d in ds}
    return lambda domain: table.get(domain.strip().lower().rstrip("."), "default")


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


class TlsUnavailable(ConnectionError):
    """The relay offers no STARTTLS or fails verification: never send, never fall back."""


class RelayRefusedLogin(ConnectionError):
    """The relay refused our credentials: retrying will not help, an operator must act."""


class _RelayUnreachable(ConnectionError):
    """Connecting failed ``connect_attempts`` times in a row."""


class _ConnectionLost(Exception):
    """The connection went away before a message's outcome was known; retry it elsewhere."""

    def __init__(self, reason: str, code: int | None = None, server_message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.server_message = server_message


@dataclass(frozen=True, slots=True)
class _Pending:
    item: Outgoing
    tries: int = 0
    ready_at: float | None = None  # when the lane's reserved slot comes due (sender clock)


def make_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying client context (hostname + chain), TLS 1.2 or newer; system CAs by default."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def as_pool_config(pool: PoolConfig | PoolSettings) -> PoolConfig:
    return pool if isinstance(pool, PoolConfig) else PoolConfig.from_settings(pool)


# -- results -----------------------------------------------------------------------------------


def _collapse(text: str) -> str:
    return " ".join(text.split())[:_REPLY_LIMIT]


def _redact(text: str, recipient: str) -> str:
    """Relays often echo the address in their reply; the ledger already knows it."""
    if not recipient:
        return text
    return re.sub(re.escape(recipient), "<recipient>", text, flags=re.IGNORECASE)


def _outcome_for(code: int) -> str:
    if 200 <= code < 300:
        return ACCEPTED
    if 500 <= code < 600:
        return REJECTED
    return DEFERRED


def _result(
    item: Outgoing, outcome: str, code: int | None, text: str, server_message: str = ""
) -> SendResult:
    """``server_message`` is the reply without its code, where an enhanced status leads."""
    clean = _collapse(_redact(text, item.recipient))
    match = _ENHANCED.match(server_message)
    return SendResult(
        statement_id=item.statement_id,
        outcome=outcome,
        reply_code=code,
        enhanced_status=match.group(1) if match else None,
        reply_text=clean,
    )


def _deferred(
    item: Outgoing, reason: str, code: int | None = None, server_message: str = ""
) -> SendResult:
    return _result(item, DEFERRED, code, reason, server_message)


def _held(item: Outgoing, reason: str) -> SendResult:
    return _result(item, HELD, None, reason)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _sendable(address: str) -> bool:
    """ASCII, one @, no whitespace or brackets: anything else never reaches RCPT TO."""
    local, at, domain = address.rpartition("@")
    return (
        bool(at and local and domain)
        and address.isascii()
        and not any(c.isspace() or c in '<>,;"' for c in address)
    )


# -- one connection ----------------------------------------------------------------------------


def _tls_failure(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"STARTTLS handshake failed: certificate verification failed: {exc.verify_message}"
    return f"STARTTLS handshake failed: {exc.reason or type(exc).__name__}"


async def _require_starttls(smtp: aiosmtplib.SMTP) -> None:
    """EHLO, insist on STARTTLS, upgrade, verify, EHLO again; raise TlsUnavailable otherwise."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError as exc:
        raise TlsUnavailable(f"relay refused EHLO ({exc.code}); STARTTLS unavailable") from None
    if not smtp.supports_extension("starttls"):
        raise TlsUnavailable("relay offers no STARTTLS")
    try:
        await smtp.starttls()
    except ssl.SSLError as exc:
        raise TlsUnavailable(_tls_failure(exc)) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise TlsUnavailable(f"relay refused STARTTLS: {exc.code} {exc.message}") from None
    if smtp.get_transport_info("ssl_object") is None:
        raise TlsUnavailable("STARTTLS did not produce an encrypted channel")
    await smtp.ehlo()


async def _connect(
    source_ip: str, relay: Relay, tls_context: ssl.SSLContext, ehlo_hostname: str,
    timeout: float, credentials: RelayCredentials | None,
) -> aiosmtplib.SMTP:
    """A connection from one source IP, upgraded to verified TLS (and logged in) first."""
    smtp = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        source_address=(source_ip, 0),
        local_hostname=ehlo_hostname,
        timeout=timeout,
        use_tls=False,
        start_tls=False,  # done explicitly below, so the offer is checked before anything else
        tls_context=tls_context,
    )
    await smtp.connect()
    try:
        await _require_starttls(smtp)
        if credentials is not None:
            try:
                await smtp.login(credentials.username, credentials.password)
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise RelayRefusedLogin(f"relay refused our login ({exc.code})") from None
    except BaseException:
        smtp.close()
        raise
    return smtp


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """Polite QUIT when possible; a failing QUIT changes nothing already decided."""
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
    smtp.close()


async def _rset(smtp: aiosmtplib.SMTP) -> None:
    """Clear the envelope after a refusal; if this fails the next message notices the drop."""
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.rset()


def _closing(smtp: aiosmtplib.SMTP, exc: aiosmtplib.SMTPResponseException) -> bool:
    return exc.code == _CLOSING or not smtp.is_connected


def _wire_bytes(item: Outgoing, sign: Callable[[bytes], bytes] | None = None) -> bytes:
    """The message as transmitted (CRLF, signed if DKIM is on); done before pacing waits so
    that a transaction starts the moment its slot comes."""
    data = item.message.as_bytes(policy=email.policy.SMTP)
    return sign(data) if sign is not None else data


async def _deliver(smtp: aiosmtplib.SMTP, item: Outgoing, data: bytes) -> SendResult:
    """One transaction: MAIL, RCPT, DATA. Raises _ConnectionLost if the outcome is unknown."""
    if not _sendable(item.recipient):
        return _result(item, REJECTED, None, "recipient address is not deliverable; not sent")
    options = [f"SIZE={len(data)}"] if smtp.supports_extension("size") else []
    stage = "MAIL FROM"
    try:
        await smtp.mail(item.envelope_from, options=options)
        stage = "RCPT TO"
        await smtp.rcpt(item.recipient)
        stage = "DATA"
        response = await smtp.data(data)
    except aiosmtplib.SMTPResponseException as exc:
        reply = f"{exc.code} {exc.message}"
        if _closing(smtp, exc):
            raise _ConnectionLost(reply, exc.code, exc.message) from None
        await _rset(smtp)
        if stage == "MAIL FROM":  # about our sender, not the recipient: never "rejected"
            return _deferred(item, f"MAIL FROM refused: {reply}", exc.code, exc.message)
        return _result(item, _outcome_for(exc.code), exc.code, reply, exc.message)
    except _CONNECTION_ERRORS as exc:
        raise _ConnectionLost(f"connection lost at {stage}: {type(exc).__name__}") from None
    reply = f"{response.code} {response.message}"
    return _result(item, ACCEPTED, response.code, reply, response.message)


# -- routes, lanes and feeds -------------------------------------------------------------------


class _Routes:
    """Round robin over source IPs and relays; a relay failing TLS is dropped for the run."""

    def __init__(self, pool: PoolConfig) -> None:
        self._ips = pool.source_ips
        self._relays = pool.relays
        self._bad: dict[Relay, str] = {}
        self._n = 0

    def next(self) -> tuple[str, Relay] | None:
        good = [r for r in self._relays if r not in self._bad]
        if not good:
            return None
        n, self._n = self._n, self._n + 1
        return self._ips[n % len(self._ips)], good[n % len(good)]

    def drop(self, relay: Relay, reason: str) -> None:
        self._bad[relay] = reason

    @property
    def last_failure(self) -> str:
        return next(reversed(self._bad.values()), "no relay configured")


@dataclass(slots=True)
class _Lane:
    provider: str
    limit: ProviderLimit
    limiter: LaneLimiter
    per_connection: int
    max_workers: int = 1
    workers: int = 0
    retry: deque[_Pending] = field(default_factory=deque)
    closed: str | None = None  # why this lane takes nothing more in this run


@dataclass(frozen=True, slots=True)
class _After:
    """How a connection's run ended: the message still in hand, a wait, or retirement."""

    pending: _Pending | None = None
    pause: float = 0.0
    retire: bool = False


LATER: Outgoing = Outgoing("", "", "", EmailMessage())
"""Sentinel: no message for this lane right now, but the feed is not at its end."""


class _Feed:
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
        return []


class _LaneFeeds(_Feed):
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


class _Demux(_Feed):
    """One shared lazy iterable split into provider lanes, with a bounded buffer.

    A lane that wants a message pulls from the shared iterator, parking messages for other
    providers in their buffers (at most ``bound`` in all); ``on_new`` tells the batch a
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


# -- the batch ---------------------------------------------------------------------------------


class _Batch:
    """Shared state of one send run: lanes, the pool bucket and slots, stats, breaker."""

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
        self.pool = pool
        self.stats = SendStats()
        self._on_result = on_result
        self._tls_context = tls_context
        self._ehlo_hostname = ehlo_hostname
        self._timeout = timeout
        self._clock = clock
        self._attempts = connect_attempts
        self._backoff = connect_backoff
        self._controls = controls
        self._routes = _Routes(pool)
        # A tenth of a second's quota as burst keeps the stream smooth at the relay.
        self._bucket = TokenBucket(pool.max_per_second, max(1.0, pool.max_per_second / 10), clock)
        self._slots = asyncio.Semaphore(pool.max_connections)
        sleep = getattr(clock, "sleep", None)
        self._sleep: Callable[[float], Awaitable[object]] = sleep or asyncio.sleep
        self._deadline = (
            clock.monotonic() + controls.max_seconds if controls.max_seconds is not None else None
        )
        self._down: str | None = None
        self._lanes: dict[str, _Lane] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._slot_waiters = 0
        self._closing = False  # an error is tearing the run down: start nothing new
        self._feed: _Feed
        if isinstance(outgoing, Mapping):
            self._feed = _LaneFeeds(outgoing)
            self._demux: _Demux | None = None
        else:
            self._demux = _Demux(outgoing, self._provider_of, self._lane_wanted,
                                 bound=2 * pool.max_connections)
            self._feed = self._demux

    def _provider_of(self, item: Outgoing) -> str:
        return self._controls.provider_of(domain_of(item.recipient))

    # -- lanes -----------------------------------------------------------------------------

    def _lane_wanted(self, provider: str) -> None:
        """A provider has work: make its lane (and workers) if new; hold work for a closed one."""
        lane = self._lanes.get(provider) or self._open_lane(provider)
        if lane.closed and self._demux is not None:
            for item in self._demux.drain(provider):
                self._report(replace(_held(item, lane.closed), provider=provider))

    def _open_lane(self, provider: str) -> _Lane:
        limit = self.pool.limit_for(provider)
        lane = _Lane(
            provider=provider,
            limit=limit,
            limiter=LaneLimiter(limit.max_per_second or self.pool.max_per_second,
                                self._controls.policy, self._clock,
                                self._controls.throttle_state.get(provider),
                                hard_cap=limit.max_per_second is not None),
            per_connection=max(1, min(self.pool.messages_per_connection,
                                      limit.messages_per_connection)),
            max_workers=min(limit.max_connections, self.pool.max_connections),
        )
        if self._controls.start_throttled and provider not in self._controls.throttle_state:
            lane.limiter.throttled()
        held = self._controls.held
        reason = held.get(provider) or held.get(ALL_PROVIDERS)
        if reason:
            lane.closed = reason
        self._lanes[provider] = lane
        if not lane.closed:
            self._spawn(lane)
        return lane

    def _spawn(self, lane: _Lane) -> None:
        """One more connection for a lane that is behind its schedule (up to its limit).

        Lanes start with one connection and grow only while messages are late: a lane
        paced at 5/s needs one connection, and idle extra ones would starve other lanes of
        the pool's connection slots.
        """
        if lane.workers >= lane.max_workers or lane.closed or self._closing:
            return
        lane.workers += 1
        task = asyncio.create_task(self._worker(lane),
                                   name=f"{self.pool.name}-{lane.provider}-{lane.workers}")
        self._workers.add(task)

    async def run(self) -> SendStats:
        for provider in self._feed.providers():
            self._lane_wanted(provider)
        if self._demux is not None:
            while not self._workers and self._demux.prime():
                pass  # messages for held providers are reported as they come; find an open lane
        try:
            while self._workers:
                done, _ = await asyncio.wait(self._workers, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    self._workers.discard(task)
                    error = task.exception()
                    if error is not None:
                        raise error
        except BaseException:
            self._closing = True
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            raise
        for provider, lane in self._lanes.items():
            state = lane.limiter.adaptive.state()
            if state is not None:
                self.stats.throttle_state[provider] = state
        return self.stats

    # -- pulling work ----------------------------------------------------------------------

    def _stop(self, why: str) -> None:
        if self.stats.stopped is None:
            self.stats.stopped = why
            log.info("pool %s: no new messages this run: %s", self.pool.name, why)
        self._feed.close()

    async def _next(self, lane: _Lane, *, block: bool = True) -> _Pending | None:
        """The lane's next message, unless the run must stop taking new ones.

        ``block=False`` (a caller holding a connection slot): None also when the feed would
        have to wait for other lanes; the caller lets the slot go and asks again blocking.
        """
        if lane.retry:
            return lane.retry.popleft()
        if lane.closed or self.stats.stopped:
            return None
        if self._deadline is not None and self._clock.monotonic() >= self._deadline:
            self._stop("time budget for this run used up")
            return None
        item = await self._feed.next_for(lane.provider, block=block)
        if item is None or item is LATER:
            return None
        quota = self._controls.quota
        if quota is not None and self._down is None and not quota.try_take():
            self._stop("warm-up cap reached")
            self._report_for(lane, _held(item, "warm-up cap reached; stays queued"))
            return None
        return _Pending(item)

    def _report_for(self, lane: _Lane, result: SendResult) -> None:
        self._report(replace(result, provider=lane.provider))

    def _report(self, result: SendResult) -> None:
        self._on_result(result)  # the caller commits here; if it raises, the batch stops
        self.stats.count(result)
        log.debug("pool=%s statement=%s outcome=%s code=%s provider=%s", self.pool.name,
                  result.statement_id, result.outcome, result.reply_code, result.provider)

    # -- workers ---------------------------------------------------------------------------

    async def _worker(self, lane: _Lane) -> None:
        try:
            await self._work(lane)
        finally:
            lane.workers -= 1
            if lane.retry and lane.workers == 0 and not lane.closed:
                self._spawn(lane)  # a message handed back by a retiring connection

    async def _work(self, lane: _Lane) -> None:
        pending: _Pending | None = None
        while True:
            pending = pending or await self._next(lane)
            if pending is None:
                return
            if self._down is not None:
                self._report_for(lane, _deferred(pending.item, self._down))
                pending = None
                continue
            if lane.closed:
                self._report_for(lane, _held(pending.item, lane.closed))
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

    async def _connection(self, lane: _Lane, pending: _Pending) -> _After:
        """One connection's life: open (or trip the breaker), send, quit."""
        try:
            smtp = await self._open()
        except (TlsUnavailable, _RelayUnreachable, RelayRefusedLogin) as exc:
            self._trip(str(exc))
            return _After(pending)  # the breaker now defers this message and the rest
        try:
            after = await self._send_on(smtp, lane, pending)
        except BaseException:
            smtp.close()
            raise
        await _quit(smtp)
        return after

    def _trip(self, reason: str) -> None:
        """Open the breaker: no new connections for this run, the rest is deferred."""
        if self._down is None:
            self._down = reason
            log.warning(
                "pool %s: sending stopped, remaining messages deferred: %s", self.pool.name, reason
            )

    async def _open(self) -> aiosmtplib.SMTP:
        """Connect with exponential backoff across relays; TLS and login problems don't heal."""
        failures = 0
        last = ""
        while True:
            route = self._routes.next()
            if route is None:
                raise TlsUnavailable(self._routes.last_failure)
            source_ip, relay = route
            try:
                smtp = await _connect(source_ip, relay, self._tls_context, self._ehlo_hostname,
                                      self._timeout, self._controls.credentials)
            except TlsUnavailable as exc:
                log.warning("pool %s: relay %s:%d unusable: %s", self.pool.name, relay.host,
                            relay.port, exc)
                self._routes.drop(relay, str(exc))
                continue
            except RelayRefusedLogin:
                raise
            except (aiosmtplib.SMTPException, OSError) as exc:
                failures += 1
                last = _collapse(f"{type(exc).__name__}: {exc}")
                log.warning("pool %s: connect attempt %d/%d to %s:%d failed: %s", self.pool.name,
                            failures, self._attempts, relay.host, relay.port, last)
                if failures >= self._attempts:
                    raise _RelayUnreachable(
                        f"relay unreachable after {self._attempts} attempts: {last}") from None
                await asyncio.sleep(self._backoff * 2 ** (failures - 1))
                continue
            self.stats.connections += 1
            return smtp

    def _pace(self, lane: _Lane, current: _Pending) -> tuple[_Pending, float]:
        """Reserve the lane's slot; returns the message and how long until it is due."""
        if current.ready_at is None:
            wait = lane.limiter.reserve()
            current = replace(current, ready_at=self._clock.monotonic() + wait)
        assert current.ready_at is not None
        return current, current.ready_at - self._clock.monotonic()

    async def _send_on(self, smtp: aiosmtplib.SMTP, lane: _Lane, first: _Pending) -> _After:
        """Send on one connection until its quota, the lane's end, a long wait, or a drop.

        Returns the message still in hand (a drop mid-transaction, or a slot too far ahead to
        keep the connection idle for) and how long to wait before reconnecting; or retires
        the connection when the lane's other connections can keep its pace.
        """
        current: _Pending | None = first
        sent = 0
        while current is not None:
            current, delay = self._pace(lane, current)
            if delay <= 0:
                self._spawn(lane)  # behind schedule: another connection would help
            elif delay > _SPARE_SECONDS and lane.workers > 1:
                lane.retry.appendleft(current)
                return _After(retire=True)
            if delay > _IDLE_CLOSE_SECONDS or (delay > _BUSY_IDLE_SECONDS and self._slot_waiters):
                return _After(current, delay)  # give the slot to a lane that can use it
            item = current.item
            try:
                data = _wire_bytes(item, self._controls.sign)
            except Exception as exc:  # an unserializable message must not sink the batch
                log.error("pool %s: statement %s: cannot serialize (%s); deferred",
                          self.pool.name, item.statement_id, type(exc).__name__)
                self._report_for(lane, _deferred(item, f"internal error: {type(exc).__name__}"))
                current = await self._next(lane, block=False)
                continue
            if delay > 0:
                await self._sleep(delay)
            await self._bucket.acquire(self._sleep)
            await lane.limiter.admit(self._sleep)
            if lane.closed:  # suspended while this message waited for its slot
                self._report_for(lane, _held(item, lane.closed))
                return _After()
            if self._controls.on_attempt is not None:
                self._controls.on_attempt(item)
            try:
                result = await _deliver(smtp, item, data)
            except _ConnectionLost as lost:
                feedback = feedback_for(lost.code, _enhanced(lost.server_message), lost.reason)
                if self._react(lane, feedback, _redact(lost.reason, item.recipient)):
                    self._report_for(lane, _held(item, lane.closed or lost.reason))
                    return _After()
                return _After(self._retry_or_defer(lane, current, lost))
            except Exception as exc:  # one broken message must not sink the batch
                log.error("pool %s: statement %s: unexpected %s; deferred", self.pool.name,
                          item.statement_id, type(exc).__name__)
                self._report_for(lane, _deferred(item, f"internal error: {type(exc).__name__}"))
                return _After()  # connection state unknown: the caller closes it
            sent += 1
            if self._refused_for_us(lane, current, result):
                return _After()
            if sent >= lane.per_connection or not smtp.is_connected:
                return _After()
            current = await self._next(lane, block=False)
        return _After()

    def _refused_for_us(self, lane: _Lane, current: _Pending, result: SendResult) -> bool:
        """Report a result, reacting to what it says about our sending first.

        A throttling 4xx cuts the lane's rate and the message is tried once more on this lane;
        a suspending reply closes the lane and the message is held. True: stop this connection.
        """
        feedback = Feedback.NONE
        if result.outcome in (REJECTED, DEFERRED) and result.reply_code is not None:
            feedback = feedback_for(result.reply_code, result.enhanced_status, result.reply_text)
        if self._react(lane, feedback, result.reply_text):
            self._report_for(lane, _held(current.item, lane.closed or result.reply_text))
            return True
        if (feedback is Feedback.THROTTLE and result.outcome == DEFERRED
                and current.tries + 1 < _MAX_TRIES_PER_MESSAGE):
            lane.retry.append(_Pending(current.item, current.tries + 1))
            return False
        self._report_for(lane, result)
        return False

    def _react(self, lane: _Lane, feedback: Feedback, reason: str) -> bool:
        """Apply a provider's feedback to the lane; True when the lane is now suspended."""
        if feedback is Feedback.THROTTLE:
            if lane.limiter.throttled():
                cuts = self.stats.rate_cuts
                cuts[lane.provider] = cuts.get(lane.provider, 0) + 1
                log.warning("pool %s: %s throttles us; rate cut to %.2f/s", self.pool.name,
                            lane.provider, lane.limiter.rate)
            return False
        if feedback is Feedback.SUSPEND:
            self._suspend(lane, reason)
            return True
        return False

    def _suspend(self, lane: _Lane, reason: str) -> None:
        """No attempt to this provider from this pool until the suspension expires."""
        if lane.closed:
            return
        seconds = self._controls.policy.suspend_seconds
        reason = _collapse(_ADDRESS.sub("<address>", reason))  # it is stored and shown: no PHI
        lane.closed = f"{lane.provider} suspended on {self.pool.name} for {seconds:.0f}s: {reason}"
        self.stats.suspended[lane.provider] = reason
        log.warning("pool %s: %s refuses our mail; suspended for %.0fs", self.pool.name,
                    lane.provider, seconds)
        if self._controls.on_suspend is not None:
            self._controls.on_suspend(lane.provider, seconds, reason)
        while lane.retry:
            self._report_for(lane, _held(lane.retry.popleft().item, lane.closed))
        if self._demux is not None:
            for item in self._demux.drain(lane.provider):
                self._report_for(lane, _held(item, lane.closed))

    def _retry_or_defer(self, lane: _Lane, current: _Pending, lost: _ConnectionLost) -> _Pending | None:
        if current.tries + 1 < _MAX_TRIES_PER_MESSAGE:
            log.info("pool %s: statement %s: connection lost (%s); retrying on a new one",
                     self.pool.name, current.item.statement_id, lost.reason)
            return _Pending(current.item, current.tries + 1)
        deferred = _deferred(current.item, lost.reason, lost.code, lost.server_message)
        self._report_for(lane, deferred)
        return None


def _enhanced(server_message: str) -> str | None:
    match = _ENHANCED.match(server_message)
    return match.group(1) if match else None


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
    recipient's provider (then a paused provider's messages are never even built). If
    ``clock`` has an async ``sleep`` (FakeClock does), pacing waits use it instead of real
    time.
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
