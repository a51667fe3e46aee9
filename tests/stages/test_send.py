"""The send stage on a real SQLite ledger against real SMTP servers on loopback.

Covers what operations would notice: outcomes on the timeline, in-doubt statements after a
crash, pauses and suspensions that really stop attempts (and persist across runs until they
expire), warm-up caps counted in sending days, the dry run, resends with a reason, and no
address in any log line at INFO or above.
"""

from __future__ import annotations

import email
import email.policy
import logging
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import send as cli_send
from pipeline.delivery import controls as controls_db
from pipeline.delivery.pools import send_config
from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from pipeline.ledger.statuses import Status
from pipeline.stages.context import Context, run_dir
from pipeline.stages.send import send_stage
from pipeline.templates import TEMPLATES_DIR
from tests.support.send import (
    RUN_ID,
    WallClock,
    events,
    join_pools,
    make_context,
    pool_file,
    queue_statements,
    statuses,
)

RELAY = "127.0.0.53"
POOL = "pool_t"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


def world(tmp_path: Path, sink: SmtpSink, tls: TlsMaterial, clock: WallClock, *,
          extra: str = "", providers: str = "") -> Context:
    return make_context(tmp_path / "ws", pool_file(sink.host, sink.port, extra=extra,
                                                   providers=providers),
                        tls.ca_file, clock)


def by_domain(sink: SmtpSink) -> Counter[str]:
    return Counter(a.recipient.rpartition("@")[2] for a in sink.attempts)


def replies(table: dict[str, Decision], *, once: bool = False) -> Callable[[str], Decision]:
    """Answers by local part; ``once``: only the first RCPT of that recipient is refused."""
    seen: Counter[str] = Counter()

    def behaviour(rcpt: str) -> Decision:
        local = rcpt.split("@")[0]
        seen[local] += 1
        if local in table and (not once or seen[local] == 1):
            return table[local]
        return Decision("accept")

    return behaviour


# -- outcomes ---------------------------------------------------------------------------------------


def test_every_outcome_is_committed_with_its_attempt_on_the_timeline(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    behaviour = replies({"nobody": Decision("reject", 550, "5.1.1", "user unknown"),
                         "busy": Decision("reject", 451, "4.3.0", "try again later")})
    with SmtpSink(RELAY, 0, tls=tls, behaviour=behaviour) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        queued = queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(8)]
                                  + ["nobody@gmail.com", "busy@yahoo.com"])
        result = send_stage(ctx, POOL)
    assert (result["accepted"], result["rejected"], result["deferred"]) == (8, 1, 1)
    assert result["left_queued"] == 0 and len(sink.received) == 8
    final = statuses(ctx)
    assert Counter(final.values()) == {"sent": 8, "verification_pending": 1,
                                       "retry_scheduled": 1}
    for q in queued:
        timeline = events(ctx, q.statement_id)
        assert timeline[timeline.index("send_attempt") + 1] in (
            "sent", "bounced", "retry_scheduled")
    assert controls_db.warmup_status(ctx.ledger, send_config(ctx.settings).pool(POOL),
                                     clock()).sent_today == 10
    again = send_stage(ctx, POOL)  # a re-run finds nothing queued: no message goes twice
    assert again["queued"] == 0 and len(sink.received) == 8


