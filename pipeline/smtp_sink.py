"""Real receiving SMTP servers on loopback, for the demo and the tests.

Each sink is an aiosmtpd server in its own thread and event loop, bound to a 127.0.0.x
address, offering STARTTLS with a certificate from a local trustme CA. It behaves like a slice
of the Internet: some recipients are refused at RCPT, some are accepted and later bounce with a
real RFC 3464 DSN dropped into a Maildir (the bounce mailbox reconcile reads), the rest are
accepted. Nothing is mocked: the sender under test speaks real SMTP over real TLS.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mailbox
import re
import ssl
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from pipeline.dsn import build_dsn

log = logging.getLogger(__name__)

UNKNOWN_DOMAIN = "unknown-domain.example"
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the simulated receiving side does with one recipient.

    ``reject`` answers at RCPT with ``code status text``; ``bounce_later`` accepts with 250 and
    then returns a DSN whose Diagnostic-Code is ``code status text``; ``accept`` accepts.
    """

    kind: str
    code: int = 250
    status: str = ""
    text: str = ""

    def reply(self) -> str:
        return " ".join(part for part in (str(self.code), self.status, self.text) if part)


_DSN_OUTCOMES: tuple[Decision, ...] = (
    Decision("bounce_later", 550, "5.1.1", "user unknown"),
    Decision("bounce_later", 552, "5.2.2", "mailbox full"),
    Decision("bounce_later", 554, "5.7.1", "message content rejected (spam filter)"),
    Decision("bounce_later", 451, "4.4.7", "retry timeout exceeded"),
)


