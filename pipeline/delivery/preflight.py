"""Is a pool usable from this machine? Checked when its send task starts, and by `eob check`.

A source address that is not an address of this machine cannot be bound: every connection
would fail, and the pool would look like an unreachable relay. A CA bundle that is missing or
not PEM would fail every handshake. Both are found here, before anything is sent, naming the
pool, the address or file, and what to change. ``probe_relay`` goes one step further for
`eob check --relays`: EHLO, verified STARTTLS and QUIT with one relay, no MAIL, nothing sent.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from pipeline.delivery.pools import PoolConfig, PoolConfigError, Relay, ca_file_for
from pipeline.delivery.session import TlsUnavailable, close_politely, collapse, connect, make_tls_context
from pipeline.settings import Settings

__all__ = [
    "CaBundleUnusable", "RelayProbe", "SourceAddressNotLocal", "ca_bundle_source", "check_ca_bundle",
    "check_pool_can_connect", "check_source_addresses", "probe_relay",
]


class SourceAddressNotLocal(PoolConfigError):
    """A pool's source address is not an address of this machine: no connection could bind it."""


class CaBundleUnusable(PoolConfigError):
    """A configured CA bundle is missing, unreadable, or holds no PEM certificate."""


def check_source_addresses(pool: PoolConfig) -> None:
    """Every source address of the pool can be bound here (a bind to port 0, closed at once)."""
    for address in pool.source_ips or ():
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError as exc:
            raise SourceAddressNotLocal(
                f"pool {pool.name}: source address {address} is not an address of this machine "
                f"({exc.strerror}): add it to this worker's network interfaces, or, when the relay "
                "(Postfix, KumoMTA) binds the pool's dedicated address, leave it out (source_ips "
                "in the pool file, source_ip in EOB_POOLS) so connections are not bound") from None


def ca_bundle_source(pool: PoolConfig, settings: Settings) -> str:
    """Where the pool's CA bundle comes from, in an operator's words."""
    if pool.ca_file is not None:
        return "ca_file"
    if settings.smtp_ca_file is not None:
        return "EOB_SMTP_CA_FILE"
    return "the system trust store"


def check_ca_bundle(path: Path, setting: str) -> None:
    """The file exists, can be read, and holds at least one PEM certificate."""
    fix = "point it at a readable PEM file of the CA certificates that sign the relays' certificates"
    try:
        path.read_bytes()
        ssl.create_default_context(cafile=str(path))  # as a send loads it
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise CaBundleUnusable(f"{setting} {path} holds no PEM certificate: {fix}") from None
        raise CaBundleUnusable(f"{setting} {path} cannot be read ({exc.strerror}): {fix}") from None


def check_pool_can_connect(pool: PoolConfig, settings: Settings) -> None:
    """Start of a send: the pool's source addresses are this machine's and its CA bundle is
    usable (``SourceAddressNotLocal``, ``CaBundleUnusable``)."""
    check_source_addresses(pool)
    ca_file = ca_file_for(pool, settings)
    if ca_file is not None:
        check_ca_bundle(ca_file, f"pool {pool.name}: {ca_bundle_source(pool, settings)}")


@dataclass(frozen=True, slots=True)
class RelayProbe:
    """One relay's answer to EHLO, STARTTLS and QUIT: ``ok`` and what was seen or went wrong."""

    relay: Relay
    ok: bool
    detail: str


def probe_relay(pool: PoolConfig, relay: Relay, settings: Settings) -> RelayProbe:
    """Connect as a send would (first source address, the pool's CA bundle, our EHLO name),
    insist on verified STARTTLS, and QUIT: no login, no MAIL, nothing sent."""
    source = pool.source_ips[0] if pool.source_ips else None
    context = make_tls_context(ca_file_for(pool, settings))

    async def handshake() -> str:
        smtp = await connect(source, relay, context, settings.smtp_ehlo_hostname,
                             settings.smtp_timeout_seconds, None)
        try:
            tls = smtp.get_transport_info("ssl_object")
            return str(tls.version()) if tls is not None else "TLS"
        finally:
            await close_politely(smtp)

    where = f"from {source}" if source else "not bound"
    try:
        version = asyncio.run(handshake())
    except TlsUnavailable as exc:
        return RelayProbe(relay, False, f"{exc} ({where})")
    except (aiosmtplib.SMTPException, OSError) as exc:
        return RelayProbe(relay, False, collapse(f"cannot connect ({where}): {type(exc).__name__}: {exc}"))
    return RelayProbe(relay, True, f"STARTTLS verified, {version} ({where})")
