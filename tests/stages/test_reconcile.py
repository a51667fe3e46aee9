"""Reconcile: real DSNs from a Maildir routed into retry, verification and paper queues.

Each test reads what a compliance reviewer would check: where the statement went, what its
timeline says, whether the address was suppressed, and that nothing else changed.
"""

from __future__ import annotations

import logging
import mailbox
import random
import sqlite3
from datetime import timedelta
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from pipeline.delivery.suppression import is_suppressed
from pipeline.ledger.statuses import Status
from pipeline.outcomes.classify import Category, classify, for_category
from pipeline.outcomes.routing import DeliveryWindow, RetryPolicy, retry_or_paper, route
from pipeline.reconcile.feeds import SES_JSON
from pipeline.stages.reconcile import process_document, queue_counts, reconcile_stage, requeue_due_stage
from tests.support.reconcile import (
    RUN_ID,
    SECRET,
    FakeNow,
    add_sent,
    address,
    dsn,
    events_of,
    make_context,
    ses_notification,
    sid,
    status_of,
)


def deliver(ctx, *messages: bytes) -> None:  # type: ignore[no-untyped-def]
    box = mailbox.Maildir(str(ctx.settings.maildir), create=True)
    for raw in messages:
        box.add(raw)


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    context = make_context(tmp_path)
    yield context
    context.ledger.close()


# ------------------------------------------------------------------------------ routing


def test_each_kind_of_failure_lands_in_its_queue(ctx) -> None:  # type: ignore[no-untyped-def]
    for n in range(1, 6):
        add_sent(ctx, n)
    deliver(ctx,
            dsn(1, status="5.1.1", diagnostic="550 5.1.1 user unknown"),
            dsn(2, status="5.2.2", diagnostic="552 5.2.2 mailbox full"),
            dsn(3, status="5.7.1", diagnostic="554 5.7.1 message content rejected (spam filter)"),
            dsn(4, status="5.7.1", diagnostic="554 5.7.1 blocked using zen.spamhaus.org"),
            dsn(5, status="5.1.2", diagnostic="550 5.1.2 host unknown"))
    result = reconcile_stage(ctx)
    assert result["messages"] == 5
    assert [status_of(ctx, n) for n in range(1, 6)] == [
        "verification_pending", "retry_scheduled", "paper_queued", "retry_scheduled",
        "verification_pending"]
    # recipient-caused → suppressed; mailbox full, content and sender-caused blocks → never
    assert [is_suppressed(ctx.ledger, address(n), SECRET) for n in range(1, 6)] == [
        True, False, False, False, True]
    assert events_of(ctx, 1)[-2:] == ["bounced", "verification_requested"]
    assert not list((ctx.settings.maildir / "new").iterdir()), "processed messages stay in new/"
    assert len(list((ctx.settings.maildir / "cur").iterdir())) == 5


def test_a_bounce_for_a_statement_withdrawn_after_release_closes_it_instead_of_resending(ctx) -> None:  # type: ignore[no-untyped-def]
    """Its claims now belong to someone else: no retry, no verification resend, no paper."""
    for n in (1, 2, 3):
        add_sent(ctx, n)
    for n in (1, 2):
        ctx.ledger.record_event(sid(n), "withdrawn_after_release", {"cause": "test"})
    ctx.ledger.record_event(sid(2), "reinstated", {"cause": "test"})  # its lines came back
    deliver(ctx, dsn(1, status="5.2.2", diagnostic="552 5.2.2 mailbox full"),
            dsn(2, status="5.2.2", diagnostic="552 5.2.2 mailbox full"),
            dsn(3, status="5.1.1", diagnostic="550 5.1.1 user unknown"))
    assert reconcile_stage(ctx)["closed_withdrawn"] == 1
    assert [status_of(ctx, n) for n in (1, 2, 3)] == ["superseded", "retry_scheduled", "verification_pending"]
    assert events_of(ctx, 1)[-2:] == ["bounced", "withdrawn"]
    counts = queue_counts(ctx, RUN_ID)
    assert (counts["superseded"], counts["stranded"], counts["reconciles"]) == (1, 0, True)
    withdrawn = ctx.ledger.fetch("withdrawn_for_run", run_id=RUN_ID)
    assert [(r["statement_id"], r["event"]) for r in withdrawn] == [
        (sid(1), "withdrawn_after_release")]  # once, as out already: it was emailed


