"""Provider lanes against real SMTP servers on loopback: caps, throttling, suspension, routes.

Sources 127.0.0.41/42 and relays 127.0.0.50-59 on ephemeral ports keep these tests apart from
other suites running at the same time. Pacing logic runs on a fake clock where a test only
needs the order of events; the per-second caps are measured in real time at the server.
"""

from __future__ import annotations

import base64
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.delivery import (
    ACCEPTED,
    HELD,
    Outgoing,
    SendControls,
    SendResult,
    SendStats,
    make_tls_context,
    provider_lookup,
    send_pool,
)
from pipeline.delivery.dkim import DkimSigner
from pipeline.delivery.message import EmailContent, build_message, render_email
from pipeline.delivery.pools import PoolConfig, ProviderLimit, Relay, RelayCredentials
from pipeline.delivery.throttle import LaneLimiter, ThrottlePolicy
from pipeline.delivery.verp import return_path
from pipeline.delivery.warmup import Quota
from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from tests.support.clock import FakeClock

SOURCES = ("127.0.0.41", "127.0.0.42")
RELAY, RELAY_2, RELAY_3 = "127.0.0.50", "127.0.0.51", "127.0.0.52"
SECRET = "lane-test-secret"
PDF = b"%PDF-2.0\n" + os.urandom(40_000) + b"\n%%EOF\n"
CONTEXT = {"support_phone": "1-800-555-0199", "password_hint": "your date of birth",
           "brand_name": "Acme Health", "period_label": "November 2026"}
FAST = ProviderLimit(max_connections=4, messages_per_connection=100, max_per_second=None)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY, RELAY_2, RELAY_3])


@pytest.fixture(scope="module")
def content() -> EmailContent:
    return render_email(language="en", context=CONTEXT)


def pool(*relays: SmtpSink, sources: tuple[str, ...] = SOURCES[:1], **limits: ProviderLimit
         ) -> PoolConfig:
    providers = {name: FAST for name in ("gmail", "yahoo", "outlook", "icloud", "default")}
    providers.update(limits)
    return PoolConfig(name="pool_lanes", source_ips=sources,
                      relays=tuple(Relay(host=s.host, port=s.port) for s in relays),
                      max_per_second=1000.0, max_connections=6, messages_per_connection=100,
                      providers=providers)


def message(i: int, recipient: str, content: EmailContent) -> Outgoing:
    sid = f"st-2026-11-{i:012x}"
    envelope = return_path(sid, SECRET, "bounces.eob.example")
    msg = build_message(statement_id=sid, recipient=recipient, from_address="statements@eob.example",
                        from_name="Member Statements", envelope_from=envelope,
                        message_id_domain="eob.example", content=content, pdf=PDF,
                        pdf_filename="EOB-2026-11.pdf")
    return Outgoing(sid, recipient, envelope, msg)


def mixed(content: EmailContent, counts: dict[str, int]) -> Iterator[Outgoing]:
    """Interleaved recipients: ``{"gmail.com": 10, "example.org": 5}``."""
    queues = {domain: iter(range(n)) for domain, n in counts.items()}
    i = 0
    while queues:
        for domain in list(queues):
            n = next(queues[domain], None)
            if n is None:
                del queues[domain]
                continue
            i += 1
            yield message(i, f"member{n}@{domain}", content)


def send(config: PoolConfig, items: Iterator[Outgoing] | list[Outgoing] | dict[str, list[Outgoing]],
         ca: Path,
         **kw: object) -> tuple[SendStats, list[SendResult]]:
    results: list[SendResult] = []
    stats = send_pool(config, items, results.append, tls_context=make_tls_context(ca),
                      ehlo_hostname="mailer.eob.example", timeout=5.0, **kw)  # type: ignore[arg-type]
    return stats, results


def by_provider(items: Iterator[Outgoing]) -> dict[str, list[Outgoing]]:
    """What the send stage passes: one lane per provider (no head-of-line blocking)."""
    lanes: dict[str, list[Outgoing]] = defaultdict(list)
    for item in items:
        lanes[provider_lookup()(domain(item.recipient))].append(item)
    return dict(lanes)


def domain(address: str) -> str:
    return address.rpartition("@")[2]


def windows_max(times: list[float], width: float = 1.0) -> int:
    """The most events in any window [t, t + width) that starts at an event."""
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + width) for t in times), default=0)


# -- lanes --------------------------------------------------------------------------------------


