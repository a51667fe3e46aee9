"""A pool's connections: from its source IPs (if it has any) to its relays, round robin, with a
breaker.

A relay that fails TLS is dropped for the rest of the run (it will not heal by retrying); one
that cannot be reached is retried with exponential backoff; a refused login, an unreachable
relay or no usable relay at all trips the breaker, and the run defers what is left.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiosmtplib

from pipeline.delivery.pools import PoolConfig, Relay, RelayCredentials
from pipeline.delivery.results import SendStats
from pipeline.delivery.session import RelayRefusedLogin, TlsUnavailable, collapse, connect

log = logging.getLogger(__name__)


class RelayUnreachable(ConnectionError):
    """Connecting failed ``connect_attempts`` times in a row."""


class Routes:
    """Round robin over source IPs and relays; a relay failing TLS is dropped for the run."""

    def __init__(self, pool: PoolConfig) -> None:
        self._ips: tuple[str | None, ...] = pool.source_ips or (None,)  # None: not bound
        self._relays = pool.relays
        self._bad: dict[Relay, str] = {}
        self._n = 0

    def next(self) -> tuple[str | None, Relay] | None:
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


class Connector:
    """Opens the pool's connections, and holds the breaker that stops all new ones for the run."""

    def __init__(
        self, pool: PoolConfig, stats: SendStats, *, tls_context: ssl.SSLContext,
        ehlo_hostname: str, timeout: float, credentials: RelayCredentials | None,
        attempts: int, backoff: float,
    ) -> None:
        self.down: str | None = None  # why the breaker is open: the rest is deferred
        self._pool_name = pool.name
        self._stats = stats
        self._routes = Routes(pool)
        self._tls_context = tls_context
        self._ehlo_hostname = ehlo_hostname
        self._timeout = timeout
        self._credentials = credentials
        self._attempts = attempts
        self._backoff = backoff

    def trip(self, reason: str) -> None:
        """Open the breaker: no new connections for this run, the rest is deferred."""
        if self.down is None:
            self.down = reason
            self._stats.pool_down = reason
            log.warning(
                "pool %s: sending stopped, remaining messages deferred: %s", self._pool_name, reason
            )

    async def open(self) -> aiosmtplib.SMTP:
        """Connect with exponential backoff across relays; TLS and login problems don't heal."""
        failures = 0
        last = ""
        while True:
            route = self._routes.next()
            if route is None:
                raise TlsUnavailable(self._routes.last_failure)
            source_ip, relay = route
            try:
                smtp = await connect(source_ip, relay, self._tls_context, self._ehlo_hostname,
                                     self._timeout, self._credentials)
            except TlsUnavailable as exc:
                log.warning("pool %s: relay %s:%d unusable: %s", self._pool_name, relay.host,
                            relay.port, exc)
                self._routes.drop(relay, str(exc))
                continue
            except RelayRefusedLogin:
                raise
            except (aiosmtplib.SMTPException, OSError) as exc:
                failures += 1
                last = collapse(f"{type(exc).__name__}: {exc}")
                log.warning("pool %s: connect attempt %d/%d to %s:%d failed: %s", self._pool_name,
                            failures, self._attempts, relay.host, relay.port, last)
                if failures >= self._attempts:
                    raise RelayUnreachable(
                        f"relay unreachable after {self._attempts} attempts: {last}") from None
                await asyncio.sleep(self._backoff * 2 ** (failures - 1))
                continue
            self._stats.connections += 1
            return smtp
