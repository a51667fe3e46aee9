"""The send and reconcile stages against real Postfix relays, one per IP pool.

Where the behaviour is Postfix's own (its SIZE refusal, its STARTTLS, the address it binds for
outbound mail, the DSNs it writes) the relay here is Debian's Postfix on loopback, with TLS on
both hops: pipeline → relay (verified against the pool's CA bundle) and relay → the receiving
server (verified by Postfix). The receiving side is the loopback sink; DSNs for the bounce domain
land in a Maildir that the pipeline's maildir feed reads, as they would through the bounce MX.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.delivery import controls as controls_db
from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from pipeline.reconcile.feeds import open_feed
from pipeline.stages import PoolUnavailable, requeue_due_stage
from pipeline.stages.context import Context
from pipeline.stages.reconcile import reconcile_stage
from pipeline.stages.send import send_stage
from tests.support.postfix import PostfixRelay, bounce_mailbox, free_port, requires_postfix, wait_for
from tests.support.send import (
    WallClock,
    events,
    join_pools,
    make_context,
    pool_file,
    queue_statements,
    statuses,
)

pytestmark = [requires_postfix]

BOUNCE_DOMAIN = "bounces.eob.test"
SINK_HOST, SINK_NAME = "127.0.0.60", "mx.sink.test"
RELAY_A, RELAY_B = "127.0.0.61", "127.0.0.62"        # where the pipeline hands mail over
POOL_A_IP, POOL_B_IP = "127.0.0.71", "127.0.0.72"    # each pool's dedicated outbound address


def receiving_side(rcpt: str) -> Decision:
    """The far end: unknown users refused, full mailboxes deferred, everyone else accepted."""
    local = rcpt.split("@")[0]
    if local.startswith("unknown"):
        return Decision("reject", 550, "5.1.1", "<" + rcpt + ">: Recipient address rejected: "
                                                  "User unknown in virtual mailbox table")
    if local.startswith("full"):
        return Decision("reject", 452, "4.2.2", "Mailbox full")
    return Decision("accept")


@dataclass
class Mail:
    """Two Postfix relays (pool_a, pool_b), the receiving sink, and the bounce mailbox."""

    sink: SmtpSink
    relays: dict[str, PostfixRelay]
    bounces: Path
    relay_ca: Path

    def pools_toml(self) -> str:
        """Both pools, neither binding a source address: the relays bind the pool's address."""
        a, b = self.relays["pool_a"], self.relays["pool_b"]
        return join_pools(pool_file(a.host, a.port, source=None, name="pool_a"),
                          pool_file(b.host, b.port, source=None, name="pool_b"))

    def context(self, tmp_path: Path, clock: WallClock) -> Context:
        return make_context(tmp_path / "ws", self.pools_toml(), self.relay_ca, clock,
                            bounce_domain=BOUNCE_DOMAIN, message_id_domain="eob.test")

    def reconcile(self, ctx: Context) -> dict[str, object]:
        return reconcile_stage(ctx, [open_feed(f"maildir://{self.bounces}", ctx.settings)])

    def dsn_count(self) -> int:
        return len(list((self.bounces / "new").iterdir()))

    def delivered(self) -> dict[str, tuple[str, bool]]:
        """Recipient → (the address the far end saw the connection from, TLS) for each message."""
        return {rcpt: (r.peer_ip, r.tls) for r in self.sink.received for rcpt in r.rcpt_to}

    def all_logs(self) -> tuple[PostfixRelay, ...]:
        return tuple(self.relays.values())


@pytest.fixture(scope="module")
def sink_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("sink-tls"), [SINK_NAME, SINK_HOST])


@pytest.fixture(scope="module")
def relay_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("relay-tls"), [RELAY_A, RELAY_B])


@contextmanager
def mail_world(sink_tls: TlsMaterial, relay_tls: TlsMaterial, *,
               a: dict[str, object] | None = None,
               b: dict[str, object] | None = None) -> Iterator[Mail]:
    """Start the sink and both relays; ``a``/``b`` override a relay's ``tls`` or main.cf lines."""
    bounces = bounce_mailbox()
    with ExitStack() as stack:
        sink = stack.enter_context(SmtpSink(SINK_HOST, 0, tls=sink_tls, behaviour=receiving_side,
                                            hostname=SINK_NAME))
        relays = {}
        for name, host, bind, own in (("pool_a", RELAY_A, POOL_A_IP, a or {}),
                                      ("pool_b", RELAY_B, POOL_B_IP, b or {})):
            relay = PostfixRelay(
                name.replace("_", "-"), host, free_port(host), (SINK_HOST, sink.port),
                sink_tls.ca_file, SINK_NAME, BOUNCE_DOMAIN, bounces,
                tls=own.get("tls", relay_tls),  # type: ignore[arg-type]
                bind_address=bind, settings=dict(own.get("settings", {})))  # type: ignore[call-overload]
            relays[name] = stack.enter_context(relay)
        yield Mail(sink, relays, bounces, relay_tls.ca_file)


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