def test_a_duplicate_bounce_changes_nothing(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    raw = dsn(1, status="5.2.2", diagnostic="552 5.2.2 mailbox full")
    deliver(ctx, raw)
    reconcile_stage(ctx)
    before = (ctx.ledger.statement(sid(1)), events_of(ctx, 1))
    deliver(ctx, raw)
    assert reconcile_stage(ctx) == {"messages": 1, "duplicate": 1}
    assert (ctx.ledger.statement(sid(1)), events_of(ctx, 1)) == before


def test_a_second_different_bounce_for_a_routed_statement_is_recorded_and_ignored(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    deliver(ctx, dsn(1))
    reconcile_stage(ctx)
    deliver(ctx, dsn(1, diagnostic="550 5.1.1 no such user here"))
    assert reconcile_stage(ctx)["already_routed"] == 1
    assert status_of(ctx, 1) == "verification_pending"
    assert events_of(ctx, 1)[-2:] == ["bounced_ignored", "verification_requested_ignored"]


def test_a_late_bounce_never_pulls_a_statement_waiting_to_be_resent_back_to_verification(ctx) -> None:  # type: ignore[no-untyped-def]
    """Support may send a retry or a confirmed address's resend back to verification on purpose
    (the state machine allows it); a report about an earlier send must not do it by itself."""
    from pipeline.ledger import Event, Transition

    add_sent(ctx, 1)
    add_sent(ctx, 2)
    deliver(ctx, dsn(1, status="5.2.2", diagnostic="552 5.2.2 mailbox full"), dsn(2))
    reconcile_stage(ctx)
    ctx.ledger.apply([Transition(sid(2), Status.VERIFIED, Event.ADDRESS_VERIFIED, {"channel": "phone"})])
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("retry_scheduled", "verified")
    deliver(ctx, dsn(1, diagnostic="550 5.1.1 no such user here"), dsn(2, diagnostic="550 5.1.1 gone away"))
    assert reconcile_stage(ctx)["already_routed"] == 2
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("retry_scheduled", "verified")
    assert events_of(ctx, 1)[-1] == events_of(ctx, 2)[-1] == "bounced_ignored"


def test_forged_unknown_unparseable_and_uncorrelated_are_recorded_and_ignored(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    forged = dsn(1, secret="somebody-elses-secret")
    unknown = dsn(99)  # a valid token for a statement this ledger never had
    garbage = b"\x00\x01 not a mail message at all"
    stranger = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: someone@eob.example\r\n"
                b"Subject: Undelivered Mail Returned to Sender\r\n\r\n550 5.1.1 user unknown\r\n")
    deliver(ctx, forged, unknown, garbage, stranger)
    result = reconcile_stage(ctx)
    assert result == {"messages": 4, "forged": 1, "unknown_statement": 1, "unparseable": 1,
                      "uncorrelated": 1}
    assert status_of(ctx, 1) == "sent", "a forged bounce moved a real statement"
    rows = ctx.ledger.fetch("bounce_message_outcomes")
    assert sum(r["n"] for r in rows) == 4
    set_aside = ctx.settings.maildir / ".set-aside" / "cur"
    assert len(list(set_aside.iterdir())) == 1, "the unparseable message is set aside for a human"


def test_a_delayed_dsn_is_noted_and_never_triggers_a_resend(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    deliver(ctx, dsn(1, action="delayed", status="4.4.7", diagnostic="451 4.4.7 delayed"))
    assert reconcile_stage(ctx)["noted_delayed"] == 1
    assert status_of(ctx, 1) == "sent"
    assert events_of(ctx, 1)[-1] == "delivery_delayed"


def _only_the_statement_header(raw: bytes) -> bytes:
    """The same DSN with every Message-ID pointing elsewhere: only X-EOB-Statement names us."""
    return raw.replace(b"@eob.example>", b"@relay.example.net>")


@pytest.mark.parametrize("evidence", ["message_id", "header"])
def test_a_bounce_without_a_signed_token_from_the_bounce_mailbox_is_recorded_and_changes_nothing(
        ctx, caplog: pytest.LogCaptureFixture, evidence: str) -> None:  # type: ignore[no-untyped-def]
    """Anyone can mail the bounce mailbox a DSN quoting a (deterministic) Message-ID or the
    statement header: without a VERP token whose HMAC verifies it must not move a statement."""
    add_sent(ctx, 1)
    raw = dsn(1, verp=False)
    if evidence == "header":
        raw = _only_the_statement_header(raw)
    before = (ctx.ledger.statement(sid(1)), events_of(ctx, 1))
    deliver(ctx, raw)
    with caplog.at_level(logging.INFO, logger="pipeline.stages.reconcile"):
        result = reconcile_stage(ctx)
    assert result == {"messages": 1, "ignored_unsigned": 1}
    assert status_of(ctx, 1) == "sent", "an unsigned bounce moved a delivered statement"
    assert (ctx.ledger.statement(sid(1)), events_of(ctx, 1)) == before
    assert not is_suppressed(ctx.ledger, address(1), SECRET), "an unsigned bounce suppressed an address"
    outcomes = {r["outcome"]: r["n"] for r in ctx.ledger.fetch("bounce_message_outcomes")}
    assert outcomes == {"ignored_unsigned": 1}
    assert "outcomes=ignored_unsigned" in caplog.text
    assert not list((ctx.settings.maildir / "new").iterdir()), "the message is done, not offered again"
    deliver(ctx, raw)
    assert reconcile_stage(ctx) == {"messages": 1, "duplicate": 1}, "its hash was not kept"


@pytest.mark.parametrize("evidence", ["message_id", "header"])
def test_a_mailbox_feed_set_to_correlate_by_message_id_routes_an_unsigned_bounce_but_never_suppresses(
        tmp_path: Path, evidence: str) -> None:
    ctx = make_context(tmp_path, reconcile_feeds=[f"maildir://{tmp_path / 'bounces'}?correlate=message_id"])
    add_sent(ctx, 1)
    raw = dsn(1, verp=False)
    deliver(ctx, _only_the_statement_header(raw) if evidence == "header" else raw)
    assert reconcile_stage(ctx) == {"messages": 1, "routed_verify": 1}
    assert status_of(ctx, 1) == "verification_pending"
    detail = ctx.ledger.timeline(sid(1))[-2]["detail"]
    assert detail["correlation"] == evidence
    assert not is_suppressed(ctx.ledger, address(1), SECRET), "unsigned evidence suppressed an address"
    ctx.ledger.close()


def test_unsigned_evidence_about_another_domain_is_ignored(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1, domain="example.org")
    raw = dsn(1, domain="elsewhere.net").replace(b"bounces+", b"postmaster+")
    outcome = process_document(ctx, raw, "rfc822", "maildir", message_id_correlation=True).outcome
    assert outcome == "mismatched_recipient"
    assert status_of(ctx, 1) == "sent"


def test_ses_notifications_bounce_complaint_and_delivery(ctx) -> None:  # type: ignore[no-untyped-def]
    for n in (1, 2, 3, 4):
        add_sent(ctx, n)
    outcomes = [process_document(ctx, ses_notification(1).encode(), SES_JSON, "ses+sqs").outcome,
                process_document(ctx, ses_notification(2, "Complaint").encode(), SES_JSON, "ses+sqs").outcome,
                process_document(ctx, ses_notification(3, "Delivery", sns=False).encode(), SES_JSON,
                                 "ses+s3").outcome,
                process_document(ctx, ses_notification(4, bounce_type="Transient", status="4.2.2",
                                                       diagnostic="452 4.2.2 mailbox full").encode(),
                                 SES_JSON, "ses+sqs").outcome]
    assert outcomes == ["routed_verify", "complaint", "delivered", "noted_delayed"]
    assert [status_of(ctx, n) for n in (1, 2, 3, 4)] == [
        "verification_pending", "delivered", "delivered", "sent"]
    assert is_suppressed(ctx.ledger, address(2), SECRET), "a complaint must stop email to that address"
    assert "complaint_received" in events_of(ctx, 2)


def test_an_arf_complaint_report_suppresses_the_address_and_confirms_delivery(ctx) -> None:  # type: ignore[no-untyped-def]
    from pipeline.delivery.verp import return_path

    add_sent(ctx, 1)
    original = (f"Return-Path: <{return_path(sid(1), SECRET, 'bounces.eob.example')}>\r\n"
                f"From: statements@eob.example\r\nTo: {address(1)}\r\n"
                f"Message-ID: <{sid(1)}@eob.example>\r\nSubject: Your statement\r\n\r\n")
    arf = ("From: feedback@isp.example\r\nTo: fbl@eob.example\r\nSubject: complaint\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; "
           'boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n'
           "--b1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
           f"User-Agent: isp-fbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {address(1)}\r\n\r\n"
           f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}--b1--\r\n").encode()
    deliver(ctx, arf)
    assert reconcile_stage(ctx)["complaint"] == 1
    assert status_of(ctx, 1) == "delivered"
    assert is_suppressed(ctx.ledger, address(1), SECRET)


def test_an_smtp_time_rejection_and_a_dsn_route_the_same_way(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    add_sent(ctx, 2, status=Status.QUEUED)
    deliver(ctx, dsn(1, diagnostic="550 5.1.1 <member1@example.org>: Recipient address rejected"))
    reconcile_stage(ctx)
    at_send = classify(550, "5.1.1", "<member2@example.org>: Recipient address rejected")
    moves = route(sid(2), at_send, attempts=1, policy=RetryPolicy(), now=ctx.now(), source="smtp",
                  reason="550 5.1.1")
    ctx.ledger.apply(moves)
    assert status_of(ctx, 1) == status_of(ctx, 2) == "verification_pending"


def test_counts_reconcile_every_bounced_statement_is_in_one_queue_or_resolved(ctx) -> None:  # type: ignore[no-untyped-def]
    for n in range(1, 5):
        add_sent(ctx, n)
    deliver(ctx, dsn(1), dsn(2, status="5.2.2", diagnostic="552 5.2.2 mailbox full"),
            dsn(3, status="5.7.1", diagnostic="554 5.7.1 message content rejected"))
    reconcile_stage(ctx)
    counts = queue_counts(ctx, "eob-2026-11")
    assert counts["bounced_statements"] == 3
    assert (counts["verification"], counts["retry"], counts["paper"]) == (1, 1, 1)
    assert counts["reconciles"] and counts["stranded"] == 0


# ------------------------------------------------------------------------------ PHI


CANARY = ["Zebedee", "Canaryphi", "1957-04-03", "77 Canarywharf Lane", "Knee MRI denied"]


def _bounce_returning_the_whole_message(statement_id: str, to: str) -> bytes:
    """A non-standard bounce that quotes the diagnostic, our subject, and the whole original."""
    original = MIMEMultipart()
    original["From"] = "statements@eob.example"
    original["To"] = to
    original["Subject"] = "Zebedee Canaryphi: Knee MRI denied"
    original["Message-ID"] = f"<{statement_id}@eob.example>"
    original.attach(MIMEText("Dear Zebedee Canaryphi, born 1957-04-03, of 77 Canarywharf Lane: "
                             "Knee MRI denied.\n"))
    pdf = MIMEBase("application", "pdf")
    pdf.set_payload(b"%PDF-1.7 Zebedee Canaryphi 1957-04-03")
    original.attach(pdf)
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    report["To"] = f"bounces+{_token(statement_id)}@bounces.eob.example"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText(f"<{to}>: host mx.example.org said: 550 5.1.1 <{to}> user unknown "
                           "(in reply to RCPT TO command)\nSubject: Zebedee Canaryphi: Knee MRI denied\n"))
    status = MIMEBase("message", "delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.org"
    per_recipient["Final-Recipient"] = f"rfc822; {to}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = f"smtp; 550 5.1.1 <{to}> user unknown"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    report.attach(MIMEMessage(original))
    return report.as_bytes()


def _token(statement_id: str) -> str:
    from pipeline.delivery.verp import make_token

    return make_token(statement_id, SECRET)


def test_nothing_from_a_returned_message_reaches_the_ledger_or_the_logs(
        ctx, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    deliver(ctx, _bounce_returning_the_whole_message(sid(1), address(1)))
    with caplog.at_level(logging.DEBUG):
        result = reconcile_stage(ctx)
    assert result["routed_verify"] == 1, "the canary bounce must be processed for the check to mean anything"
    conn = sqlite3.connect(ctx.settings.ledger_dsn.removeprefix("sqlite:///"))
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    ledger_text = "\n".join(str(row) for t in tables for row in conn.execute(f"SELECT * FROM {t}"))
    logs = caplog.text
    for canary in [*CANARY, address(1)]:
        assert canary not in ledger_text, f"{canary!r} from a bounce body reached the ledger"
        assert canary not in logs, f"{canary!r} from a bounce body reached the logs"
    assert "user unknown" in ledger_text, "the status fields are kept"


# ------------------------------------------------------------------------------ retries


def test_backoff_is_exponential_with_bounded_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_seconds=600, max_delay_seconds=3600, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay_seconds(attempt, rng) for attempt in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(3600, 600 * 2 ** (attempt - 1))
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert max(delays) <= 3600 * 1.2


def test_retries_run_out_into_paper_by_attempts_or_by_the_cutoff() -> None:
    now = FakeNow().at
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=900)
    assert retry_or_paper("s", attempts=3, policy=policy, now=now, reason="x")[0].to is Status.PAPER_QUEUED
    scheduled = retry_or_paper("s", attempts=1, policy=policy, now=now, reason="x")
    assert scheduled[0].to is Status.RETRY_SCHEDULED
    late = retry_or_paper("s", attempts=1, policy=policy, now=now, reason="x",
                          cutoff=now + timedelta(minutes=5))
    assert late[0].to is Status.PAPER_QUEUED and late[0].detail["reason"] == "retry_past_cutoff"


def test_a_recipient_caused_failure_is_never_retried_whatever_the_attempt_count() -> None:
    now = FakeNow().at
    for category in (Category.USER_UNKNOWN, Category.DOMAIN_UNKNOWN, Category.MAILBOX_DISABLED):
        for attempts in (0, 1, 5):
            moves = route("s", for_category(category), attempts=attempts, policy=RetryPolicy(),
                          now=now, source="dsn", reason="")
            assert [m.to for m in moves] == [Status.BOUNCED, Status.VERIFICATION_PENDING]


def test_due_retries_are_requeued_on_a_fake_clock_and_capped_per_pool(tmp_path: Path) -> None:
    now = FakeNow()
    ctx = make_context(tmp_path, now, retry_requeue_per_pool=2, retry_base_delay_seconds=600)
    for n in range(1, 6):
        add_sent(ctx, n)
    deliver(ctx, *[dsn(n, status="4.2.2", diagnostic="452 4.2.2 mailbox full") for n in range(1, 6)])
    reconcile_stage(ctx)
    assert requeue_due_stage(ctx)["requeued"] == 0, "nothing is due before the backoff has passed"
    now.advance(minutes=13)  # base 10 min ±20 %: all due
    result = requeue_due_stage(ctx)
    assert result["requeued_pool_a"] == 2 and result["waiting"] == 3  # fresh sends keep room
    assert sum(status_of(ctx, n) == "queued" for n in range(1, 6)) == 2
    requeue_due_stage(ctx)
    requeue_due_stage(ctx)
    assert all(status_of(ctx, n) == "queued" for n in range(1, 6))


def test_sender_caused_bounces_hold_the_pool_and_move_retries_to_another(tmp_path: Path) -> None:
    now = FakeNow()
    ctx = make_context(tmp_path, now, pool_hold_threshold=3, retry_base_delay_seconds=60)
    for n in range(1, 5):
        add_sent(ctx, n, pool="pool_a")
    deliver(ctx, *[dsn(n, status="5.7.1", diagnostic="554 5.7.1 blocked using zen.spamhaus.org")
                   for n in range(1, 5)])
    reconcile_stage(ctx)
    assert not any(is_suppressed(ctx.ledger, address(n), SECRET) for n in range(1, 5))
    now.advance(minutes=5)
    result = requeue_due_stage(ctx)
    assert result["held_pools"] == ["pool_a"]
    assert result["requeued_pool_b"] == 4
    assert {ctx.ledger.statement(sid(n))["pool"] for n in range(1, 5)} == {"pool_b"}




def test_delivery_window_orders_cutoff_before_deadline() -> None:
    window = DeliveryWindow(timedelta(days=21), timedelta(days=5), timedelta(days=7))
    start = FakeNow().at
    assert window.cutoff(start) == start + timedelta(days=16) < window.deadline(start)
    with pytest.raises(ValueError):
        DeliveryWindow(timedelta(days=1), timedelta(days=2), timedelta(days=1))


# ------------------------------------------------------------------------------ both ledgers


def test_the_whole_bounce_life_cycle_on_sqlite_and_postgresql(tmp_path: Path, ledger_url: str) -> None:
    """Routing, suppression upsert/lift, requeue, sweeper: the same SQL on both databases."""
    from pipeline.delivery.suppression import lift, suppress
    from pipeline.reconcile.sweeper import unsettled
    from pipeline.stages import sweep_stage

    now = FakeNow()
    ctx = make_context(tmp_path, now, ledger_url=ledger_url, retry_base_delay_seconds=600)
    for n in (1, 2, 3):
        add_sent(ctx, n)
    deliver(ctx, dsn(1), dsn(2, status="4.2.2", diagnostic="452 4.2.2 mailbox full"))
    assert reconcile_stage(ctx) == {"messages": 2, "routed_verify": 1, "routed_retry": 1}
    lift(ctx.ledger, reason="member fixed it", actor="bob", address=address(1), secret=SECRET)
    suppress(ctx.ledger, address(1), cause="mailbox_disabled", statement_id=sid(1), secret=SECRET)
    assert is_suppressed(ctx.ledger, address(1), SECRET)
    now.advance(minutes=15)
    assert requeue_due_stage(ctx)["requeued"] == 1
    now.advance(days=21)
    sweep_stage(ctx)
    assert unsettled(ctx.ledger, "eob-2026-11") == {}
    assert [status_of(ctx, n) for n in (1, 2, 3)] == ["paper_queued", "paper_queued", "delivered"]
    assert queue_counts(ctx, "eob-2026-11")["reconciles"]
    ctx.ledger.close()


def test_no_input_ever_crashes_reconcile(tmp_path: Path) -> None:
    """Whatever lands in the bounce mailbox, the task records an outcome and carries on."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ctx = make_context(tmp_path)
    add_sent(ctx, 1)
    base = dsn(1)
    known = {"unparseable", "uncorrelated", "forged", "unknown_statement", "duplicate",
             "duplicate_unparseable",
             "routed_verify", "routed_retry", "routed_paper", "already_routed", "noted_delayed",
             "mismatched_recipient", "delivered", "complaint", "already_settled", "ignored_empty"}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=2000), st.integers(min_value=0, max_value=len(base)))
    def check(noise: bytes, cut: int) -> None:
        for data in (noise, base[:cut] + noise):
            outcome = process_document(ctx, data, "rfc822", "maildir").outcome
            assert outcome in known or outcome.startswith("ignored_"), outcome
            outcome = process_document(ctx, data, SES_JSON, "ses+sqs").outcome
            assert outcome in known or outcome.startswith("ignored_"), outcome

    check()
    ctx.ledger.close()


_RENAMED_POOLS = """
[[pool]]
name = "east"
source_ips = ["127.0.0.2"]
relays = [{ host = "127.0.0.12", port = 2525 }]

[[pool]]
name = "west"
source_ips = ["127.0.0.3"]
relays = [{ host = "127.0.0.13", port = 2525 }]
"""


def test_retries_are_requeued_to_the_pools_of_the_pool_file(tmp_path: Path) -> None:
    """With a pool file whose names differ from the defaults, a due retry lands in a pool that a
    send task drains (one named in the file), never in a default pool nobody sends from."""
    from pipeline.stages import pool_names

    (tmp_path / "pools.toml").write_text(_RENAMED_POOLS)
    now = FakeNow()
    ctx = make_context(tmp_path, now, pools_file=tmp_path / "pools.toml", retry_base_delay_seconds=60)
    assert pool_names(ctx) == ["east", "west"]
    for n in range(1, 5):
        add_sent(ctx, n, pool="east")
    deliver(ctx, *[dsn(n, status="4.2.2", diagnostic="452 4.2.2 mailbox full") for n in range(1, 5)])
    reconcile_stage(ctx)
    now.advance(minutes=5)
    assert requeue_due_stage(ctx)["requeued"] == 4
    assert {ctx.ledger.statement(sid(n))["pool"] for n in range(1, 5)} <= set(pool_names(ctx))