def test_an_in_doubt_statement_is_marked_and_sent_again_once(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        doubt, plain = queue_statements(ctx, POOL, ["a@example.org", "b@example.org"])
        # what a crash between the attempt and its outcome leaves behind
        ctx.ledger.record_event(doubt.statement_id, "send_attempt", {"pool": POOL})
        result = send_stage(ctx, POOL)
    assert result["in_doubt"] == 1 and result["accepted"] == 2
    assert events(ctx, doubt.statement_id)[-4:] == ["send_attempt", "send_in_doubt",
                                                    "send_attempt", "sent"]
    assert "send_in_doubt" not in events(ctx, plain.statement_id)


def test_a_statement_withdrawn_while_its_email_is_in_flight_is_flagged_for_follow_up_once(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """A corrected extract withdraws it during the SMTP exchange: the send is in doubt, so it is
    closed (never sent again) and flagged for follow-up; the relay's 250 then flags nothing twice."""
    from dataclasses import replace

    from pipeline.ledger import Ledger
    from pipeline.stages import withdrawals

    target: dict[str, str] = {}

    def withdraw_on_rcpt(rcpt: str) -> Decision:
        if rcpt.startswith("late@") and "done" not in target:  # compose withdraws it now
            target["done"] = "yes"
            other = Ledger.open(ctx.settings.ledger_dsn)
            row = other.statement(target["id"])
            assert withdrawals.withdraw(replace(ctx, ledger=other), [dict(row or {})], set()) == (1, 1)
            other.close()
        return Decision("accept")

    with SmtpSink(RELAY, 0, tls=tls, behaviour=withdraw_on_rcpt) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        late, on_time = queue_statements(ctx, POOL, ["late@example.org", "b@example.org"])
        target["id"] = late.statement_id
        send_stage(ctx, POOL)
    assert len(sink.received) == 2
    assert statuses(ctx)[late.statement_id] == "superseded"
    assert events(ctx, late.statement_id)[-3:] == ["send_attempt", "withdrawn_in_doubt", "sent_ignored"]
    assert withdrawals.is_flagged_after_release(ctx.ledger, late.statement_id)
    assert statuses(ctx)[on_time.statement_id] == "sent"


def test_a_250_for_a_statement_superseded_in_flight_puts_it_on_the_follow_up_list(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """Closed by anything else while the relay was taking it: the mail is out, so it is flagged."""
    from pipeline.ledger import Ledger, Transition
    from pipeline.ledger.statuses import Status

    target: dict[str, str] = {}

    def supersede_on_rcpt(rcpt: str) -> Decision:
        if rcpt.startswith("late@") and "done" not in target:
            target["done"] = "yes"
            other = Ledger.open(ctx.settings.ledger_dsn)
            other.apply([Transition(target["id"], Status.SUPERSEDED, "superseded", {"by": "v2"})])
            other.close()
        return Decision("accept")

    with SmtpSink(RELAY, 0, tls=tls, behaviour=supersede_on_rcpt) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        (late,) = queue_statements(ctx, POOL, ["late@example.org"])
        target["id"] = late.statement_id
        send_stage(ctx, POOL)
    assert events(ctx, late.statement_id)[-3:] == ["superseded", "sent_ignored", "withdrawn_after_release"]


def test_an_oversized_statement_goes_to_paper_and_stops_nobody_else(
        tmp_path: Path, tls: TlsMaterial, clock: WallClock) -> None:
    """A relay refuses one message for its size at MAIL FROM (Postfix's 552 5.3.4): that
    statement goes to paper, everyone else is sent, and no provider is paused or suspended."""
    import os

    with SmtpSink(RELAY, 0, tls=tls, max_message_size=150_000) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        queued = queue_statements(ctx, POOL, [f"member{n}@yahoo.com" for n in range(6)])
        big = queued[2]
        ctx.store.put(f"eob-2026-11/statements/{big.statement_id}.pdf",
                      b"%PDF-2.0\n" + os.urandom(200_000) + b"\n%%EOF\n", "application/pdf")
        result = send_stage(ctx, POOL)
        again = send_stage(ctx, POOL)
    final = statuses(ctx)
    assert final[big.statement_id] == "paper_queued"
    assert ctx.ledger.statement(big.statement_id)["paper_reason"] == "content_rejected"  # type: ignore[index]
    assert [final[q.statement_id] for q in queued if q is not big] == ["sent"] * 5
    assert not result["suspended"] and again["attempted"] == 0
    assert controls_db.active_pauses(ctx.ledger, POOL, clock()) == []
    assert len(sink.received) == 5


def test_a_pool_whose_relay_fails_tls_moves_its_statements_and_fails_loudly(
        tmp_path: Path, tls: TlsMaterial, clock: WallClock) -> None:
    """The relay of one pool presents a certificate our CA bundle does not trust. Its statements
    must not spend their attempts there: they move to the healthy pool without losing one, the
    broken pool's task fails with what to fix, the report shows a failed check, and the month is
    still delivered, by the other pool."""
    from pipeline.report import build_report
    from pipeline.stages import requeue_due_stage
    from pipeline.stages.send import PoolUnavailable

    untrusted = make_tls_material(tmp_path / "other-ca", ["127.0.0.56"])
    with SmtpSink("127.0.0.56", 0, tls=untrusted) as broken, SmtpSink(RELAY, 0, tls=tls) as healthy:
        two_pools = join_pools(pool_file(broken.host, broken.port, source="127.0.0.43", name="pool_t"),
                               pool_file(healthy.host, healthy.port, source="127.0.0.44", name="pool_u"))
        ctx = make_context(tmp_path / "ws", two_pools, tls.ca_file, clock)
        queued = queue_statements(ctx, "pool_t", [f"member{n}@example.org" for n in range(5)])
        with pytest.raises(PoolUnavailable, match="pool pool_t could not deliver.*certificate"):
            send_stage(ctx, "pool_t")
        rows = {q.statement_id: ctx.ledger.statement(q.statement_id) for q in queued}
        assert {r["status"] for r in rows.values()} == {"retry_scheduled"}  # type: ignore[index]
        assert {r["pool"] for r in rows.values()} == {"pool_u"}  # type: ignore[index]
        assert {r["attempts"] for r in rows.values()} == {0}, "the pool's fault spent no attempt"
        assert requeue_due_stage(ctx)["requeued"] == 5
        assert send_stage(ctx, "pool_u")["accepted"] == 5
    assert not broken.received and len(healthy.received) == 5
    assert set(statuses(ctx).values()) == {"sent"}
    assert "pool_unavailable" in events(ctx, queued[0].statement_id)
    checks = {c.name: c for c in build_report(ctx.ledger, "eob-2026-11").checks}
    check = checks["every IP pool could deliver (TLS, connection, relay login, relaying)"]
    assert not check.ok and check.detail.startswith("5 statements")


def test_a_relay_that_will_not_relay_for_us_fails_its_pool_and_suppresses_nobody(
        tmp_path: Path, tls: TlsMaterial, clock: WallClock) -> None:
    """The pool's own relay answers every recipient "554 5.7.1 <addr>: Relay access denied" (its
    permitted networks do not include us). In a bounce these words are about the recipient's
    domain and go to verification; from our relay they are the pool's fault: no statement is
    rejected, suppressed or charged an attempt, they move to the healthy pool, and the task
    fails saying what to check, without any member's address."""
    from pipeline.stages.send import PoolUnavailable

    def no_relay(rcpt: str) -> Decision:
        return Decision("reject", 554, "5.7.1", f"<{rcpt}>: Relay access denied")

    with SmtpSink(RELAY, 0, tls=tls, behaviour=no_relay) as closed, \
            SmtpSink(RELAY, 0, tls=tls) as healthy:
        two_pools = join_pools(pool_file(closed.host, closed.port, source="127.0.0.45", name="pool_r"),
                               pool_file(healthy.host, healthy.port, source="127.0.0.46", name="pool_s"))
        ctx = make_context(tmp_path / "ws", two_pools, tls.ca_file, clock)
        addresses = [f"member{n}@example.org" for n in range(4)]
        queued = queue_statements(ctx, "pool_r", addresses)
        with pytest.raises(PoolUnavailable, match="pool pool_r could not deliver.*relay refused to "
                                                  "relay") as failure:
            send_stage(ctx, "pool_r")
        assert not any(a in str(failure.value) for a in addresses)
        rows = [ctx.ledger.statement(q.statement_id) for q in queued]
        assert {r["status"] for r in rows} == {"retry_scheduled"}  # type: ignore[index]
        assert {r["pool"] for r in rows} == {"pool_s"} and {r["attempts"] for r in rows} == {0}  # type: ignore[index]
        assert ctx.ledger.fetch("compose_active_suppressions") == []
    assert not closed.received


# -- pauses and suspensions ---------------------------------------------------------------------------


def test_an_operator_pause_holds_a_provider_until_resumed(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        config = send_config(ctx.settings)
        queue_statements(ctx, POOL, [f"g{i}@gmail.com" for i in range(4)]
                         + [f"o{i}@example.org" for i in range(4)])
        controls_db.pause(ctx.ledger, config, pool=POOL, provider="gmail",
                          reason="complaint spike", actor="ops", now=clock())
        first = send_stage(ctx, POOL)
        assert by_domain(sink) == {"example.org": 4}  # gmail: not one attempt
        assert first["held"] == 4 and Counter(statuses(ctx).values()) == {"sent": 4, "queued": 4}
        clock.advance(hours=5)
        assert send_stage(ctx, POOL)["accepted"] == 0  # no end given: paused until resumed
        assert controls_db.resume(ctx.ledger, config, pool=POOL, provider="gmail",
                                  reason="spike over", actor="ops", now=clock()) == 1
        assert send_stage(ctx, POOL)["accepted"] == 4
    assert by_domain(sink) == {"example.org": 4, "gmail.com": 4}
    actions = [row["action"] for row in ctx.ledger.fetch("audit_chain")]
    assert "send_pause" in actions and "send_resume" in actions


def test_a_paused_pool_sends_nothing_and_builds_no_message(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(3)])
        controls_db.pause(ctx.ledger, send_config(ctx.settings), pool=POOL, reason="incident",
                          actor="ops", now=clock(), seconds=600)
        result = send_stage(ctx, POOL)
        assert result["held"] == 3 and sink.session_count == 0
        clock.advance(minutes=11)  # the pause had an end
        assert send_stage(ctx, POOL)["accepted"] == 3


def test_a_suspension_stops_attempts_across_runs_until_it_expires(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    refused = {"y1": Decision("reject", 421, "4.7.0", "[TSS04] Messages from 127.0.0.43 "
                              "temporarily deferred due to unexpected volume")}
    behaviour = {"now": replies(refused)}
    extra = "\n[throttle]\nsuspend_seconds = 3600\n" 
    with SmtpSink(RELAY, 0, tls=tls, behaviour=lambda r: behaviour["now"](r)) as sink:
        ctx = world(tmp_path, sink, tls, clock, providers=extra)
        queue_statements(ctx, POOL, [f"y{i}@yahoo.com" for i in range(6)]
                         + [f"o{i}@example.org" for i in range(3)])
        first = send_stage(ctx, POOL)
        yahoo_attempts = by_domain(sink)["yahoo.com"]
        yahoo_sent = sum(a.reply.startswith("250") for a in sink.attempts
                         if a.recipient.endswith("@yahoo.com"))
        # y1 is refused, tried again on a new connection and refused again: confirmed, suspended
        assert [a.reply[:3] for a in sink.attempts if a.recipient == "y1@yahoo.com"] == ["421", "421"]
        assert first["suspended"] and "yahoo" in first["suspended"]
        assert Counter(statuses(ctx).values())["queued"] == 6 - yahoo_sent
        [pause] = controls_db.active_pauses(ctx.ledger, POOL, clock())
        assert (pause.provider, pause.kind) == ("yahoo", "suspend") and "TSS04" in pause.reason

        behaviour["now"] = replies({})  # the provider would accept again…
        clock.advance(minutes=30)
        second = send_stage(ctx, POOL)  # …but the suspension is still in force
        assert by_domain(sink)["yahoo.com"] == yahoo_attempts, "an attempt while suspended"
        assert second["accepted"] == 0

        clock.advance(minutes=31)  # expired
        third = send_stage(ctx, POOL)
    assert third["accepted"] == 6 - yahoo_sent
    assert Counter(statuses(ctx).values()) == {"sent": 9}
    held = [s for s, st in statuses(ctx).items() if "send_held" in events(ctx, s)]
    assert held and all(st == "sent" for s, st in statuses(ctx).items() if s in held)


def test_a_pool_reconcile_put_on_hold_sends_nothing(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        queued = queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(6)])
        for q in queued[:5]:  # five "blocked" bounces from this pool within the hour
            ctx.ledger.record_event(q.statement_id, "bounced", {"category": "blocked",
                                                                "pool": POOL})
        held = send_stage(ctx, POOL)
        assert sink.session_count == 0 and "sender-caused bounces" in held["paused"]
        clock.advance(hours=3)  # the hold has lapsed
        assert send_stage(ctx, POOL)["accepted"] == 6


def test_a_rate_cut_is_remembered_by_the_next_run(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    behaviour = replies({"g2": Decision("reject", 451, "4.7.28", "rate limited, slow down")},
                        once=True)
    providers = "[pool.providers.gmail]\nmax_per_second = 40\nmax_connections = 1\n"
    with SmtpSink(RELAY, 0, tls=tls, behaviour=behaviour) as sink:
        ctx = world(tmp_path, sink, tls, clock, providers=providers)
        queue_statements(ctx, POOL, [f"g{i}@gmail.com" for i in range(5)])
        result = send_stage(ctx, POOL)
    assert result["accepted"] == 5 and result["rate_cuts"] == {"gmail": 1}
    state = controls_db.load_throttle(ctx.ledger, POOL, clock())
    assert state["gmail"].rate_after_decrease == pytest.approx(40 * 0.95 / 2)
    assert cli_send.pool_status(ctx.ledger, send_config(ctx.settings), clock())[0][
        "throttled"] == {"gmail": pytest.approx(19.0)}


# -- warm-up -----------------------------------------------------------------------------------------

WARMUP = """
[pool.warmup]
min_messages_per_day = 3
hold_days = 1
steps = [{ day = 1, daily = 6, hourly = 4 }, { day = 2, daily = 10, hourly = 10 }]
"""


def test_warm_up_caps_hold_and_idle_calendar_days_do_not_count(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock, extra=WARMUP)
        queue_statements(ctx, POOL, [f"m{i}@example.org" for i in range(30)])

        def run() -> int:
            before = len(sink.attempts)
            send_stage(ctx, POOL)
            return len(sink.attempts) - before

        assert run() == 4  # day 1, 10:00: the hourly cap
        assert run() == 0  # same hour: nothing left
        clock.advance(hours=1)
        assert run() == 2  # day 1, 11:00: the daily cap (6) binds before the hourly one
        clock.advance(days=20)  # idle weeks between monthly runs…
        plan = send_config(ctx.settings).pool(POOL)
        assert controls_db.warmup_status(ctx.ledger, plan, clock()).caps.day == 2  # …don't count
        assert run() == 10
        clock.advance(days=1)
        assert run() == 14  # sending day 3: past the plan, warm
    assert len(sink.received) == 30
    assert Counter(statuses(ctx).values()) == {"sent": 30}


def test_a_day_below_the_minimum_is_not_a_sending_day(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock, extra=WARMUP)
        queue_statements(ctx, POOL, ["a@example.org", "b@example.org"])
        send_stage(ctx, POOL)  # two retries' worth: below min_messages_per_day = 3
        clock.advance(days=1)
        plan = send_config(ctx.settings).pool(POOL)
        assert controls_db.warmup_status(ctx.ledger, plan, clock()).caps.day == 1


# -- dry run, resend, CLI ----------------------------------------------------------------------------


def test_dry_run_reports_the_plan_without_touching_smtp(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    providers = "[pool.providers.gmail]\nmax_per_second = 5\n"
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock, extra=WARMUP, providers=providers)
        queue_statements(ctx, POOL, [f"g{i}@gmail.com" for i in range(10)]
                         + [f"y{i}@yahoo.com" for i in range(2)])
        controls_db.pause(ctx.ledger, send_config(ctx.settings), pool=POOL, provider="yahoo",
                          reason="test", actor="ops", now=clock())
        plan = send_stage(ctx, POOL, dry_run=True)
    assert sink.session_count == 0 and Counter(statuses(ctx).values()) == {"queued": 12}
    assert plan["dry_run"] and plan["queued"] == 12
    assert plan["lanes"]["gmail"] == {"queued": 10, "held": None, "rate_per_second": 5.0,
                                      "seconds_at_rate": 2.0}
    assert "paused by an operator" in plan["lanes"]["yahoo"]["held"]
    assert plan["would_attempt_at_most"] == 4 and plan["warmup_hourly_cap"] == 4


def test_resend_requeues_what_may_go_again_and_refuses_the_rest(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    behaviour = replies({"nobody": Decision("reject", 550, "5.1.1", "user unknown"),
                         "busy": Decision("reject", 451, "4.3.0", "try again later")})
    with SmtpSink(RELAY, 0, tls=tls, behaviour=behaviour) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        ok, bad, busy = queue_statements(ctx, POOL, ["ok@example.org", "nobody@example.org",
                                                     "busy@example.org"])
        send_stage(ctx, POOL)
        config = send_config(ctx.settings)
        outcomes = {o.statement_id: o for o in cli_send.resend(
            ctx.ledger, config, [busy.statement_id, bad.statement_id, "st-nope"],
            reason="member called: retry now", actor="support-7")}
        assert outcomes[busy.statement_id].requeued
        assert not outcomes[bad.statement_id].requeued
        assert "verification" in outcomes[bad.statement_id].why
        assert outcomes["st-nope"].why == "no such statement"
        sent = cli_send.resend(ctx.ledger, config, [ok.statement_id], reason="lost", actor="x")[0]
        may_requeue_sent = Status.SENT in cli_send.sources_for(Status.QUEUED)
        assert sent.requeued is may_requeue_sent  # the state machine decides, not this command
        sink.behaviour = lambda r: Decision("accept")
        send_stage(ctx, POOL)
    assert statuses(ctx)[busy.statement_id] == "sent"
    assert "resend_requested" in events(ctx, busy.statement_id)
    detail = ctx.ledger.timeline(busy.statement_id)[events(ctx, busy.statement_id).index(
        "resend_requested")]["detail"]
    assert detail["reason"] == "member called: retry now" and detail["actor"] == "support-7"
    with pytest.raises(cli_send.SendCommandError):
        cli_send.resend(ctx.ledger, config, [busy.statement_id], reason=" ", actor="x")


def test_cli_pause_status_and_resume(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = world(tmp_path, sink, tls, clock)
    monkeypatch.setattr(cli_send, "_context", lambda: ctx)
    runner = CliRunner()
    done = runner.invoke(cli_send.app, ["pause", POOL, "--provider", "gmail", "--for", "2h",
                                        "--reason", "complaints", "--actor", "ops-1"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(cli_send.app, ["status", "--json"])
    assert '"provider": "gmail"' in shown.output and '"kind": "operator"' in shown.output
    wrong = runner.invoke(cli_send.app, ["pause", POOL, "--provider", "hotmail",
                                         "--reason", "x"])
    assert wrong.exit_code == 2 and "unknown provider" in wrong.output
    lifted = runner.invoke(cli_send.app, ["resume", POOL, "--provider", "gmail",
                                          "--reason", "ok", "--actor", "ops-1"])
    assert lifted.exit_code == 0 and "lifted 1" in lifted.output
    assert cli_send.parse_duration("90m") == 5400
    with pytest.raises(cli_send.SendCommandError):
        cli_send.parse_duration("soon")


# -- the password hint ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["member_id_dob", "last4_member_zip", "dob_mmddyyyy"])
def test_the_email_tells_each_member_how_to_form_the_password_of_the_configured_policy(
    policy: str, tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    import pandas as pd

    hints = tomllib.loads((TEMPLATES_DIR / "email" / "password_hints.toml").read_text("utf-8"))
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port), tls.ca_file, clock,
                           password_policy=policy)
        queue_statements(ctx, POOL, ["ana@example.org", "bo@example.org"])
        members_file = run_dir(ctx.settings, RUN_ID) / "members.parquet"
        members = pd.read_parquet(members_file)
        members.loc[members["email"] == "ana@example.org", "language"] = "es"
        members.to_parquet(members_file, index=False)
        assert send_stage(ctx, POOL)["accepted"] == 2
    texts = {}
    for received in sink.received:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        texts[received.rcpt_to[0]] = body.get_content()
    assert f"la contraseña es {hints[policy]['es']}." in texts["ana@example.org"]
    assert f"the password is {hints[policy]['en']}." in texts["bo@example.org"]
    for other in set(hints) - {policy}:
        for text in texts.values():
            assert hints[other]["en"] not in text and hints[other]["es"] not in text


# -- PHI ----------------------------------------------------------------------------------------------


def test_no_recipient_address_in_logs_or_on_the_timeline(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    behaviour = replies({"zebedee.canary": Decision("reject", 550, "5.1.1",
                                                    "<zebedee.canary@gmail.com>: no such user")})
    caplog.set_level(logging.INFO)
    with SmtpSink(RELAY, 0, tls=tls, behaviour=behaviour) as sink:
        ctx = world(tmp_path, sink, tls, clock)
        queue_statements(ctx, POOL, ["zebedee.canary@gmail.com", "ann.other@yahoo.com"])
        send_stage(ctx, POOL)
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records
                       if r.levelno >= logging.INFO)
    timeline = "\n".join(str(e) for s in statuses(ctx) for e in ctx.ledger.timeline(s))
    for text in (logged, timeline):
        assert "zebedee" not in text and "ann.other" not in text