def test_the_month_goes_out_through_each_pools_relay_from_its_own_address(
        tmp_path: Path, sink_tls: TlsMaterial, relay_tls: TlsMaterial, clock: WallClock) -> None:
    """No source address in the pool file: Postfix binds each pool's dedicated address, and every
    statement arrives exactly once, over TLS, from the address of the pool that sent it."""
    with mail_world(sink_tls, relay_tls) as mail:
        ctx = mail.context(tmp_path, clock)
        to_a = queue_statements(ctx, "pool_a", [f"member{n}@gmail.com" for n in range(6)])
        to_b = queue_statements(ctx, "pool_b", [f"member{n}@yahoo.com" for n in range(6, 12)],
                                first=6)
        assert send_stage(ctx, "pool_a")["accepted"] == 6
        assert send_stage(ctx, "pool_b")["accepted"] == 6
        wait_for(lambda: len(mail.sink.received) == 12, "12 messages at the far end",
                 relays=mail.all_logs())
        delivered = mail.delivered()
    assert sorted(delivered) == sorted(q.recipient for q in to_a + to_b)
    assert len(mail.sink.received) == 12, "each statement arrived once"
    assert {delivered[q.recipient] for q in to_a} == {(POOL_A_IP, True)}
    assert {delivered[q.recipient] for q in to_b} == {(POOL_B_IP, True)}
    assert set(statuses(ctx).values()) == {"sent"}


def test_postfix_refusing_one_message_for_its_size_stops_nobody_else(
        tmp_path: Path, sink_tls: TlsMaterial, relay_tls: TlsMaterial, clock: WallClock) -> None:
    """Postfix's own ``552 5.3.4 Message size exceeds fixed limit`` at MAIL FROM concerns that
    message: it goes to paper, the rest of the pool's statements are delivered, and no provider
    or pool is paused or suspended, in this run or the next."""
    import os

    with mail_world(sink_tls, relay_tls, a={"settings": {"message_size_limit": "150000"}}) as mail:
        ctx = mail.context(tmp_path, clock)
        queued = queue_statements(ctx, "pool_a", [f"member{n}@yahoo.com" for n in range(6)])
        big = queued[2]
        ctx.store.put(f"eob-2026-11/statements/{big.statement_id}.pdf",
                      b"%PDF-2.0\n" + os.urandom(200_000) + b"\n%%EOF\n", "application/pdf")
        first = send_stage(ctx, "pool_a")
        again = send_stage(ctx, "pool_a")
        wait_for(lambda: len(mail.sink.received) == 5, "5 messages at the far end",
                 relays=mail.all_logs())
        log = mail.relays["pool_a"].log()
    assert "Message size exceeds fixed limit" in log, "the refusal was Postfix's own"
    final = statuses(ctx)
    assert final[big.statement_id] == "paper_queued"
    assert ctx.ledger.statement(big.statement_id)["paper_reason"] == "content_rejected"  # type: ignore[index]
    assert [final[q.statement_id] for q in queued if q is not big] == ["sent"] * 5
    assert not first["suspended"] and again["attempted"] == 0
    assert controls_db.active_pauses(ctx.ledger, "pool_a", clock()) == []
    assert big.recipient not in mail.delivered()


@pytest.mark.parametrize("fault", ["untrusted certificate", "no STARTTLS"])
def test_a_relay_failing_tls_moves_its_statements_to_the_healthy_pool(
        tmp_path: Path, sink_tls: TlsMaterial, relay_tls: TlsMaterial, clock: WallClock,
        fault: str) -> None:
    """Pool B's Postfix presents a certificate from a CA the pipeline does not trust, or offers no
    STARTTLS at all. Its task fails loudly, its statements move to pool A without spending an
    attempt, Postfix B is handed nothing, and the whole month arrives from pool A's address."""
    broken_tls = (make_tls_material(tmp_path / "other-ca", [RELAY_B])
                  if fault == "untrusted certificate" else None)
    with mail_world(sink_tls, relay_tls, b={"tls": broken_tls}) as mail:
        ctx = mail.context(tmp_path, clock)
        on_a = queue_statements(ctx, "pool_a", [f"member{n}@gmail.com" for n in range(4)])
        on_b = queue_statements(ctx, "pool_b", [f"member{n}@outlook.com" for n in range(4, 10)],
                                first=4)
        with pytest.raises(PoolUnavailable, match="pool pool_b could not deliver"):
            send_stage(ctx, "pool_b")
        moved = [ctx.ledger.statement(q.statement_id) for q in on_b]
        assert {(r["pool"], r["status"], r["attempts"]) for r in moved} == {  # type: ignore[index]
            ("pool_a", "retry_scheduled", 0)}
        assert requeue_due_stage(ctx)["requeued"] == 6
        assert send_stage(ctx, "pool_a")["accepted"] == 10
        wait_for(lambda: len(mail.sink.received) == 10, "the whole month at the far end",
                 relays=mail.all_logs())
        b_log = mail.relays["pool_b"].log()
    assert {mail.delivered()[q.recipient] for q in on_a + on_b} == {(POOL_A_IP, True)}
    assert "queued as" not in b_log and " from=<" not in b_log, "pool B's relay took no message"
    assert set(statuses(ctx).values()) == {"sent"}
    assert "pool_unavailable" in events(ctx, on_b[0].statement_id)