def test_each_connection_carries_one_provider_within_its_connection_limits(
    tls: TlsMaterial, content: EmailContent
) -> None:
    gmail = ProviderLimit(max_connections=2, messages_per_connection=5, max_per_second=None)
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        stats, results = send(pool(sink, gmail=gmail),
                              mixed(content, {"gmail.com": 20, "example.org": 20}), tls.ca_file)
    assert stats.accepted == 40 and stats.by_provider == {"gmail": {"accepted": 20},
                                                          "default": {"accepted": 20}}
    sessions: dict[int, set[str]] = defaultdict(set)
    per_session: Counter[int] = Counter()
    for got in sink.received:
        sessions[got.session].add(domain(got.rcpt_to[0]))
        per_session[got.session] += 1
    assert all(len(domains) == 1 for domains in sessions.values())  # one provider per connection
    gmail_sessions = [s for s, d in sessions.items() if d == {"gmail.com"}]
    assert len(gmail_sessions) >= 4 and all(per_session[s] <= 5 for s in gmail_sessions)
    spans = [(min(r.started_at for r in sink.received if r.session == s),
              max(r.started_at for r in sink.received if r.session == s)) for s in gmail_sessions]
    overlap = max(sum(1 for a, b in spans if a <= t <= b) for t, _ in spans)
    assert overlap <= 2  # never more than gmail's 2 connections at once


@pytest.mark.slow  # real time: about 3 seconds
def test_provider_caps_hold_in_every_one_second_window_at_the_server(
    tls: TlsMaterial, content: EmailContent
) -> None:
    gmail = ProviderLimit(max_connections=3, messages_per_connection=100, max_per_second=10)
    yahoo = ProviderLimit(max_connections=2, messages_per_connection=100, max_per_second=4)
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        lanes = by_provider(mixed(content, {"gmail.com": 28, "yahoo.com": 11, "example.org": 30}))
        stats, _ = send(pool(sink, gmail=gmail, yahoo=yahoo), lanes, tls.ca_file)
    assert stats.accepted == 69
    by_domain: dict[str, list[float]] = defaultdict(list)
    for got in sink.received:
        by_domain[domain(got.rcpt_to[0])].append(got.started_at)
    assert windows_max(by_domain["gmail.com"]) <= 10
    assert windows_max(by_domain["yahoo.com"]) <= 4
    gmail_span = max(by_domain["gmail.com"]) - min(by_domain["gmail.com"])
    assert 2.6 <= gmail_span <= 3.6  # 28 at 10/s: paced, not merely capped
    default_span = max(by_domain["example.org"]) - min(by_domain["example.org"])
    assert default_span < gmail_span / 2  # the default lane was not held to the others' pace


