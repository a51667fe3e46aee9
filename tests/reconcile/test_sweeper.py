"""The deadline invariant: every statement is delivered, on paper, or terminal by the deadline.

The decision table is tested on a fake clock; the invariant is then proven end to end against
a real server that accepts TCP connections and never says a word.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.ledger.statuses import Status
from pipeline.outcomes.routing import DeliveryWindow
from pipeline.reconcile.sweeper import MARGIN, SETTLED, Candidate, decide, sweep, unsettled
from pipeline.settings import PoolSettings
from pipeline.stages import sweep_stage
from pipeline.stages.reconcile import process_document, requeue_due_stage
from tests.support.reconcile import (
    RUN_ID,
    START,
    FakeNow,
    add_sent,
    dsn,
    events_of,
    make_context,
    sid,
    status_of,
    write_members,
)

WINDOW = DeliveryWindow(deadline_after=timedelta(days=21), quiet=timedelta(days=5),
                        verification=timedelta(days=7))


def _decide(status: Status, changed_after: timedelta, now_after: timedelta) -> list[str]:
    c = Candidate("st-x", status, START + changed_after, START)
    return [f"{t.to.value}:{t.detail.get('reason') or t.event}"
            for t in decide(c, START + now_after, WINDOW)]


def test_sent_with_no_bounce_for_the_quiet_period_counts_as_delivered() -> None:
    assert _decide(Status.SENT, timedelta(hours=1), timedelta(days=5, hours=0)) == []
    assert _decide(Status.SENT, timedelta(hours=1), timedelta(days=5, hours=1)) == ["delivered:delivered"]


def test_sent_after_the_cutoff_goes_to_paper_at_the_deadline() -> None:
    late = timedelta(days=19)
    assert _decide(Status.SENT, late, timedelta(days=20)) == []
    assert _decide(Status.SENT, late, timedelta(days=21) - MARGIN) == ["paper_queued:deadline_reached"]


def test_a_sent_statement_a_corrected_extract_withdrew_is_never_printed_at_the_deadline() -> None:
    late = START + timedelta(days=19)
    withdrawn = Candidate("st-x", Status.SENT, late, START, withdrawn=True)
    assert decide(withdrawn, START + timedelta(days=21) - MARGIN, WINDOW) == []
    assert [t.to for t in decide(withdrawn, late + timedelta(days=5, hours=1), WINDOW)] == [Status.DELIVERED]


def test_verification_times_out_into_paper() -> None:
    assert _decide(Status.VERIFICATION_PENDING, timedelta(days=1), timedelta(days=7)) == []
    assert _decide(Status.VERIFICATION_PENDING, timedelta(days=1), timedelta(days=8)) == [
        "verification_failed:verification_timed_out", "paper_queued:verification_timed_out"]
    # requested late: the send cut-off (day 16) comes before the 7 days are up
    assert _decide(Status.VERIFICATION_PENDING, timedelta(days=14), timedelta(days=16))[-1] == \
        "paper_queued:verification_timed_out"


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RETRY_SCHEDULED, Status.VERIFIED,
                                    Status.BOUNCED, Status.RENDERED])
def test_anything_not_emailed_by_the_cutoff_goes_to_paper(status: Status) -> None:
    assert _decide(status, timedelta(days=1), timedelta(days=15, hours=23)) == []
    assert _decide(status, timedelta(days=1), timedelta(days=16)) == ["paper_queued:not_sent_by_cutoff"]


def test_never_rendered_is_a_failure_with_a_reason_at_the_deadline() -> None:
    assert _decide(Status.COMPOSED, timedelta(0), timedelta(days=21)) == ["failed:not_rendered_by_deadline"]


def test_a_superseded_version_is_settled_and_left_alone() -> None:
    assert Status.SUPERSEDED in SETTLED
    assert _decide(Status.SUPERSEDED, timedelta(0), timedelta(days=60)) == []


def test_unsettled_query_excludes_exactly_the_settled_statuses() -> None:
    from pipeline.ledger.sql import query

    sql = query("sweep_unsettled_for_run")
    assert set(re.findall(r"'(\w+)'", sql.split("NOT IN", 1)[1])) == {s.value for s in SETTLED}
    candidates = set(re.findall(r"'(\w+)'", query("sweep_candidates")))
    assert not candidates & {s.value for s in SETTLED}


def test_sweep_settles_every_in_flight_status_by_the_deadline(tmp_path: Path) -> None:
    now = FakeNow()
    ctx = make_context(tmp_path, now)
    add_sent(ctx, 1)  # accepted, never hears back
    add_sent(ctx, 2, status=Status.QUEUED)  # its pool never sends
    add_sent(ctx, 3, status=Status.RENDERED)  # never routed
    add_sent(ctx, 4)
    process_document(ctx, dsn(4), "rfc822", "maildir")  # → verification, never answered
    add_sent(ctx, 5)
    process_document(ctx, dsn(5, status="4.2.2", diagnostic="452 4.2.2 mailbox full"), "rfc822", "maildir")
    deadline = WINDOW.deadline(START)
    while now.at < deadline:
        sweep_stage(ctx)
        requeue_due_stage(ctx)  # no sender runs: requeued retries sit in queued
        now.advance(hours=6)
    assert unsettled(ctx.ledger, RUN_ID) == {}
    assert [status_of(ctx, n) for n in range(1, 6)] == [
        "delivered", "paper_queued", "paper_queued", "paper_queued", "paper_queued"]
    assert events_of(ctx, 4)[-2:] == ["verification_timed_out", "paper_queued"]
    assert sweep_stage(ctx) == {}, "a second sweep changes nothing"


def test_sweep_never_prints_a_sent_statement_a_corrected_extract_withdrew(tmp_path: Path) -> None:
    now = FakeNow()
    ctx = make_context(tmp_path, now)
    deadline = DeliveryWindow.from_settings(ctx.settings).deadline(START)
    now.at = deadline - timedelta(days=2)  # sent late: the deadline comes before the quiet period ends
    for n in (1, 2):
        add_sent(ctx, n)
    ctx.ledger.record_event(sid(1), "withdrawn_after_release", {"cause": "test"})
    now.at = deadline - MARGIN
    sweep_stage(ctx)
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("sent", "paper_queued")


def test_sweep_pages_through_large_ledgers(tmp_path: Path) -> None:
    now = FakeNow()
    ctx = make_context(tmp_path, now)
    for n in range(1, 26):
        add_sent(ctx, n)
    now.advance(days=6)
    assert sweep(ctx.ledger, now.at, WINDOW, batch=7) == {"sent->delivered": 25}


# ------------------------------------------------------------------------------ blackhole


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A server that accepts connections and never replies (a hung relay)."""
    server = socket.socket()
    server.bind(("127.0.0.71", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def test_a_relay_that_never_answers_cannot_stop_the_deadline(tmp_path: Path, blackhole) -> None:  # type: ignore[no-untyped-def]
    from pipeline.stages import send_stage
    from pipeline.stages.send import PoolUnavailable

    host, port = blackhole
    now = FakeNow()
    pool = PoolSettings(name="pool_a", source_ip="127.0.0.70", relay_host=host, relay_port=port)
    ctx = make_context(tmp_path, now, pools=[pool], smtp_timeout_seconds=0.5,
                       delivery_deadline_hours=3, bounce_quiet_hours=1, verification_days=0.05,
                       retry_max_attempts=50, retry_base_delay_seconds=900)
    numbers = [1, 2, 3, 4]
    write_members(ctx, numbers)
    for n in numbers:
        key = f"rendered/{sid(n)}.pdf"
        ctx.store.put(key, b"%PDF-1.7\n% test statement\n", "application/pdf")
        add_sent(ctx, n, status=Status.QUEUED, object_key=key)
    deadline = START + timedelta(hours=3)
    sends = 0
    while now.at < deadline:
        # one cycle of the reconcile DAG (fake time), with the real sender against the blackhole
        sweep_stage(ctx)
        requeue_due_stage(ctx)
        if ctx.ledger.fetch("queued_for_pool", pool="pool_a"):
            started = time.monotonic()
            with pytest.raises(PoolUnavailable, match="pool pool_a could not deliver"):
                send_stage(ctx, "pool_a")  # the pool's fault: loud, and no attempt spent
            assert time.monotonic() - started < 20, "the sender hung on a silent relay"
            assert {ctx.ledger.statement(sid(n))["attempts"] for n in numbers} == {0}  # type: ignore[index]
            sends += 1
        now.advance(minutes=15)
    assert sends >= 2, "the retry path was not exercised"
    assert unsettled(ctx.ledger, RUN_ID) == {}
    assert {status_of(ctx, n) for n in numbers} <= {s.value for s in SETTLED}
    assert {status_of(ctx, n) for n in numbers} == {"paper_queued"}
    for n in numbers:
        last = ctx.ledger.timeline(sid(n))[-1]
        assert last["event"] == "paper_queued" and last["at"] < deadline.isoformat()
