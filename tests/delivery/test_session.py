"""DATA as the session sends it: the same bytes as aiosmtplib's own, and a relay's refusal of it."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from pipeline.delivery.results import Outgoing
from pipeline.delivery.session import data_section, deliver
from pipeline.demo.smtp_sink import SmtpSink, make_tls_material


def aiosmtplib_data_section(data: bytes) -> bytes:
    """What aiosmtplib's own ``data()`` transmits (its protocol's two substitutions)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"From x", b" "]),
                max_size=30).map(b"".join))
def test_data_section_is_what_aiosmtplib_would_send(data: bytes) -> None:
    assert data_section(data) == aiosmtplib_data_section(data)


def test_data_section_of_a_statement_message_stuffs_only_line_starting_dots() -> None:
    message = b"Subject: x\r\n\r\n.hidden\r\nnot.here\r\n..\r\nend"
    assert data_section(message) == (
        b"Subject: x\r\n\r\n..hidden\r\nnot.here\r\n...\r\nend\r\n.\r\n")


class _RefuseAtEndOfData:
    """A relay that takes the envelope and the content, then refuses the content."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "554 5.7.1 Message content rejected"


def _send(port: int, ca_file: Path, data: bytes) -> tuple[str, int | None, list[str]]:
    async def run() -> tuple[str, int | None, list[str]]:
        context = ssl.create_default_context(cafile=str(ca_file))
        client = aiosmtplib.SMTP(hostname="127.0.0.62", port=port, tls_context=context,
                                 start_tls=True, timeout=5)
        item = Outgoing("st-2026-11-000000000001", "member@example.org",
                        "bounces@eob.example", data)
        async with client:
            first = await deliver(client, item, data)
            second = await deliver(client, item, data)  # the session is usable after a refusal
        return first.outcome, first.reply_code, [first.reply_text, second.outcome]

    return asyncio.run(run())


def test_a_refusal_at_the_end_of_data_rejects_that_message_and_keeps_the_session(
    tmp_path: Path,
) -> None:
    material = make_tls_material(tmp_path / "tls", ["127.0.0.62"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(material.cert_file), str(material.key_file))
    with socket.socket() as probe:
        probe.bind(("127.0.0.62", 0))
        port = probe.getsockname()[1]
    relay = Controller(_RefuseAtEndOfData(), hostname="127.0.0.62", port=port,
                       tls_context=server_context)
    relay.start()
    try:
        outcome, code, (text, second) = _send(port, material.ca_file,
                                              b"Subject: x\r\n\r\nbody\r\n")
    finally:
        relay.stop()
    assert (outcome, code, second) == ("rejected", 554, "rejected")
    assert text == "554 5.7.1 Message content rejected"


def test_the_relay_receives_the_message_as_sent_dots_and_all(tmp_path: Path) -> None:
    material = make_tls_material(tmp_path / "tls", ["127.0.0.62"])
    message = b"Subject: dots\r\n\r\n.\r\n.a\r\nb.\r\n" + b"x" * 70 + b"\r\n"
    with SmtpSink("127.0.0.62", 0, tls=material) as sink:
        outcome, code, (_, second) = _send(sink.port, material.ca_file, message)
        received = [r.data for r in sink.received]
    assert (outcome, code, second) == ("accepted", 250, "accepted")
    assert received == [message, message]
