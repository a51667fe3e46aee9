"""A corrected member file changes a statement's channel or address before it goes out.

A real SQLite ledger, real ingest and compose of a generated extract, and sends to a real SMTP
server on loopback (STARTTLS): what a member would notice is which address gets an email.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.compose import make_statement_id
from pipeline.delivery.suppression import address_hash
from pipeline.demo.generate import generate_extract
from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from pipeline.ledger import Delivery, Event, Ledger, Status, Transition
from pipeline.settings import Settings
from pipeline.stages import channels, compose_stage, ingest_stage, render_stage, route_stage, run_id_for
from pipeline.stages.context import Context
from pipeline.stages.send import send_stage
from tests.support.send import (
    PDF,
    RUN_ID,
    VERP_SECRET,
    WallClock,
    events,
    make_context,
    pool_file,
    queue_statements,
    statuses,
)

RELAY = "127.0.0.57"
POOL = "pool_t"
PERIOD = "2026-11"
KEY = Settings.model_fields["statement_id_key"].default.get_secret_value().encode()  # make_context's


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@contextmanager
def period_world(tmp_path: Path, tls: TlsMaterial, clock: WallClock, *,
                 paper: int = 0) -> Iterator[tuple[Context, SmtpSink, list[str]]]:
    """A relay on loopback and a period ingested and composed from a generated extract; the
    first `paper` members with a usable address have not consented to e-delivery (returned)."""
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port), tls.ca_file, clock,
                           shards=1)
        generate_extract(ctx.settings.extracts_dir / PERIOD, members=24, period=PERIOD, seed=11)
        usable = [m for m, row in members(ctx).items()
                  if re.fullmatch(r"[^@]+@[^@]+\.[a-z]+", row["email"]) and row["edelivery_consent"] == "Y"]
        chosen = usable[:paper]
        edit_members(ctx, {member: {"edelivery_consent": "N"} for member in chosen})
        ingest_stage(ctx, PERIOD)
        compose_stage(ctx, PERIOD)
        yield ctx, sink, chosen
        ctx.ledger.close()


def members(ctx: Context) -> dict[str, dict[str, str]]:
    path = ctx.settings.extracts_dir / PERIOD / "members.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["member_id"]: row for row in csv.DictReader(handle)}


def edit_members(ctx: Context, changes: dict[str, dict[str, str]]) -> None:
    """The insurer's corrected member file: the same members, some fields changed."""
    path = ctx.settings.extracts_dir / PERIOD / "members.csv"
    rows = list(members(ctx).values())
    for row in rows:
        row.update(changes.get(row["member_id"], {}))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def corrected(ctx: Context, changes: dict[str, dict[str, str]]) -> dict[str, Any]:
    edit_members(ctx, changes)
    ingest_stage(ctx, PERIOD)
    return compose_stage(ctx, PERIOD)


def on_email(ctx: Context, n: int) -> list[str]:
    """The first n members whose statement compose put on email."""
    with ctx.ledger.begin() as conn:
        found = [r.member_id for r in conn.execute(text(
            "SELECT member_id FROM statements WHERE channel = 'email' ORDER BY member_id"))]
    assert len(found) >= n
    return found[:n]


def set_status(ctx: Context, member: str, status: str) -> None:
    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = :status WHERE statement_id = :s"),
                     {"status": status, "s": sid(member)})


def sid(member: str) -> str:
    """The member's first statement id in this (new, so keyed) run, with the settings' key."""
    return make_statement_id(member, PERIOD, 1, key=KEY)


def queue(ctx: Context, *member_ids: str) -> None:
    """As render and route would leave them: stored and queued for the pool."""
    for member in member_ids:
        key = f"statements/{PERIOD}/000/{sid(member)}.pdf"
        ctx.store.put(key, PDF, "application/pdf")
        ctx.ledger.apply([
            Transition(sid(member), Status.RENDERED, Event.RENDERED, {}, {"object_key": key}),
            Transition(sid(member), Status.QUEUED, Event.QUEUED, {"pool": POOL}, {"pool": POOL})])


def recipients(sink: SmtpSink) -> set[str]:
    """Every address the relay was asked to deliver to, accepted or not."""
    return {a.recipient.strip("<>").lower() for a in sink.attempts}


