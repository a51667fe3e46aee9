"""Send one IP pool's messages: STARTTLS required, paced, connections reused, results streamed.

One asyncio event loop drives up to ``pool.max_connections`` SMTP connections, each bound to
the pool's source IP (receivers judge reputation per IP) and reused for up to
``pool.messages_per_connection`` messages. Every message gets exactly one ``SendResult``,
handed to ``on_result`` the moment it is known: the caller commits it to the ledger before the
next message goes out on that connection, so a crash can duplicate at most the message that was
in flight, never lose a 250.

TLS is not negotiable: a relay that does not offer STARTTLS, or whose certificate does not
verify, gets nothing, and its messages come back ``deferred`` with the reason so the pipeline
can route them elsewhere. There is no plaintext fallback anywhere in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from pipeline.ratelimit import Clock, SystemClock, TokenBucket
from pipeline.settings import PoolSettings

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"
DEFERRED = "deferred"

_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_REPLY_LIMIT = 300
_MAX_TRIES_PER_MESSAGE = 2  # a message cut off by a dropped connection is retried once
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


@dataclass(slots=True)
class SendStats:
    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    deferred: int = 0
    connections: int = 0

    def count(self, result: SendResult) -> None:
        self.attempted += 1
        if result.outcome == ACCEPTED:
            self.accepted += 1
        elif result.outcome == REJECTED:
            self.rejected += 1
        else:
            self.deferred += 1


class TlsUnavailable(ConnectionError):
    """The relay offers no STARTTLS or fails verification: never send, never fall back."""


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


def make_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying client context (hostname + chain), TLS 1.2 or newer; system CAs by default."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


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


def _domain(address: str) -> str:
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
    pool: PoolSettings, tls_context: ssl.SSLContext, ehlo_hostname: str, timeout: float
) -> aiosmtplib.SMTP:
    """A connection from the pool's source IP, already upgraded to verified TLS."""
    smtp = aiosmtplib.SMTP(
        hostname=pool.relay_host,
        port=pool.relay_port,
        source_address=(pool.source_ip, 0),
        local_hostname=ehlo_hostname,
        timeout=timeout,
        use_tls=False,
        start_tls=False,  # done explicitly below, so the offer is checked before anything else
        tls_context=tls_context,
    )
    await smtp.connect()
    try:
        await _require_starttls(smtp)
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


async def _deliver(smtp: aiosmtplib.SMTP, item: Outgoing) -> SendResult:
    """One transaction: MAIL, RCPT, DATA. Raises _ConnectionLost if the outcome is unknown."""
    if not _sendable(item.recipient):
        return _result(item, REJECTED, None, "recipient address is not deliverable; not sent")
    data = item.message.as_bytes(policy=email.policy.SMTP)
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


# -- the batch ---------------------------------------------------------------------------------