def test_source_ips_rotate_and_a_relay_that_fails_tls_is_dropped(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as good, SmtpSink(RELAY_2, 0, tls=None) as plain:
        config = pool(plain, good, sources=SOURCES).model_copy(
            update={"messages_per_connection": 5})
        stats, results = send(config, mixed(content, {"example.org": 30}), tls.ca_file)
    assert stats.accepted == 30 and stats.deferred == 0
    assert plain.received == [] and plain.attempts == []
    assert {r.peer_ip for r in good.received} == set(SOURCES)
    assert all(r.tls for r in good.received)


def test_unreachable_relay_is_skipped_for_the_next_one(tls: TlsMaterial, content: EmailContent
                                                       ) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as good:
        dead = SmtpSink(RELAY_3, good.port, tls=tls)  # same port, nothing listening there
        config = pool(dead, good).model_copy(update={"max_connections": 1})
        stats, _ = send(config, mixed(content, {"example.org": 6}), tls.ca_file,
                        connect_backoff=0.01)
    assert stats.accepted == 6 and len(good.received) == 6


# -- throttling and suspension ----------------------------------------------------------------------


def nth_reply(provider_domain: str, n: int, decision: Decision) -> Callable[[str], Decision]:
    """The ``n``-th distinct recipient at ``provider_domain`` gets ``decision`` on its first
    RCPT; everything else (a retry of it, the sink's second look at DATA) is accepted."""
    calls: Counter[str] = Counter()
    order: list[str] = []

    def behaviour(recipient: str) -> Decision:
        calls[recipient] += 1
        if domain(recipient) == provider_domain and calls[recipient] == 1:
            order.append(recipient)
            if len(order) == n:
                return decision
        return Decision("accept")

    return behaviour


def nth_replies(provider_domain: str, ns: set[int], decision: Decision) -> Callable[[str], Decision]:
    """Like `nth_reply`, for several of the provider's distinct recipients."""
    calls: Counter[str] = Counter()
    order: list[str] = []

    def behaviour(recipient: str) -> Decision:
        calls[recipient] += 1
        if domain(recipient) == provider_domain and calls[recipient] == 1:
            order.append(recipient)
            if len(order) in ns:
                return decision
        return Decision("accept")

    return behaviour


TSS04 = Decision("reject", 421, "4.7.0", "[TSS04] Messages from 127.0.0.41 to "
                 "<member2@yahoo.com> temporarily deferred due to unexpected volume or user "
                 "complaints")


def test_a_suspend_reply_confirmed_by_a_second_stops_every_attempt_to_that_provider(
    tls: TlsMaterial, content: EmailContent
) -> None:
    yahoo = ProviderLimit(max_connections=1, messages_per_connection=100, max_per_second=5)
    suspended: list[tuple[str, float, str]] = []
    controls = SendControls(policy=ThrottlePolicy(suspend_seconds=1800),
                            on_suspend=lambda *a: suspended.append(a))
    clock = FakeClock()
    with SmtpSink(RELAY, 0, tls=tls, behaviour=nth_replies("yahoo.com", {3, 4}, TSS04)) as sink:
        stats, results = send(pool(sink, yahoo=yahoo),
                              mixed(content, {"yahoo.com": 12, "gmail.com": 12}), tls.ca_file,
                              controls=controls, clock=clock)
    yahoo_attempts = [a for a in sink.attempts if domain(a.recipient) == "yahoo.com"]
    # two accepted; the third refused (421: the message is tried again on a new connection and
    # goes through); the fourth refused too, which confirms it: then nothing at all
    assert [a.reply[:3] for a in yahoo_attempts] == ["250", "250", "421", "250", "421"]
    assert stats.by_provider["yahoo"] == {"accepted": 3, "held": 9}
    assert stats.by_provider["gmail"] == {"accepted": 12}  # other providers carry on
    assert [(p, s) for p, s, _ in suspended] == [("yahoo", 1800)]
    assert "TSS04" in suspended[0][2] and "yahoo" in stats.suspended
    assert "@" not in suspended[0][2]  # the stored reason never carries an address
    held = [r for r in results if r.outcome == HELD]
    assert all("suspended" in r.reply_text and "@" not in r.reply_text for r in held)


def test_one_blocking_reply_alone_never_suspends_a_provider(
    tls: TlsMaterial, content: EmailContent
) -> None:
    suspended: list[tuple[str, float, str]] = []
    controls = SendControls(on_suspend=lambda *a: suspended.append(a))
    with SmtpSink(RELAY, 0, tls=tls, behaviour=nth_reply("yahoo.com", 3, TSS04)) as sink:
        stats, _ = send(pool(sink), mixed(content, {"yahoo.com": 8}), tls.ca_file,
                        controls=controls, clock=FakeClock())
    assert not suspended and not stats.suspended
    assert stats.by_provider["yahoo"] == {"accepted": 8}  # the refused one went through on retry
    assert sum(domain(r.rcpt_to[0]) == "yahoo.com" for r in sink.received) == 8


def test_an_oversized_message_refused_at_mail_from_is_that_message_s_outcome_only(
    tls: TlsMaterial, content: EmailContent
) -> None:
    """Postfix checks the declared SIZE at MAIL FROM ("552 5.3.4 Message size exceeds fixed
    limit"): that says nothing about our sender, so it must neither suspend nor slow anyone."""
    from pipeline.delivery import REJECTED
    from pipeline.outcomes import Category, classify

    items = list(mixed(content, {"yahoo.com": 6, "gmail.com": 6}))
    big = items[4]
    big.message.add_attachment(os.urandom(400_000), maintype="application", subtype="octet-stream",
                               filename="extra.bin")
    suspended: list[tuple[str, float, str]] = []
    controls = SendControls(on_suspend=lambda *a: suspended.append(a))
    with SmtpSink(RELAY, 0, tls=tls, max_message_size=200_000) as sink:
        stats, results = send(pool(sink), items, tls.ca_file, controls=controls, clock=FakeClock())
    refused = [r for r in results if r.outcome == REJECTED]
    assert [r.statement_id for r in refused] == [big.statement_id]
    assert refused[0].server_reply == "552 5.3.4 Message size exceeds fixed limit"
    assert classify(refused[0].reply_code, refused[0].enhanced_status,
                    refused[0].server_reply).category is Category.MESSAGE_TOO_LARGE
    assert len(sink.received) == 11 and not suspended and not stats.suspended
    assert not stats.rate_cuts


def test_a_throttle_reply_cuts_the_rate_and_the_message_is_retried(
    tls: TlsMaterial, content: EmailContent
) -> None:
    slow_down = Decision("reject", 451, "4.7.28", "rate limited, please slow down")
    gmail = ProviderLimit(max_connections=1, messages_per_connection=100, max_per_second=10)
    clock = FakeClock()
    started: list[tuple[str, float]] = []
    controls = SendControls(policy=ThrottlePolicy(decrease=0.5, recover_every_seconds=3600),
                            on_attempt=lambda item: started.append((item.statement_id, clock.now)))
    with SmtpSink(RELAY, 0, tls=tls, behaviour=nth_reply("gmail.com", 5, slow_down)) as sink:
        stats, results = send(pool(sink, gmail=gmail), mixed(content, {"gmail.com": 12}),
                              tls.ca_file, controls=controls, clock=clock)
    assert stats.accepted == 12 and stats.deferred == 0  # the throttled one went again
    assert stats.rate_cuts == {"gmail": 1}
    assert len(sink.attempts) == 13 and len(sink.received) == 12
    gaps = [b - a for (_, a), (_, b) in zip(started, started[1:], strict=False)]
    pace = 10 * LaneLimiter.CAP_HEADROOM  # a hard cap is paced at 95 %
    assert gaps[:4] == pytest.approx([1 / pace] * 4)
    assert gaps[5:] == pytest.approx([2 / pace] * (len(gaps) - 5))  # half the rate after the cut
    assert stats.throttle_state["gmail"].rate_after_decrease == pytest.approx(pace / 2)
    assert all(r.outcome == ACCEPTED for r in results)


def test_a_held_provider_gets_no_attempt_and_its_messages_come_back_held(
    tls: TlsMaterial, content: EmailContent
) -> None:
    controls = SendControls(held={"icloud": "icloud paused by an operator"})
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        stats, results = send(pool(sink), mixed(content, {"icloud.com": 5, "example.org": 5}),
                              tls.ca_file, controls=controls)
    assert {domain(a.recipient) for a in sink.attempts} == {"example.org"}
    assert stats.held == 5 and stats.accepted == 5
    assert all(r.reply_text == "icloud paused by an operator" for r in results
               if r.outcome == HELD)


# -- budgets ----------------------------------------------------------------------------------------


def test_warm_up_quota_stops_the_run_and_the_rest_is_not_attempted(
    tls: TlsMaterial, content: EmailContent
) -> None:
    quota = Quota(7, chunk=3)
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        stats, results = send(pool(sink), mixed(content, {"example.org": 20, "gmail.com": 20}),
                              tls.ca_file, controls=SendControls(quota=quota))
    assert len(sink.attempts) == 7 and stats.accepted == 7
    assert stats.stopped == "warm-up cap reached"
    assert all(r.outcome == HELD for r in results if r.outcome != ACCEPTED)
    assert quota.close() == 0


def test_time_budget_stops_pulling_new_messages(tls: TlsMaterial, content: EmailContent) -> None:
    clock = FakeClock()
    gmail = ProviderLimit(max_connections=1, messages_per_connection=100, max_per_second=10)
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        stats, results = send(pool(sink, gmail=gmail), mixed(content, {"gmail.com": 40}),
                              tls.ca_file, controls=SendControls(max_seconds=1.0), clock=clock)
    assert 10 <= stats.accepted <= 12 and len(results) == stats.accepted
    assert stats.stopped == "time budget for this run used up"


# -- relay login and DKIM ---------------------------------------------------------------------------


def test_login_happens_over_tls_and_a_refused_login_sends_nothing(
    tls: TlsMaterial, content: EmailContent
) -> None:
    with SmtpSink(RELAY, 0, tls=tls, auth={"mailer": "right"}) as sink:
        good = SendControls(credentials=RelayCredentials(username="mailer", password="right"))
        stats, _ = send(pool(sink), mixed(content, {"example.org": 3}), tls.ca_file,
                        controls=good)
        assert stats.accepted == 3 and {r.login for r in sink.received} == {"mailer"}
        bad = SendControls(credentials=RelayCredentials(username="mailer", password="wrong"))
        stats, results = send(pool(sink), mixed(content, {"example.org": 3}), tls.ca_file,
                              controls=bad)
    assert stats.deferred == 3 and len(sink.received) == 3
    assert all("refused our login" in r.reply_text for r in results)


def test_dkim_signature_verifies_at_the_receiver(tls: TlsMaterial, content: EmailContent) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner("eob.example", "eob2026", pem)
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        stats, _ = send(pool(sink), [message(1, "member@example.org", content)], tls.ca_file,
                        controls=SendControls(sign=signer))
    [got] = sink.received
    assert got.data.startswith(b"DKIM-Signature:")
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: record
                       if name == b"eob2026._domainkey.eob.example." else None)
    tampered = got.data.replace(b"Explanation of Benefits", b"Explanation of Benefitz", 1)
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)
