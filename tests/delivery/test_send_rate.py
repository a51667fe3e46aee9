"""LONG (about 25 seconds of real time): the pool's configured rate, measured at the server.

The logic of the limiters is tested on a fake clock elsewhere; this is the one test that
checks the real thing end to end: 601 messages with a 40 KB attachment over real STARTTLS,
paced at 30 messages/s, must arrive at the receiving server at 30/s ± 5 % over 20 seconds,
from the pool's source address, and never faster than the pool's cap in any second by more
than the bucket's burst. The server runs in its own process (its own interpreter), so on a
busy two-core machine it does not steal the sender's time; messages are built beforehand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.delivery import Outgoing, SendResult, make_tls_context, send_pool
from pipeline.delivery.message import build_message, render_email
from pipeline.delivery.pools import PoolConfig, ProviderLimit, Relay
from pipeline.delivery.verp import return_path
from pipeline.demo.smtp_sink import SinkProcess

SOURCE, RELAY = "127.0.0.44", "127.0.0.55"
RATE = 30.0
MESSAGES = int(os.environ.get("EOB_RATE_MESSAGES", "601"))  # 600 intervals of 1/30 s: 20 s
PDF = b"%PDF-2.0\n" + os.urandom(40_000) + b"\n%%EOF\n"


def messages(n: int) -> Iterator[Outgoing]:
    content = render_email(language="en", context={
        "support_phone": "1-800-555-0199", "password_hint": "your date of birth",
        "brand_name": "Acme Health", "period_label": "November 2026"})
    for i in range(n):
        sid = f"st-2026-11-{i:012x}"
        envelope = return_path(sid, "rate-secret", "bounces.eob.example")
        recipient = f"member{i}@{('gmail.com', 'yahoo.com', 'example.org')[i % 3]}"
        yield Outgoing(sid, recipient, envelope, build_message(
            statement_id=sid, recipient=recipient, from_address="statements@eob.example",
            from_name="Member Statements", envelope_from=envelope,
            message_id_domain="eob.example", content=content, pdf=PDF,
            pdf_filename="EOB-2026-11.pdf"))


@pytest.mark.slow
def test_measured_rate_over_20_seconds_is_within_5_percent(tmp_path: Path) -> None:
    open_lane = ProviderLimit(max_connections=4, messages_per_connection=100, max_per_second=None)
    results: list[SendResult] = []
    items = list(messages(MESSAGES))
    with SinkProcess(RELAY, tmp_path / "tls") as sink:
        pool = PoolConfig(name="pool_rate", source_ips=(SOURCE,),
                          relays=(Relay(host=RELAY, port=sink.port),), max_per_second=RATE,
                          max_connections=4, messages_per_connection=100,
                          providers={p: open_lane for p in ("gmail", "yahoo", "default")})
        stats = send_pool(pool, items, results.append,
                          tls_context=make_tls_context(sink.ca_file),
                          ehlo_hostname="mailer.eob.example", timeout=10.0)
        received = sink.received()
    assert stats.accepted == MESSAGES == len(received)
    starts = sorted(at for at, _, _ in received)
    measured = (len(starts) - 1) / (starts[-1] - starts[0])
    error = abs(measured - RATE) / RATE
    print(f"configured={RATE}/s measured={measured:.2f}/s error={100 * error:.2f}% "
          f"over {starts[-1] - starts[0]:.1f}s")
    assert error <= 0.05
    burst = max(1.0, RATE / 10)
    busiest = max(sum(1 for u in starts if t <= u < t + 1.0) for t in starts)
    # The sender allows at most RATE per second plus the burst. These are arrival times at the
    # server, in another process: a short stall there bunches arrivals, so one second here may
    # hold up to 1.1 s of sending.
    assert busiest <= RATE * 1.1 + burst + 1
    assert {peer for _, peer, _ in received} == {SOURCE}