class _Batch:
    """Shared state of one send_pool run: the lazy input, the bucket, stats, circuit breaker."""

    def __init__(
        self,
        pool: PoolSettings,
        outgoing: Iterable[Outgoing],
        on_result: Callable[[SendResult], None],
        *,
        tls_context: ssl.SSLContext,
        ehlo_hostname: str,
        timeout: float,
        clock: Clock,
        connect_attempts: int,
        connect_backoff: float,
    ) -> None:
        self.pool = pool
        self.stats = SendStats()
        self._items: Iterator[Outgoing] = iter(outgoing)
        self._exhausted = False
        self._on_result = on_result
        self._tls_context = tls_context
        self._ehlo_hostname = ehlo_hostname
        self._timeout = timeout
        self._attempts = connect_attempts
        self._backoff = connect_backoff
        self._per_connection = max(1, pool.messages_per_connection)
        # A tenth of a second's quota as burst keeps the stream smooth at the relay.
        self._bucket = TokenBucket(pool.max_per_second, max(1.0, pool.max_per_second / 10), clock)
        sleep = getattr(clock, "sleep", None)
        self._sleep: Callable[[float], Awaitable[object]] = sleep or asyncio.sleep
        self._down: str | None = None

    async def run(self) -> SendStats:
        workers = [
            asyncio.create_task(self._worker(), name=f"{self.pool.name}-conn-{n}")
            for n in range(max(1, self.pool.max_connections))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return self.stats

    def _next(self) -> _Pending | None:
        """Pull one message from the caller's iterable, only when a connection needs one."""
        if self._exhausted:
            return None
        item = next(self._items, None)
        if item is None:
            self._exhausted = True
            return None
        return _Pending(item)

    def _report(self, result: SendResult, recipient: str) -> None:
        self._on_result(result)  # the caller commits here; if it raises, the batch stops
        self.stats.count(result)
        log.debug(
            "pool=%s statement=%s outcome=%s code=%s domain=%s",
            self.pool.name,
            result.statement_id,
            result.outcome,
            result.reply_code,
            _domain(recipient),
        )

    async def _worker(self) -> None:
        pending: _Pending | None = None
        while True:
            pending = pending or self._next()
            if pending is None:
                return
            if self._down is not None:
                self._report(_deferred(pending.item, self._down), pending.item.recipient)
                pending = None
                continue
            try:
                smtp = await self._open()
            except (TlsUnavailable, _RelayUnreachable) as exc:
                self._trip(str(exc))
                continue  # the breaker now defers this message and the rest
            try:
                pending = await self._send_on(smtp, pending)
            except BaseException:
                smtp.close()
                raise
            await _quit(smtp)

    def _trip(self, reason: str) -> None:
        """Open the breaker: no new connections for this batch, the rest is deferred."""
        if self._down is None:
            self._down = reason
            log.warning(
                "pool %s: sending stopped, remaining messages deferred: %s", self.pool.name, reason
            )

    async def _open(self) -> aiosmtplib.SMTP:
        """Connect with exponential backoff; TLS problems are not retried (they don't heal)."""
        last = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                smtp = await _connect(
                    self.pool, self._tls_context, self._ehlo_hostname, self._timeout
                )
            except TlsUnavailable:
                raise
            except (aiosmtplib.SMTPException, OSError) as exc:
                last = _collapse(f"{type(exc).__name__}: {exc}")
                log.warning(
                    "pool %s: connect attempt %d/%d failed: %s",
                    self.pool.name,
                    attempt + 1,
                    self._attempts,
                    last,
                )
                continue
            self.stats.connections += 1
            return smtp
        raise _RelayUnreachable(f"relay unreachable after {self._attempts} attempts: {last}")

    async def _send_on(self, smtp: aiosmtplib.SMTP, first: _Pending) -> _Pending | None:
        """Send on one connection until its quota, the input's end, or a drop.

        Returns the message still in hand when the connection dropped mid-transaction (to be
        retried on a new connection), else None.
        """
        current: _Pending | None = first
        sent = 0
        while current is not None:
            await self._bucket.acquire(self._sleep)
            item = current.item
            try:
                result = await _deliver(smtp, item)
            except _ConnectionLost as lost:
                return self._retry_or_defer(current, lost)
            except Exception as exc:  # one broken message must not sink the batch
                log.error(
                    "pool %s: statement %s: unexpected %s; deferred",
                    self.pool.name,
                    item.statement_id,
                    type(exc).__name__,
                )
                self._report(
                    _deferred(item, f"internal error: {type(exc).__name__}"), item.recipient
                )
                return None  # connection state unknown: the caller closes it
            self._report(result, item.recipient)
            sent += 1
            if sent >= self._per_connection or not smtp.is_connected:
                return None
            current = self._next()
        return None

    def _retry_or_defer(self, current: _Pending, lost: _ConnectionLost) -> _Pending | None:
        if current.tries + 1 < _MAX_TRIES_PER_MESSAGE:
            log.info(
                "pool %s: statement %s: connection lost (%s); retrying on a new one",
                self.pool.name,
                current.item.statement_id,
                lost.reason,
            )
            return _Pending(current.item, current.tries + 1)
        deferred = _deferred(current.item, lost.reason, lost.code, lost.server_message)
        self._report(deferred, current.item.recipient)
        return None


async def send_pool_async(
    pool: PoolSettings,
    outgoing: Iterable[Outgoing],
    on_result: Callable[[SendResult], None],
    *,
    tls_context: ssl.SSLContext,
    ehlo_hostname: str,
    timeout: float,
    clock: Clock | None = None,
    connect_attempts: int = 3,
    connect_backoff: float = 0.5,
) -> SendStats:
    """The coroutine behind send_pool, for callers that already run an event loop."""
    if connect_attempts < 1:
        raise ValueError("connect_attempts must be at least 1")
    batch = _Batch(
        pool,
        outgoing,
        on_result,
        tls_context=tls_context,
        ehlo_hostname=ehlo_hostname,
        timeout=timeout,
        clock=clock or SystemClock(),
        connect_attempts=connect_attempts,
        connect_backoff=connect_backoff,
    )
    stats = await batch.run()
    log.info(
        "pool %s: attempted=%d accepted=%d rejected=%d deferred=%d connections=%d",
        pool.name,
        stats.attempted,
        stats.accepted,
        stats.rejected,
        stats.deferred,
        stats.connections,
    )
    return stats


def send_pool(
    pool: PoolSettings,
    outgoing: Iterable[Outgoing],
    on_result: Callable[[SendResult], None],
    *,
    tls_context: ssl.SSLContext,
    ehlo_hostname: str,
    timeout: float,
    clock: Clock | None = None,
    connect_attempts: int = 3,
    connect_backoff: float = 0.5,
) -> SendStats:
    """Send a whole batch through one pool on one event loop; see the module docstring.

    ``outgoing`` is consumed lazily (at most one message in hand per connection), on this
    thread, so a generator may read from the caller's database session. If ``clock`` has an
    async ``sleep`` (FakeClock does), pacing waits use it instead of real time.
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
        )
    )
