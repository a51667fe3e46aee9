"""The send stage against real SMTP servers on loopback, with real STARTTLS.

Client connections leave from pool source IPs (127.0.0.2, ...), sinks listen on 127.0.0.1x
with an ephemeral port. Nothing is mocked: what these tests see is what a relay would see.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import logging
import mailbox
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import cast

import aiosmtplib
import pytest

from pipeline.delivery import Outgoing, SendResult, SendStats, make_tls_context, send_pool
from pipeline.delivery.message import EmailContent, build_message, render_email
from pipeline.delivery.session import TlsUnavailable
from pipeline.delivery.verp import return_path, statement_from_address
from pipeline.demo.dsn import build_dsn
from pipeline.demo.smtp_sink import (
    Decision,
    SmtpSink,
    TlsMaterial,
    demo_behaviour,
    make_tls_material,
)
from pipeline.settings import PoolSettings
from tests.support.clock import FakeClock

SOURCE_IP = "127.0.0.2"
RELAY_IP = "127.0.0.12"
OTHER_RELAY_IP = "127.0.0.14"  # not in the certificate's SANs
SECRET = "test-verp-secret"
BOUNCE_DOMAIN = "bounces.eob.example"
EHLO = "mailer.eob.example"
CONTEXT = {
    "support_phone": "1-800-555-0199",
    "password_hint": "your date of birth as MMDDYYYY",
    "brand_name": "Acme Health",
    "period_label": "November 2026",
}
PDF = b"%PDF-2.0\n" + os.urandom(40_000) + b"\n%%EOF\n"


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY_IP, "127.0.0.13", "localhost"])


@pytest.fixture(scope="module")
def content() -> EmailContent:
    return render_email(language="en", context=CONTEXT)


def pool_for(sink: SmtpSink, **overrides: object) -> PoolSettings:
    fields: dict[str, object] = {
        "name": "pool_test",
        "source_ip": SOURCE_IP,
        "relay_host": sink.host,
        "relay_port": sink.port,
        "max_per_second": 10_000.0,
        "max_connections": 2,
        "messages_per_connection": 100,
    }
    fields.update(overrides)
    return PoolSettings(**fields)  # type: ignore[arg-type]


def statement_id(i: int) -> str:
    return f"st-2026-11-{i:012x}"


def outgoing(i: int, recipient: str, content: EmailContent, pdf: bytes = PDF) -> Outgoing:
    sid = statement_id(i)
    envelope_from = return_path(sid, SECRET, BOUNCE_DOMAIN)
    message = build_message(
        statement_id=sid,
        recipient=recipient,
        from_address="statements@eob.example",
        from_name="Member Statements",
        envelope_from=envelope_from,
        message_id_domain="eob.example",
        content=content,
        pdf=pdf,
        pdf_filename="EOB-2026-11.pdf",
    )
    return Outgoing(sid, recipient, envelope_from, message)


def batch(content: EmailContent, n: int, domain: str = "example.org") -> Iterator[Outgoing]:
    for i in range(n):
        yield outgoing(i, f"member{i}@{domain}", content)


def run(
    sink: SmtpSink, items: Iterator[Outgoing] | list[Outgoing], ca_file: Path, **kw: object
) -> tuple[SendStats, list[SendResult]]:
    results: list[SendResult] = []
    pool_kw = {k: kw.pop(k) for k in list(kw) if k in PoolSettings.model_fields}
    stats = send_pool(
        pool_for(sink, **pool_kw),
        items,
        results.append,
        tls_context=make_tls_context(ca_file),
        ehlo_hostname=EHLO,
        timeout=kw.pop("timeout", 5.0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    return stats, results


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def delivery_status_blocks(part: MIMEPart) -> list[EmailMessage]:
    """The parser gives message/delivery-status as a list of header blocks."""
    return cast(list[EmailMessage], part.get_payload())


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# -- the happy path ----------------------------------------------------------------------------


def test_message_arrives_over_tls_from_the_pool_ip_with_verp_and_fixed_message_id(
    tls: TlsMaterial, content: EmailContent
) -> None:
    item = outgoing(7, "jane.member@example.org", content)
    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        stats, results = run(sink, [item], tls.ca_file)

    assert [r.outcome for r in results] == ["accepted"]
    assert results[0].reply_code == 250 and results[0].enhanced_status == "2.0.0"
    assert (stats.attempted, stats.accepted, stats.rejected, stats.deferred, stats.held) == (
        1, 1, 0, 0, 0)
    assert stats.connections == 1 and stats.by_provider == {"default": {"accepted": 1}}
    [got] = sink.received
    assert got.peer_ip == SOURCE_IP
    assert got.tls is True
    assert got.mail_from == return_path(statement_id(7), SECRET, BOUNCE_DOMAIN)
    assert statement_from_address(got.mail_from, SECRET) == statement_id(7)
    assert got.rcpt_to == ("jane.member@example.org",)
    message = parse(got.data)
    assert message["Message-ID"] == f"<{statement_id(7)}@eob.example>"
    assert message["X-EOB-Statement"] == statement_id(7)
    assert "Return-Path" not in message
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "EOB-2026-11.pdf"
    assert attachment.get_content() == PDF


# -- TLS is required ---------------------------------------------------------------------------


def test_relay_without_starttls_receives_nothing_and_everything_is_deferred(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with SmtpSink(RELAY_IP, 0, tls=None) as sink:
        stats, results = run(sink, batch(content, 5), tls.ca_file)

    assert sink.received == []
    assert len(results) == 5 and stats.deferred == 5 and stats.connections == 0
    assert all(r.outcome == "deferred" and "STARTTLS" in r.reply_text for r in results)


@pytest.mark.parametrize("case", ["untrusted CA", "name mismatch"])
def test_relay_failing_certificate_verification_receives_nothing(
    case: str, tls: TlsMaterial, content: EmailContent, tmp_path: Path
) -> None:
    if case == "untrusted CA":
        server_tls, host = make_tls_material(tmp_path / "rogue", [RELAY_IP]), RELAY_IP
    else:
        server_tls, host = tls, OTHER_RELAY_IP
    with SmtpSink(host, 0, tls=server_tls) as sink:
        stats, results = run(sink, batch(content, 3), tls.ca_file)

    assert sink.received == []
    assert stats.deferred == 3 and stats.accepted == 0
    assert all("STARTTLS" in r.reply_text and "certificate" in r.reply_text for r in results)


def test_tls_unavailable_is_a_connection_error() -> None:
    assert issubclass(TlsUnavailable, ConnectionError)


def test_sink_requiring_tls_refuses_mail_before_starttls(tls: TlsMaterial) -> None:
    async def plaintext_mail_from() -> aiosmtplib.SMTPResponse:
        client = aiosmtplib.SMTP(
            hostname=RELAY_IP, port=sink.port, source_address=(SOURCE_IP, 0), start_tls=False
        )
        await client.connect()
        try:
            await client.ehlo()
            assert client.supports_extension("starttls")
            return await client.execute_command(b"MAIL", b"FROM:<x@eob.example>")
        finally:
            client.close()

    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        response = asyncio.run(plaintext_mail_from())
    assert response.code == 530 and response.message.startswith("5.7.0")


# -- outcomes ----------------------------------------------------------------------------------


def mixed_behaviour(recipient: str) -> Decision:
    if recipient.startswith("nobody@"):
        return Decision("reject", 550, "5.1.1", f"<{recipient}>: user unknown")
    if recipient.startswith("full@"):
        return Decision("reject", 452, "4.2.2", "mailbox full, try again later")
    return Decision("accept")


def test_mixed_batch_partial_success_is_data(tls: TlsMaterial, content: EmailContent) -> None:
    items = [outgoing(i, f"member{i}@example.org", content) for i in range(8)]
    items.insert(3, outgoing(100, "nobody@example.org", content))
    items.insert(6, outgoing(101, "full@example.net", content))
    with SmtpSink(RELAY_IP, 0, tls=tls, behaviour=mixed_behaviour) as sink:
        stats, results = run(sink, items, tls.ca_file, max_connections=1)

    by_id = {r.statement_id: r for r in results}
    assert len(results) == len(by_id) == 10  # one result per message, none twice
    rejected, deferred = by_id[statement_id(100)], by_id[statement_id(101)]
    assert (rejected.outcome, rejected.reply_code, rejected.enhanced_status) == (
        "rejected",
        550,
        "5.1.1",
    )
    assert "nobody@example.org" not in rejected.reply_text  # the echoed address is redacted
    assert (deferred.outcome, deferred.reply_code, deferred.enhanced_status) == (
        "deferred",
        452,
        "4.2.2",
    )
    others = [r for sid, r in by_id.items() if sid not in {statement_id(100), statement_id(101)}]
    assert all(r.outcome == "accepted" for r in others)
    assert (stats.attempted, stats.accepted, stats.rejected, stats.deferred) == (10, 8, 1, 1)
    assert stats.accepted + stats.rejected + stats.deferred == stats.attempted
    assert len(sink.received) == stats.accepted
    assert sink.session_count == 1  # RSET after a refusal, same connection carries on


def test_invalid_recipient_is_rejected_without_touching_the_relay(
    tls: TlsMaterial, content: EmailContent
) -> None:
    good = outgoing(1, "member1@example.org", content)
    bad = outgoing(2, "member2@example.org", content)
    bad = Outgoing(bad.statement_id, "not an address", bad.envelope_from, bad.message)
    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        stats, results = run(sink, [bad, good], tls.ca_file)
    assert [r.outcome for r in results] == ["rejected", "accepted"]
    assert results[0].reply_code is None
    assert len(sink.received) == 1


# -- connections -------------------------------------------------------------------------------


def test_connections_are_reused_up_to_messages_per_connection(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        stats, results = run(
            sink, batch(content, 50), tls.ca_file, max_connections=1, messages_per_connection=20
        )
    assert stats.accepted == 50 and len(sink.received) == 50
    assert sink.session_count == 3 and stats.connections == 3
    assert set(sink.sessions) == {SOURCE_IP}


def test_concurrent_connections_share_the_batch(tls: TlsMaterial, content: EmailContent) -> None:
    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        stats, results = run(
            sink, batch(content, 40), tls.ca_file, max_connections=4, messages_per_connection=10
        )
    assert stats.accepted == 40
    ids = [parse(r.data)["Message-ID"] for r in sink.received]
    assert len(set(ids)) == 40  # each message exactly once
    per_session = Counter(r.session for r in sink.received)
    assert len(per_session) >= 4 and max(per_session.values()) <= 10


def test_dropped_connection_reconnects_for_the_rest(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with SmtpSink(RELAY_IP, 0, tls=tls, max_messages_per_session=3) as sink:
        stats, results = run(sink, batch(content, 10), tls.ca_file, max_connections=1)
    assert stats.accepted == 10 and stats.deferred == 0
    assert len({parse(r.data)["Message-ID"] for r in sink.received}) == 10
    assert sink.session_count == 4  # 3 + 3 + 3 + 1, each drop answered by a new connection


def test_unreachable_relay_defers_after_retries(tls: TlsMaterial, content: EmailContent) -> None:
    sink = SmtpSink("127.0.0.15", free_port("127.0.0.15"), tls=tls)  # never started
    started = time.monotonic()
    stats, results = run(sink, batch(content, 4), tls.ca_file, connect_attempts=2)
    assert time.monotonic() - started < 10
    assert stats.deferred == 4 and stats.connections == 0
    assert all("unreachable after 2 attempts" in r.reply_text for r in results)


def test_relay_that_never_greets_times_out_and_defers(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.16", 0))
        silent.listen(8)  # accepts at TCP level, never says 220
        sink = SmtpSink("127.0.0.16", silent.getsockname()[1], tls=tls)
        started = time.monotonic()
        stats, results = run(
            sink,
            batch(content, 2),
            tls.ca_file,
            timeout=0.3,
            connect_attempts=2,
            connect_backoff=0.05,
            max_connections=1,
        )
    assert time.monotonic() - started < 5
    assert stats.deferred == 2
    assert all(r.outcome == "deferred" and "unreachable" in r.reply_text for r in results)


def test_input_is_consumed_lazily(tls: TlsMaterial, content: EmailContent) -> None:
    pulled = 0
    in_hand: list[int] = []

    def generator() -> Iterator[Outgoing]:
        nonlocal pulled
        for item in batch(content, 30):
            pulled += 1
            yield item

    def on_result(result: SendResult) -> None:
        in_hand.append(pulled - len(in_hand))

    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        stats = send_pool(
            pool_for(sink, max_connections=3, messages_per_connection=7),
            generator(),
            on_result,
            tls_context=make_tls_context(tls.ca_file),
            ehlo_hostname=EHLO,
            timeout=5.0,
        )
    assert stats.accepted == 30
    assert max(in_hand) <= 3  # never more messages in memory than connections


def test_pool_rate_is_honoured_on_an_injected_clock(
    tls: TlsMaterial, content: EmailContent
) -> None:
    clock = FakeClock()
    with SmtpSink(RELAY_IP, 0, tls=tls) as sink:
        started = time.monotonic()
        stats, _ = run(
            sink,
            batch(content, 30),
            tls.ca_file,
            max_per_second=10.0,
            max_connections=1,
            clock=clock,
        )
    assert stats.accepted == 30
    assert clock.now == pytest.approx(2.9)  # burst of 1, then one every 0.1 s
    assert time.monotonic() - started < 5  # paced on the fake clock, not in real time


def test_ledger_failure_stops_the_batch(tls: TlsMaterial, content: EmailContent) -> None:
    seen: list[str] = []

    def on_result(result: SendResult) -> None:
        seen.append(result.statement_id)
        if len(seen) == 3:
            raise RuntimeError("ledger unavailable")

    with SmtpSink(RELAY_IP, 0, tls=tls) as sink, pytest.raises(RuntimeError):
        send_pool(
            pool_for(sink, max_connections=1),
            batch(content, 20),
            on_result,
            tls_context=make_tls_context(tls.ca_file),
            ehlo_hostname=EHLO,
            timeout=5.0,
        )
    assert len(sink.received) == 3  # nothing sent after the result that could not be recorded


def test_no_recipient_address_in_logs_at_info(
    tls: TlsMaterial, content: EmailContent, caplog: pytest.LogCaptureFixture
) -> None:
    items = [outgoing(1, "nobody@example.org", content), outgoing(2, "jane@example.org", content)]
    caplog.set_level(logging.INFO)
    with SmtpSink(RELAY_IP, 0, tls=tls, behaviour=mixed_behaviour) as sink:
        run(sink, items, tls.ca_file)
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "pool_test" in text
    assert "nobody@example.org" not in text and "jane@example.org" not in text


# -- bounces -----------------------------------------------------------------------------------


def test_dsn_is_a_delivery_status_report_without_the_body() -> None:
    canary = "CANARY-BODY-7f3e diagnosis J45.909 balance $1,234.56"
    original = (
        "From: statements@eob.example\r\nTo: jane@example.org\r\n"
        "Message-ID: <st-2026-11-000000000001@eob.example>\r\nSubject: Your EOB\r\n\r\n"
        f"{canary}\r\n"
    ).encode()
    dsn = build_dsn(
        reporting_mta="mx.sink.example",
        envelope_to="bounces+st-2026-11-000000000001.abc@bounces.eob.example",
        original_message_id="<st-2026-11-000000000001@eob.example>",
        original_headers=original,  # even given a whole message, only headers go back
        recipient="jane@example.org",
        action="failed",
        status="5.2.2",
        diagnostic="552 5.2.2 mailbox full",
        arrival_date=datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
    )
    assert b"CANARY" not in dsn
    report = parse(dsn)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@mx.sink.example>"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    per_message, per_recipient = delivery_status_blocks(parts[1])
    assert per_message["Reporting-MTA"] == "dns; mx.sink.example"
    assert per_recipient["Final-Recipient"] == "rfc822; jane@example.org"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.2.2"
    assert per_recipient["Diagnostic-Code"] == "smtp; 552 5.2.2 mailbox full"
    assert b"Message-ID: <st-2026-11-000000000001@eob.example>" in dsn


def test_demo_behaviour_is_deterministic_and_roughly_as_advertised() -> None:
    addresses = [f"member{i}@example.org" for i in range(20_000)]
    kinds = [demo_behaviour(a).kind for a in addresses]
    assert [demo_behaviour(a.upper()).kind for a in addresses[:500]] == kinds[:500]
    assert 0.015 < kinds.count("reject") / len(kinds) < 0.025
    assert 0.025 < kinds.count("bounce_later") / len(kinds) < 0.035
    statuses = {
        demo_behaviour(a).status
        for a, k in zip(addresses, kinds, strict=True)
        if k == "bounce_later"
    }
    assert statuses == {"5.1.1", "5.2.2", "5.7.1", "4.4.7"}
    assert demo_behaviour("anyone@unknown-domain.example") == Decision(
        "reject", 550, "5.1.2", "host unknown"
    )


def test_demo_sink_bounces_later_into_the_maildir_to_our_verp_address(
    tls: TlsMaterial, content: EmailContent, tmp_path: Path
) -> None:
    bouncing = next(
        a
        for a in (f"member{i}@example.org" for i in itertools.count())
        if demo_behaviour(a).kind == "bounce_later"
    )
    accepted = next(
        a
        for a in (f"member{i}@example.org" for i in itertools.count())
        if demo_behaviour(a).kind == "accept"
    )
    items = [
        outgoing(1, bouncing, content),
        outgoing(2, accepted, content),
        outgoing(3, "someone@unknown-domain.example", content),
    ]
    maildir = tmp_path / "bounces"
    with SmtpSink(RELAY_IP, 0, tls=tls, behaviour=demo_behaviour, maildir=maildir) as sink:
        stats, results = run(sink, items, tls.ca_file, max_connections=1)

    assert [r.outcome for r in results] == ["accepted", "accepted", "rejected"]
    assert results[2].enhanced_status == "5.1.2"
    files = list((maildir / "new").iterdir())
    assert len(files) == 1 and sink.dsn_count == 1
    raw = files[0].read_bytes()
    dsn = parse(raw)
    assert dsn["To"].addresses[0].addr_spec == return_path(statement_id(1), SECRET, BOUNCE_DOMAIN)
    assert statement_from_address(str(dsn["To"]), SECRET) == statement_id(1)
    [_, status_part, headers_part] = list(dsn.iter_parts())
    assert delivery_status_blocks(status_part)[1]["Status"] == demo_behaviour(bouncing).status
    assert f"<{statement_id(1)}@eob.example>" in headers_part.get_content()
    assert b"THIS IS NOT A BILL" not in raw and b"%PDF" not in raw  # headers only
    assert len(mailbox.Maildir(str(maildir), create=False)) == 1


# -- email content -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "not_a_bill", "paper"),
    [
        ("en", "THIS IS NOT A BILL", "paper copy"),
        ("es", "ESTO NO ES UNA FACTURA", "copia en papel"),
    ],
)
def test_email_wording_has_the_notices_and_no_phi(
    language: str, not_a_bill: str, paper: str
) -> None:
    canaries = {
        "member_name": "Zebulon Canaryfield",
        "date_of_birth": "07/04/1961",
        "amount_owed": "$4,321.09",
    }
    rendered = render_email(language=language, context={**CONTEXT, **canaries})
    for part in (rendered.text, rendered.html):
        assert not_a_bill in part
        assert paper in part
        assert CONTEXT["support_phone"] in part
        assert CONTEXT["password_hint"] in part
    everything = rendered.subject + rendered.text + rendered.html
    assert all(value not in everything for value in canaries.values())
    assert "\n" not in rendered.subject and CONTEXT["brand_name"] in rendered.subject


def test_unsupported_language_falls_back_to_english() -> None:
    assert "THIS IS NOT A BILL" in render_email(language="fr", context=CONTEXT).text


def test_missing_template_variable_fails_loudly() -> None:
    with pytest.raises(Exception, match="support_phone"):
        render_email(
            language="en", context={k: v for k, v in CONTEXT.items() if k != "support_phone"}
        )


def test_message_structure_and_headers(content: EmailContent) -> None:
    item = outgoing(5, "jane.member@example.org", content)
    message = parse(item.message.as_bytes(policy=email.policy.SMTP))
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = list(message.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert attachment.get_content_type() == "application/pdf"
    assert message["To"] == "jane.member@example.org"  # no display name: that would be PHI
    assert message["Auto-Submitted"] == "auto-generated"
    assert "Return-Path" not in message
    rebuilt = outgoing(5, "jane.member@example.org", content).message
    assert rebuilt["Message-ID"] == message["Message-ID"]  # deterministic across resends
