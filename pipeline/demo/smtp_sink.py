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
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from pipeline.demo.dsn import build_dsn
from pipeline.demo.smtp_data import BlockDataSMTP

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
    """One accepted message; ``started_at`` is the monotonic time its MAIL FROM arrived."""

    peer_ip: str
    tls: bool
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    started_at: float = 0.0
    login: str | None = None
    session: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One RCPT TO as the server saw it, whatever it answered (monotonic time)."""

    peer_ip: str
    recipient: str
    at: float
    reply: str
    session: int = 0


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
    mail_at: float = 0.0
    session_id: int = 0


class _Controller(Controller):
    """aiosmtpd's Controller, serving `BlockDataSMTP`, plus port 0: learn the real port before
    the readiness probe."""

    port: int

    def factory(self) -> SMTP:
        return BlockDataSMTP(self.handler, **self.SMTP_kwargs)

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
            state.session_id = self._sink._note_session(_peer_ip(session))

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
        if self._sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        limit_bytes = self._sink.max_message_size
        if limit_bytes is not None and _declared_size(options) > limit_bytes:
            return "552 5.3.4 Message size exceeds fixed limit"  # Postfix's reply, at MAIL FROM
        self._session_state(server).mail_at = time.monotonic()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        decision = self._sink.behaviour(address)
        reply = decision.reply() if decision.kind == "reject" else "250 2.1.5 OK"
        self._sink._note_attempt(Attempt(_peer_ip(session), address, time.monotonic(), reply,
                                         self._session_state(server).session_id))
        if decision.kind == "reject":
            if decision.code == 421:  # "closing": say it, then drop the session as MTAs do
                transport = server.transport
                if transport is not None:
                    server.loop.call_soon(transport.close)
            return reply
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
                started_at=self._session_state(server).mail_at,
                login=_login_of(session),
                session=self._session_state(server).session_id,
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


def _login_of(session: Session) -> str | None:
    data: Any = getattr(session, "auth_data", None)
    login = getattr(data, "login", None)
    return login.decode() if isinstance(login, bytes) else None


class _Authenticator:
    """LOGIN/PLAIN against a fixed table (aiosmtpd only offers AUTH after STARTTLS)."""

    def __init__(self, accounts: Mapping[str, str]) -> None:
        self._accounts = dict(accounts)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self._accounts.get(user) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


def _peer_ip(session: Session) -> str:
    peer: Any = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


@dataclass(slots=True)
class _Counters:
    sessions: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    dsns: int = 0


def _declared_size(options: list[str]) -> int:
    """The SIZE= a client declared at MAIL FROM (RFC 1870), 0 when it declared none."""
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


class SmtpSink:
    """One receiving SMTP server on ``host:port`` (port 0: pick a free one, see ``.port``).

    ``tls=None``: STARTTLS is not offered at all. ``require_tls`` (only meaningful with TLS):
    MAIL before STARTTLS gets ``530 5.7.0``. ``keep_data=False`` keeps only the headers of each
    received message, for long demo runs. ``max_messages_per_session`` makes the sink answer
    ``421`` and drop the connection once a session has carried that many messages, as real
    MTAs do, which exercises the sender's reconnect path. ``auth`` (user → password) makes
    the sink demand AUTH (offered only after STARTTLS) before MAIL. ``max_message_size`` refuses
    at MAIL FROM a message whose declared SIZE is larger, with Postfix's reply. Every RCPT is recorded in
    ``attempts`` with its time and answer, so tests can prove what was *not* attempted.
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
        auth: Mapping[str, str] | None = None,
        max_message_size: int | None = None,
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
        self.auth = dict(auth) if auth is not None else None
        self.max_message_size = max_message_size
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
            **self._auth_options(),
        )
        controller.start()
        self.port = controller.port
        self._controller = controller
        log.info("smtp sink listening on %s:%d (tls=%s)", self.host, self.port, bool(self.tls))

    def _auth_options(self) -> dict[str, Any]:
        if self.auth is None:
            return {}
        return {"authenticator": _Authenticator(self.auth), "auth_required": False,
                "auth_require_tls": True}  # "required" is enforced in handle_MAIL

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
    def attempts(self) -> list[Attempt]:
        """Every RCPT TO received, accepted or not, in order."""
        with self._lock:
            return list(self._counters.attempts)

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._counters.sessions)

    @property
    def dsn_count(self) -> int:
        with self._lock:
            return self._counters.dsns

    def _note_session(self, peer_ip: str) -> int:
        """Record a new session; returns its number (1-based, in order of greeting)."""
        with self._lock:
            self._counters.sessions.append(peer_ip)
            return len(self._counters.sessions)

    def _note_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self._counters.attempts.append(attempt)

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


# -- a sink in its own process (benchmarks) -------------------------------------------------------


def serve(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.demo.smtp_sink --host H --tls-dir D``: one sink, driven over stdin.

    Prints ``port N`` once listening, then reads commands, one per line: ``dump PATH`` writes
    ``[[started_at, peer_ip, session], ...]`` of every message received so far as JSON and
    answers ``ok``; ``reset`` forgets them; ``quit`` (or end of input) stops. A benchmark runs
    the receiving side here so that it does not compete with the sender for a core.
    """
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-dir", type=Path, required=True, help="holds ca.pem etc. (made)")
    args = parser.parse_args(argv)
    material = make_tls_material(args.tls_dir, [args.host, "localhost"])
    with SmtpSink(args.host, args.port, tls=material, keep_data=False) as sink:
        print(f"port {sink.port}", flush=True)
        for line in sys.stdin:
            command, _, rest = line.strip().partition(" ")
            if command == "dump":
                with sink._lock:
                    rows = [[r.started_at, r.peer_ip, r.session] for r in sink.received]
                Path(rest).write_text(json.dumps(rows))
            elif command == "reset":
                with sink._lock:
                    sink.received.clear()
            elif command == "quit":
                break
            print("ok", flush=True)


class SinkProcess:
    """A sink started with ``serve`` in a child process, driven over its stdin.

    For measurements: the receiving side then has its own interpreter (and GIL), so it does not
    steal the sender's time. ``received()`` gives ``(started_at, peer_ip, session)`` per
    message, with ``started_at`` on the machine's monotonic clock (comparable across processes).
    """

    def __init__(self, host: str, tls_dir: Path) -> None:
        import subprocess
        import sys

        self.host = host
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.demo.smtp_sink", "--host", host, "--tls-dir",
             str(tls_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parent.parent)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if line[:1] != ["port"]:
            self._proc.kill()
            raise RuntimeError(f"the sink process did not start: {line}")
        self.port = int(line[1])
        self.ca_file = tls_dir / "ca.pem"

    def _command(self, text: str) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(text + "\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the sink process did not answer {text!r}")

    def received(self) -> list[tuple[float, str, int]]:
        import json
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            self._command(f"dump {handle.name}")
            return [(float(a), str(b), int(c))
                    for a, b, c in json.loads(Path(handle.name).read_text())]

    def reset(self) -> None:
        self._command("reset")

    def stop(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=30)

    def __enter__(self) -> SinkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # pragma: no cover - exercised by bench/send.py and test_send_rate
    serve()
