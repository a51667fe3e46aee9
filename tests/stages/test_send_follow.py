"""The monthly run's senders: they start while the run renders and send each batch as it is
routed, one sender per pool at a time (the lease), on a real ledger against a real SMTP server."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.delivery.message import MessageTemplate
from pipeline.demo.smtp_sink import SmtpSink, TlsMaterial, make_tls_material
from pipeline.stages.context import Context
from pipeline.stages.route import route_statements
from pipeline.stages.send import send_stage
from tests.support.send import RUN_ID, WallClock, make_context, pool_file, queue_statements, statuses

RELAY = "127.0.0.54"
POOL = "pool_t"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


def _context(tmp_path: Path, sink: SmtpSink, tls: TlsMaterial, clock: WallClock, **settings: Any) -> Context:
    return make_context(tmp_path / "ws", pool_file(sink.host, sink.port), tls.ca_file, clock, **settings)


def _in_thread(target: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as exc:  # handed to the test, which re-raises it
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _count_email_templates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the email around a statement is made (a few milliseconds of MIME work
    each; a following sender has many small rounds)."""
    built = [0]
    make = MessageTemplate.__init__

    def counted(self: MessageTemplate, **kwargs: Any) -> None:
        built[0] += 1
        make(self, **kwargs)

    monkeypatch.setattr(MessageTemplate, "__init__", counted)
    return built


def test_a_following_sender_sends_each_batch_as_it_is_routed_and_ends_with_the_run(
    tmp_path: Path, tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_email_templates(monkeypatch)
    clock = WallClock()
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = _context(tmp_path, sink, tls, clock)
        rendered = queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(40)], routed=False)
        sender_ctx = _context(tmp_path, sink, tls, clock)  # the send task's own connections
        thread, box = _in_thread(send_stage, sender_ctx, POOL, follow_run=RUN_ID, wait_if_busy=True)
        received_before_last_batch = 0
        for start in range(0, 40, 10):
            time.sleep(1.5)
            if start == 30:
                received_before_last_batch = len(sink.received)
            route_statements(ctx, [(q.statement_id, "email") for q in rendered[start:start + 10]])
        routed_at = time.monotonic()
        thread.join(timeout=60)
        ended_after = time.monotonic() - routed_at
    assert "error" not in box, box.get("error")
    result = box["result"]
    assert received_before_last_batch >= 20, "sending must start before the run is fully routed"
    assert result["accepted"] == 40 and result["rounds"] >= 2
    assert Counter(statuses(ctx).values()) == {"sent": 40}
    ids = [message.rcpt_to[0] for message in sink.received]
    assert len(ids) == len(set(ids)) == 40, "every statement emailed exactly once"
    assert ended_after < 15, "the sender ends once nothing of the run is left to route"
    assert built == [1], "one language, one period: the email around the PDF is made once a task"


def test_a_second_sender_of_the_same_pool_steps_aside_and_nothing_goes_twice(
    tmp_path: Path, tls: TlsMaterial
) -> None:
    clock = WallClock()
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = _context(tmp_path, sink, tls, clock)
        queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(300)])
        first, first_box = _in_thread(send_stage, _context(tmp_path, sink, tls, clock), POOL)
        deadline = time.monotonic() + 60
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.01)  # the first sender is under way
        second = send_stage(_context(tmp_path, sink, tls, clock), POOL)
        first.join(timeout=120)
    assert second["busy"] and second["attempted"] == 0, "a second sender must step aside"
    assert first_box["result"]["accepted"] == 300
    ids = [message.rcpt_to[0] for message in sink.received]
    assert len(ids) == len(set(ids)) == 300


def test_the_monthly_sender_waits_for_a_pool_still_held_then_sends_everything(
    tmp_path: Path, tls: TlsMaterial
) -> None:
    clock = WallClock()
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = _context(tmp_path, sink, tls, clock, send_lease_seconds=30)
        queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(20)])
        # a sender on another host that stopped renewing: its lease runs 30 s from now
        ctx.ledger.execute("send_lease_take", pool=POOL, holder="worker-9:4242:abcd",
                           now="2026-12-03T10:00:00.000000+00:00",
                           expires_at="2026-12-03T10:00:30.000000+00:00")
        assert send_stage(ctx, POOL)["busy"] == "worker-9:4242:abcd"  # reconcile's sender steps aside
        thread, box = _in_thread(send_stage, _context(tmp_path, sink, tls, clock, send_lease_seconds=30),
                                 POOL, wait_if_busy=True)
        time.sleep(2)
        assert not sink.received and thread.is_alive(), "nothing is sent while another holds the pool"
        clock.advance(seconds=31)  # the old lease lapses
        thread.join(timeout=60)
    assert box["result"]["accepted"] == 20 and len(sink.received) == 20


def test_a_following_sender_gives_up_when_the_render_stalls(
    tmp_path: Path, tls: TlsMaterial, caplog: pytest.LogCaptureFixture
) -> None:
    clock = WallClock()
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = _context(tmp_path, sink, tls, clock, send_follow_idle_seconds=3)
        queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(5)])
        queue_statements(ctx, POOL, [f"n{i}@example.org" for i in range(5)], first=5, routed=False)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            result = send_stage(ctx, POOL, follow_run=RUN_ID)
        took = time.monotonic() - started
    assert result["accepted"] == 5 and len(sink.received) == 5
    assert 3 <= took < 20
    assert any("still await rendering" in r.getMessage() for r in caplog.records)
    assert Counter(statuses(ctx).values()) == {"sent": 5, "rendered": 5}