def test_a_postfix_relay_that_will_not_relay_for_us_fails_its_pool_and_verifies_nobody(
        tmp_path: Path, sink_tls: TlsMaterial, relay_tls: TlsMaterial, clock: WallClock) -> None:
    """Pool B's Postfix does not count the pipeline's host among its networks, so it answers each
    recipient with its own "554 5.7.1 <address>: Relay access denied". That is the pool's
    configuration, not the members' addresses: its task fails saying what to check, no statement
    is sent to verification, suppressed or charged an attempt, and pool A delivers the month."""
    with mail_world(sink_tls, relay_tls, b={"settings": {"mynetworks": "192.0.2.0/24"}}) as mail:
        ctx = mail.context(tmp_path, clock)
        on_b = queue_statements(ctx, "pool_b", [f"member{n}@outlook.com" for n in range(5)])
        with pytest.raises(PoolUnavailable, match="pool pool_b could not deliver: relay refused "
                                                  "to relay for this pool"):
            send_stage(ctx, "pool_b")
        b_log = mail.relays["pool_b"].log()
        moved = [ctx.ledger.statement(q.statement_id) for q in on_b]
        assert {(r["pool"], r["status"], r["attempts"]) for r in moved} == {  # type: ignore[index]
            ("pool_a", "retry_scheduled", 0)}
        assert ctx.ledger.fetch("compose_active_suppressions") == []
        assert requeue_due_stage(ctx)["requeued"] == 5
        assert send_stage(ctx, "pool_a")["accepted"] == 5
        wait_for(lambda: len(mail.sink.received) == 5, "the month at the far end",
                 relays=mail.all_logs())
    assert "Relay access denied" in b_log, "the refusal was Postfix's own"
    assert {mail.delivered()[q.recipient] for q in on_b} == {(POOL_A_IP, True)}
    assert set(statuses(ctx).values()) == {"sent"}


def test_postfix_dsns_route_by_their_verp_token_and_an_untokened_one_changes_nothing(
        tmp_path: Path, sink_tls: TlsMaterial, relay_tls: TlsMaterial, clock: WallClock) -> None:
    """Postfix writes a real DSN for a refused recipient: the unknown user goes to verification,
    the full mailbox (returned at once here: ``maximal_queue_lifetime = 0``) to retry. A real DSN
    that carries a delivered statement's Message-ID but came back to the bare bounce address (no
    token) is recorded and ignored: the delivered statement stays sent."""
    import smtplib
    import ssl

    lifetime = {"settings": {"maximal_queue_lifetime": "0", "bounce_queue_lifetime": "0"}}
    with mail_world(sink_tls, relay_tls, a=lifetime) as mail:
        ctx = mail.context(tmp_path, clock)
        queued = queue_statements(ctx, "pool_a", ["unknown1@example.net", "full1@example.net",
                                                  "member1@example.net"])
        unknown, full, fine = queued
        assert send_stage(ctx, "pool_a")["accepted"] == 3
        wait_for(lambda: mail.dsn_count() == 2 and len(mail.sink.received) == 1,
                 "two DSNs and one delivery", relays=mail.all_logs())
        delivered = email.message_from_bytes(mail.sink.received[0].data, policy=email.policy.default)
        # Someone else's mail, sent from the bare bounce address, carrying our Message-ID:
        forged = (f"From: statements@eob.test\r\nTo: unknown2@example.net\r\n"
                  f"Message-ID: {delivered['Message-ID']}\r\nSubject: Your statement\r\n\r\nx\r\n")
        relay = mail.relays["pool_a"]
        with smtplib.SMTP(relay.host, relay.port) as client:
            client.starttls(context=ssl.create_default_context(cafile=str(relay_tls.ca_file)))
            client.sendmail(f"bounces@{BOUNCE_DOMAIN}", ["unknown2@example.net"], forged.encode())
        wait_for(lambda: mail.dsn_count() == 3, "the third DSN", relays=mail.all_logs())
        result = mail.reconcile(ctx)
    assert result["messages"] == 3 and result.get("ignored_unsigned") == 1
    final = statuses(ctx)
    assert final[fine.statement_id] == "sent"
    assert final[unknown.statement_id] == "verification_pending"
    assert final[full.statement_id] == "retry_scheduled"