def demo_behaviour(recipient: str) -> Decision:
    """Deterministic by address hash: ~2% refused at RCPT, ~3% bounce later, rest accepted."""
    address = recipient.strip().strip("<>").lower()
    if address.rpartition("@")[2] == UNKNOWN_DOMAIN:
        return Decision("reject", 550, "5.1.2", "host unknown")
    bucket = int.from_bytes(hashlib.sha256(address.encode()).digest()[:8], "big") % 10_000
    if bucket < 200:
        return Decision("reject", 550, "5.1.1", "user unknown")
    if bucket < 500:
        return _DSN_OUTCOMES[(bucket - 200) * len(_DSN_OUTCOMES) // 300]
    return Decision("accept", 250, "2.0.0", "OK")


@dataclass(frozen=True, slots=True)
class Received:
    peer_ip: str
    tls: bool
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_material(directory: Path, hostnames: Sequence[str]) -> TlsMaterial:
    """A throwaway CA and a server certificate whose SANs cover ``hostnames`` (IPs too)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="EOB demo CA")
    leaf = ca.issue_cert(*hostnames)
    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server-chain.pem",
        key_file=directory / "server-key.pem",
    )
    ca.cert_pem.write_to_path(str(material.ca_file))
    material.cert_file.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    material.key_file.touch(mode=0o600)
    leaf.private_key_pem.write_to_path(str(material.key_file))
    return material


def _server_tls_context(tls: TlsMaterial) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def _headers_of(data: bytes) -> bytes:
    match = _HEADER_END.search(data)
    return data[: match.end()] if match else data


@dataclass(slots=True)
class _SessionState:
    messages: int = 0
    counted: bool = False


class _Controller(Controller):
    """aiosmtpd's Controller, plus port 0: learn the real port before the readiness probe."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Handler:
    """aiosmtpd hooks; they run on the sink's own loop thread."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._state: weakref.WeakKeyDictionary[SMTP, _SessionState] = weakref.WeakKeyDictionary()

    def _session_state(self, server: SMTP) -> _SessionState:
        return self._state.setdefault(server, _SessionState())

    def _greeted(self, server: SMTP, session: Session, hostname: str) -> None:
        session.host_name = hostname
        state = self._session_state(server)
        if not state.counted:  # EHLO comes again after STARTTLS: one session, counted once
            state.counted = True
            self._sink._note_session(_peer_ip(session))

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._greeted(server, session, hostname)
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._greeted(server, session, hostname)
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._sink.require_tls and session.ssl is None:
            return "530 5.7.0 Must issue a STARTTLS command first"
        limit = self._sink.max_messages_per_session
        if limit is not None and self._session_state(server).messages >= limit:
            transport = server.transport
            if transport is not None:  # close right after the 421 is written, as MTAs do
                server.loop.call_soon(transport.close)
            return "421 4.7.0 Too many messages in this session, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        decision = self._sink.behaviour(address)
        if decision.kind == "reject":
            return decision.reply()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        arrival = datetime.now(UTC)
        self._session_state(server).messages += 1
        for rcpt in envelope.rcpt_tos:
            decision = self._sink.behaviour(rcpt)
            if decision.kind == "bounce_later":
                self._sink._bounce(envelope.mail_from or "", rcpt, data, decision, arrival)
        self._sink._record(
            Received(
                peer_ip=_peer_ip(session),
                tls=session.ssl is not None,
                mail_from=envelope.mail_from or "",
                rcpt_to=tuple(envelope.rcpt_tos),
                data=data if self._sink.keep_data else _headers_of(data),
            )
        )
        return "250 2.0.0 OK queued"

    async def handle_exception(self, error: Exception) -> str:
        """A client abandoning the TLS handshake is routine here (the untrusted-cert case)."""
        if isinstance(error, TLSSetupException):
            log.info("smtp sink: a client abandoned the TLS handshake")
            return "454 4.7.0 TLS not available"
        log.error("smtp sink: %s in session", type(error).__name__, exc_info=error)
        return "451 4.3.0 Local error in processing"


def _peer_ip(session: Session) -> str:
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


@dataclass(slots=True)
class _Counters:
    sessions: list[str] = field(default_factory=list)
    dsns: int = 0


class SmtpSink:
    """One receiving SMTP server on ``host:port`` (port 0: pick a free one, see ``.port``).

    ``tls=None``: STARTTLS is not offered at all. ``require_tls`` (only meaningful with TLS):
    MAIL before STARTTLS gets ``530 5.7.0``. ``keep_data=False`` keeps only the headers of each
    received message, for long demo runs. ``max_messages_per_session`` makes the sink answer
    ``421`` and drop the connection once a session has carried that many messages, as real
    MTAs do, which exercises the sender's reconnect path.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: TlsMaterial | None,
        require_tls: bool = True,
        behaviour: Callable[[str], Decision] = lambda r: Decision("accept"),
        maildir: Path | None = None,
        reporting_mta: str = "mx.sink.example",
        hostname: str = "mx.sink.example",
        keep_data: bool = True,
        max_messages_per_session: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.require_tls = require_tls and tls is not None
        self.behaviour = behaviour
        self.maildir = maildir
        self.reporting_mta = reporting_mta
        self.hostname = hostname
        self.keep_data = keep_data
        self.max_messages_per_session = max_messages_per_session
        self.received: list[Received] = []
        self._counters = _Counters()
        self._lock = threading.Lock()
        self._mailbox: mailbox.Maildir | None = None
        self._controller: _Controller | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a background thread; returns once the server answers."""
        if self._controller is not None:
            raise RuntimeError("sink already started")
        # aiosmtpd logs every sender and recipient address at INFO; addresses are PHI-adjacent.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        if self.maildir is not None:
            self._mailbox = mailbox.Maildir(str(self.maildir), create=True)
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname=self.hostname,
            ident="EOB demo sink",
            tls_context=_server_tls_context(self.tls) if self.tls else None,
            require_starttls=False,  # enforced in handle_MAIL, with an enhanced status code
            ready_timeout=10.0,
            timeout=60,
        )
        controller.start()
        self.port = controller.port
        self._controller = controller
        log.info("smtp sink listening on %s:%d (tls=%s)", self.host, self.port, bool(self.tls))

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what happened -----------------------------------------------------------------------

    @property
    def sessions(self) -> list[str]:
        """Client IP of every SMTP session that greeted us (EHLO/HELO), in order."""
        with self._lock:
            return list(self._counters.sessions)

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._counters.sessions)

    @property
    def dsn_count(self) -> int:
        with self._lock:
            return self._counters.dsns

    def _note_session(self, peer_ip: str) -> None:
        with self._lock:
            self._counters.sessions.append(peer_ip)

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def _bounce(
        self, mail_from: str, rcpt: str, data: bytes, decision: Decision, arrival: datetime
    ) -> None:
        """Write a DSN to the Maildir, addressed to the envelope sender (our VERP address)."""
        if self._mailbox is None or not mail_from:
            return  # no bounce mailbox configured, or a null sender: never bounce a bounce
        headers = _headers_of(data)
        message_id = BytesHeaderParser().parsebytes(headers).get("Message-ID", "")
        dsn = build_dsn(
            reporting_mta=self.reporting_mta,
            envelope_to=mail_from,
            original_message_id=str(message_id),
            original_headers=headers,
            recipient=rcpt,
            action="failed",
            status=decision.status,
            diagnostic=decision.reply(),
            arrival_date=arrival,
        )
        self._mailbox.add(dsn.replace(b"\r\n", b"\n"))
        with self._lock:
            self._counters.dsns += 1