def no_address_on(ctx: Context, statement_id: str, *addresses: str) -> None:
    timeline = json.dumps([e["detail"] for e in ctx.ledger.timeline(statement_id)])
    assert "@" not in timeline
    assert not [a for a in addresses if a.split("@")[0] in timeline]


def test_withdrawn_consent_takes_a_statement_off_email_before_the_next_send(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """Queued for a pool, or only composed: consent withdrawn in a corrected member file puts
    it on paper with the reason on its timeline, and the send run emails everyone else."""
    with period_world(tmp_path, tls, clock) as (ctx, sink, _):
        queued, composed, control = on_email(ctx, 3)
        queue(ctx, queued, control)
        address = {m: members(ctx)[m]["email"] for m in (queued, composed, control)}
        result = corrected(ctx, {queued: {"edelivery_consent": "N"}, composed: {"edelivery_consent": "N"}})
        changes = (result["changed_to_paper"], result["changed_to_email"], result["address_changed"])
        assert changes == (2, 0, 0)

        row = ctx.ledger.statement(sid(queued))
        assert (row["status"], row["channel"], row["paper_reason"]) == ("paper_queued", "paper", "no_consent")
        last = ctx.ledger.timeline(sid(queued))[-1]
        assert (last["event"], last["from_status"], last["to_status"]) == (
            "channel_changed", "queued", "paper_queued")
        assert last["detail"] == {"from": "email", "to": "paper", "reason": "no_consent"}
        row = ctx.ledger.statement(sid(composed))
        assert (row["status"], row["channel"], row["paper_reason"]) == ("composed", "paper", "no_consent")
        assert ctx.ledger.timeline(sid(composed))[-1]["detail"] == last["detail"]
        for member in (queued, composed):
            no_address_on(ctx, sid(member), address[member])

        # the ledger's channels now say what compose said
        with ctx.ledger.begin() as conn:
            channel_counts = dict(conn.execute(text(
                "SELECT channel, COUNT(*) FROM statements GROUP BY channel")).all())
        assert channel_counts == {"email": result["email"], "paper": result["paper"]}

        render_stage(ctx, PERIOD, 0)
        route_stage(ctx, PERIOD)
        sent = send_stage(ctx, POOL)
        assert sent["accepted"] > 1 and sent["off_queue"] == sent["held_member_file"] == 0
        assert address[control] in recipients(sink)
        assert not {address[queued], address[composed]} & recipients(sink)
        final = statuses(ctx)
        assert (final[sid(queued)], final[sid(composed)], final[sid(control)]) == (
            "paper_queued", "paper_queued", "sent")
        assert ctx.ledger.statement(sid(composed))["print_key"]  # the print variant, for paper


def test_a_statement_already_emailed_is_recorded_for_follow_up_not_sent_again(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with period_world(tmp_path, tls, clock) as (ctx, sink, _):
        (member,) = on_email(ctx, 1)
        queue(ctx, member)
        assert send_stage(ctx, POOL)["accepted"] == 1
        result = corrected(ctx, {member: {"edelivery_consent": "N"}})
        assert (result["consent_withdrawn_after_email"], result["changed_to_paper"]) == (1, 0)
        row = ctx.ledger.statement(sid(member))
        assert (row["status"], row["channel"]) == ("sent", "email")  # it went out by email
        followed = [e["detail"] for e in ctx.ledger.timeline(sid(member))
                    if e["event"] == "consent_withdrawn_after_email"]
        assert followed == [{"status": "sent", "reason": "no_consent"}]
        again = compose_stage(ctx, PERIOD)  # recorded once
        assert again["consent_withdrawn_after_email"] == 0
        assert events(ctx, sid(member)).count("consent_withdrawn_after_email") == 1
        assert send_stage(ctx, POOL)["queued"] == 0 and len(sink.received) == 1


def test_a_changed_address_is_the_only_one_the_next_send_uses(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with period_world(tmp_path, tls, clock) as (ctx, sink, _):
        (member,) = on_email(ctx, 1)
        queue(ctx, member)
        old = members(ctx)[member]["email"]
        new = "moved.member@example.net"
        result = corrected(ctx, {member: {"email": new}})
        assert (result["address_changed"], result["changed_to_paper"]) == (1, 0)
        row = ctx.ledger.statement(sid(member))
        assert (row["status"], row["email_domain"]) == ("queued", "example.net")
        assert row["address_hash"] == address_hash(new, VERP_SECRET)
        last = ctx.ledger.timeline(sid(member))[-1]
        assert (last["event"], last["detail"]) == ("address_changed", {
            "from": address_hash(old, VERP_SECRET)[:16], "to": address_hash(new, VERP_SECRET)[:16]})
        no_address_on(ctx, sid(member), old, new)
        assert send_stage(ctx, POOL)["accepted"] == 1
        assert recipients(sink) == {new}
        assert [r.rcpt_to for r in sink.received] == [(new,)]


def test_consent_given_puts_a_paper_statement_not_yet_printed_back_on_email(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """Composed, rendered as print, or queued for paper: email again, rendered as email and
    sent. Printed: stays as it is. After the run's send cut-off: stays on paper."""
    with period_world(tmp_path, tls, clock, paper=4) as (ctx, sink, paper):
        composed, rendered, queued, printed = paper
        assert {ctx.ledger.statement(sid(m))["channel"] for m in paper} == {"paper"}
        render_stage(ctx, PERIOD, 0)
        for member in (queued, printed):
            ctx.ledger.apply([Transition(sid(member), Status.PAPER_QUEUED, Event.PAPER_QUEUED,
                                         {"reason": "channel"})])
        set_status(ctx, printed, "printed")  # the print vendor's word, which the pipeline does not have yet
        set_status(ctx, composed, "composed")  # as if render had not reached it yet
        result = corrected(ctx, {m: {"edelivery_consent": "Y"} for m in paper})
        assert (result["changed_to_email"], result["changed_to_paper"]) == (3, 0)
        for member, was in ((composed, None), (rendered, "rendered"), (queued, "paper_queued")):
            row = ctx.ledger.statement(sid(member))
            assert (row["status"], row["channel"], row["paper_reason"]) == ("composed", "email", None)
            assert row["address_hash"] == address_hash(members(ctx)[member]["email"], VERP_SECRET)
            last = ctx.ledger.timeline(sid(member))[-1]
            assert (last["event"], last["from_status"], last["detail"]) == (
                "channel_changed", was, {"from": "paper", "to": "email", "reason": "consent_given"})
        assert ctx.ledger.statement(sid(printed))["status"] == "printed"
        assert ctx.ledger.statement(sid(printed))["channel"] == "paper"

        render_stage(ctx, PERIOD, 0)
        route_stage(ctx, PERIOD)
        send_stage(ctx, POOL)
        emailed = {members(ctx)[m]["email"] for m in (composed, rendered, queued)}
        assert emailed <= recipients(sink)
        assert members(ctx)[printed]["email"] not in recipients(sink)
        assert {statuses(ctx)[sid(m)] for m in (composed, rendered, queued)} == {"sent"}


def test_consent_given_after_the_send_cut_off_leaves_the_statement_on_paper(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    with period_world(tmp_path, tls, clock, paper=1) as (ctx, _sink, (member,)):
        render_stage(ctx, PERIOD, 0)
        ctx.ledger.apply([Transition(sid(member), Status.PAPER_QUEUED, Event.PAPER_QUEUED, {})])
        cutoff = ctx.send_cutoff(run_id_for(PERIOD))
        assert cutoff is not None
        clock.moment = cutoff + timedelta(minutes=1)
        result = corrected(ctx, {member: {"edelivery_consent": "Y"}})
        assert (result["kept_paper_past_cutoff"], result["changed_to_email"]) == (1, 0)
        row = ctx.ledger.statement(sid(member))
        assert (row["status"], row["channel"]) == ("paper_queued", "paper")


def test_the_sender_holds_a_statement_whose_new_member_file_withdrew_consent_until_compose(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """The corrected extract is ingested, compose has not run yet, a retry send runs: the member
    file the sender reads says no consent, so nothing goes to that address."""
    with period_world(tmp_path, tls, clock) as (ctx, sink, _):
        member, control = on_email(ctx, 2)
        queue(ctx, member, control)
        edit_members(ctx, {member: {"edelivery_consent": "N"}})
        ingest_stage(ctx, PERIOD)
        first = send_stage(ctx, POOL)
        assert (first["accepted"], first["held_member_file"], first["left_queued"]) == (1, 1, 1)
        assert recipients(sink) == {members(ctx)[control]["email"]}
        assert statuses(ctx)[sid(member)] == "queued"
        held = ctx.ledger.timeline(sid(member))[-1]
        assert (held["event"], held["detail"]["reason"]) == (
            "send_held", "member file: no_consent; compose decides the channel")
        assert send_stage(ctx, POOL)["held_member_file"] == 1
        assert events(ctx, sid(member)).count("send_held") == 1  # recorded once
        compose_stage(ctx, PERIOD)
        assert statuses(ctx)[sid(member)] == "paper_queued"
        assert send_stage(ctx, POOL)["queued"] == 0
        assert len(sink.received) == 1


def test_a_statement_moved_to_paper_during_a_send_run_is_not_emailed(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """The send run read the queue before compose moved the statement: the sender checks the
    ledger before it builds each message."""
    target: dict[str, str] = {}

    def withdraw_other(rcpt: str) -> Decision:
        if rcpt.startswith("first@") and "done" not in target:
            target["done"] = "yes"
            other = Ledger.open(ctx.settings.ledger_dsn)
            decided = channels.Decided(target["id"], RUN_ID, Delivery("paper", "no_consent", None, None))
            counts, _ = channels.apply(_with_ledger(ctx, other), [decided])
            assert counts.changed_to_paper == 1
            other.close()
        return Decision("accept")

    one_at_a_time = "[pool.providers.default]\nmax_connections = 1\n"
    with SmtpSink(RELAY, 0, tls=tls, behaviour=withdraw_other) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port, providers=one_at_a_time),
                           tls.ca_file, clock)
        first, second = queue_statements(ctx, POOL, ["first@example.org", "second@example.org"])
        target["id"] = second.statement_id
        result = send_stage(ctx, POOL)
    assert (result["accepted"], result["off_queue"], result["left_queued"]) == (1, 1, 0)
    assert recipients(sink) == {"first@example.org"}
    assert statuses(ctx) == {first.statement_id: "sent", second.statement_id: "paper_queued"}
    ctx.ledger.close()


def test_consent_withdrawn_while_its_email_is_in_flight_is_followed_up_once(
    tmp_path: Path, tls: TlsMaterial, clock: WallClock
) -> None:
    """Compose moves it to paper during the SMTP exchange: the send is in doubt, so it is
    followed up; the relay's 250 is recorded as ignored and followed up no second time."""
    target: dict[str, str] = {}

    def withdraw_on_rcpt(rcpt: str) -> Decision:
        if rcpt.startswith("late@") and "done" not in target:
            target["done"] = "yes"
            other = Ledger.open(ctx.settings.ledger_dsn)
            decided = channels.Decided(target["id"], RUN_ID, Delivery("paper", "no_consent", None, None))
            counts, _ = channels.apply(_with_ledger(ctx, other), [decided])
            assert (counts.changed_to_paper, counts.consent_withdrawn_after_email) == (1, 1)
            other.close()
        return Decision("accept")

    with SmtpSink(RELAY, 0, tls=tls, behaviour=withdraw_on_rcpt) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port), tls.ca_file, clock)
        (late,) = queue_statements(ctx, POOL, ["late@example.org"])
        target["id"] = late.statement_id
        send_stage(ctx, POOL)
    assert len(sink.received) == 1
    assert statuses(ctx)[late.statement_id] == "paper_queued"
    assert events(ctx, late.statement_id)[-4:] == [
        "send_attempt", "channel_changed", "consent_withdrawn_after_email", "sent_ignored"]
    moved = [e for e in ctx.ledger.timeline(late.statement_id) if e["event"] == "channel_changed"]
    assert moved[0]["detail"]["send_in_doubt"] is True
    ctx.ledger.close()


def _with_ledger(ctx: Context, ledger: Ledger) -> Context:
    from dataclasses import replace

    return replace(ctx, ledger=ledger)
