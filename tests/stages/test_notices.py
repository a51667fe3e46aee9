"""The notices stage on a real month: a late extract's flagged claims get their notices, by
email through a real SMTP server on loopback or on paper through the print batches, each move
and the day it leaves in a real SQLite ledger, on a clock that moves only when told.

What a member, support and operations would notice: exactly the flagged claims get a notice,
each once; email where the member file allows it, paper otherwise or when the email fails;
the day each notice leaves and whether that is late; a notice whose statement was replaced
is not sent; one that cannot be drawn is not lost; a bounce that comes later still gets the
notice to the member; no PHI in the logs or the email.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.delivery import is_suppressed, return_path
from pipeline.demo.dsn import build_dsn
from pipeline.demo.print_vendor import PrintVendor
from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from pipeline.ledger import Event, Status, make_notice_id
from pipeline.stages import (
    NoticesNotDrawn,
    compose_stage,
    ingest_stage,
    notices_stage,
    paper_batch_stage,
    paper_vendor_files_stage,
)
from pipeline.stages.context import Context
from pipeline.stages.reconcile import process_document
from tests.support.canary import CANARY_STRINGS
from tests.support.notices import (
    CANARY_EMAIL,
    LATE,
    PERIOD,
    STATEMENT_LEAVES,
    claims_missing_their_deadline,
    correct_a_line,
    drop_member,
    late_month,
    notice_messages,
    notices,
)
from tests.support.send import RUN_ID, VERP_SECRET, WallClock, make_context, pool_file

RELAY = "127.0.0.67"
DAY = "2026-12-24"
NOTICE_LEAVES = {"email": date(2026, 12, 24),  # sent on Christmas Eve evening, when the stage runs
                 "paper": date(2026, 12, 29)}  # after the cut-off: Monday's batch, mailed Tuesday

replies: dict[str, Decision] = {}
"""What the relay answers each recipient (by address; anyone else is accepted): set by a test."""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


@pytest.fixture(scope="module")
def sink(tls: TlsMaterial) -> Iterator[SmtpSink]:
    with SmtpSink(RELAY, 0, tls=tls, behaviour=lambda rcpt: replies.get(rcpt, Decision("accept"))) as relay:
        yield relay


@dataclass
class Month:
    """One late month, composed, ready for the notices stage (a copy per test)."""

    ctx: Context
    clock: WallClock
    emailed: str  # the canaries' member ids
    paper: str

    def canary_notice(self, member: str) -> dict[str, Any]:
        return next(n for n in notices(self.ctx).values() if n["member_id"] == member)


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory, sink: SmtpSink,
             tls: TlsMaterial) -> tuple[Path, str, str]:
    folder = tmp_path_factory.mktemp("late-month")
    ctx, emailed, paper = late_month(folder / "ws", (sink.host, sink.port), tls.ca_file, WallClock(LATE))
    ctx.ledger.close()
    return folder / "ws", emailed, paper


@pytest.fixture
def month(composed: tuple[Path, str, str], tmp_path: Path, sink: SmtpSink,
          tls: TlsMaterial) -> Iterator[Month]:
    source, emailed, paper = composed
    shutil.copytree(source, tmp_path / "ws")
    clock = WallClock(LATE)
    ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port, source=None), tls.ca_file, clock,
                       shards=2)
    replies.clear()
    sink.received.clear()
    yield Month(ctx, clock, emailed, paper)
    replies.clear()
    ctx.ledger.close()


def _events(ctx: Context, statement_id: str) -> list[dict[str, Any]]:
    return [e for e in ctx.ledger.timeline(statement_id) if e["event"].startswith("notice_")]


def test_each_flagged_claim_gets_its_notice_once_by_its_members_channel(
        month: Month, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    ctx = month.ctx
    caplog.set_level(logging.DEBUG, logger="pipeline")
    flagged = notices(ctx)
    assert set(flagged) == set(claims_missing_their_deadline(ctx, STATEMENT_LEAVES)), \
        "compose flags exactly the claims whose deadline the late month's statements miss"
    assert {n["member_id"] for n in flagged.values()} >= {month.emailed, month.paper}

    result = notices_stage(ctx, DAY)

    after = notices(ctx)
    by_email = {claim for claim, n in after.items() if n["status"] == "sent"}
    on_paper = {claim for claim, n in after.items() if n["status"] == "paper_queued"}
    assert by_email | on_paper == set(flagged) and not by_email & on_paper
    assert (result["due"], result["sent"], result["paper"]) == (len(flagged), len(by_email), len(on_paper))
    assert month.canary_notice(month.emailed)["status"] == "sent"
    assert month.canary_notice(month.paper)["status"] == "paper_queued"
    received = notice_messages(sink.received)
    assert set(received) == {after[claim]["notice_id"] for claim in by_email}, "each emailed notice once"
    assert all(n["notice_id"].startswith("nt-") and n["print_key"] for n in after.values())
    for claim, notice in after.items():
        channel = "email" if claim in by_email else "paper"
        leaves = NOTICE_LEAVES[channel]
        assert notice["left_on"] == leaves.isoformat(), claim
        assert notice["late"] == int(leaves > date.fromisoformat(notice["notice_due"])), claim
        if channel == "email":
            assert notice["object_key"] and notice["pool"] == "pool_t"
        events = _events(ctx, notice["statement_id"])
        mine = [e for e in events if e["detail"]["notice_id"] == notice["notice_id"]]
        assert [e["event"] for e in mine] == ["notice_sent" if channel == "email" else "notice_paper_queued"]
        assert mine[0]["detail"]["claim_id"] == claim and mine[0]["detail"]["left_on"] == leaves.isoformat()
    assert result["late"] == sum(n["late"] for n in after.values()) >= 1
    assert received[month.canary_notice(month.emailed)["notice_id"]]["To"] == CANARY_EMAIL

    again = notices_stage(ctx, DAY)
    assert again["due"] == again["sent"] == again["paper"] == 0
    assert len(notice_messages(sink.received)) == len(received), "a re-run sends nothing twice"
    assert notices(ctx) == after

    for canary in CANARY_STRINGS:
        assert canary not in caplog.text, f"{canary!r} in the logs"
        for message in received.values():
            words = [str(message["Subject"]), *(f"{k}: {v}" for k, v in message.items())]
            words += [part.get_content() for part in message.walk()
                      if part.get_content_type() in ("text/plain", "text/html")]
            assert canary not in "\n".join(words), f"{canary!r} in an email"


def test_an_email_the_relay_refuses_goes_to_paper_and_a_bad_address_is_suppressed(
        month: Month, sink: SmtpSink) -> None:
    replies[CANARY_EMAIL] = Decision("reject", 550, "5.1.1", "user unknown")
    result = notices_stage(month.ctx, DAY)
    canary = month.canary_notice(month.emailed)
    assert canary["status"] == "paper_queued" and canary["left_on"] == NOTICE_LEAVES["paper"].isoformat()
    assert canary["last_reason"] == "paper: email rejected on pool pool_t: 550 5.1.1"
    assert result["email_failed_to_paper"] == 1
    assert is_suppressed(month.ctx.ledger, CANARY_EMAIL, VERP_SECRET), "the address is not tried again"
    assert canary["notice_id"] not in notice_messages(sink.received)


def test_a_deferred_email_goes_to_paper_at_once_and_the_address_stays(month: Month) -> None:
    """A notice is already at its deadline: a 4xx is not retried by email days later."""
    replies[CANARY_EMAIL] = Decision("reject", 451, "4.3.0", "try again later")
    notices_stage(month.ctx, DAY)
    canary = month.canary_notice(month.emailed)
    assert canary["status"] == "paper_queued" and canary["attempts"] == 1
    assert not is_suppressed(month.ctx.ledger, CANARY_EMAIL, VERP_SECRET)


def test_a_notice_of_a_superseded_statement_is_closed_and_not_sent(month: Month, sink: SmtpSink) -> None:
    ctx = month.ctx
    statement_id = month.canary_notice(month.emailed)["statement_id"]
    assert ctx.ledger.transition(statement_id, Status.SUPERSEDED, Event.SUPERSEDED)
    result = notices_stage(ctx, DAY)
    assert result["superseded"] == sum(1 for n in notices(ctx).values() if n["statement_id"] == statement_id)
    assert {n["status"] for n in notices(ctx).values() if n["statement_id"] == statement_id} == {"superseded"}
    assert all(m["To"] != CANARY_EMAIL for m in notice_messages(sink.received).values())


def test_an_interrupted_send_is_reported_in_doubt_and_sent_once_more(month: Month, sink: SmtpSink) -> None:
    """What a crash between the relay's 250 and its commit leaves: the notice due, with its id and
    an attempt counted."""
    ctx = month.ctx
    canary = month.canary_notice(month.emailed)
    notice_id = make_notice_id(canary["statement_id"], canary["claim_id"],
                               key=ctx.settings.statement_id_key.get_secret_value().encode())
    ctx.ledger.execute("notice_assign_id", notice_id=notice_id, statement_id=canary["statement_id"],
                       claim_id=canary["claim_id"])
    ctx.ledger.execute("notice_attempt", notice_id=notice_id, pool="pool_t")
    result = notices_stage(ctx, DAY)
    assert result["in_doubt"] == 1
    assert month.canary_notice(month.emailed)["status"] == "sent"
    assert month.canary_notice(month.emailed)["attempts"] == 2
    assert list(notice_messages(sink.received)).count(notice_id) == 1


def test_a_bounce_that_comes_later_sends_the_notice_to_paper(month: Month) -> None:
    ctx = month.ctx
    notices_stage(ctx, DAY)
    canary = month.canary_notice(month.emailed)
    month.clock.advance(hours=20)  # the DSN comes back the next afternoon
    dsn = build_dsn(reporting_mta="mx.gmail.example", envelope_to=return_path(
        canary["notice_id"], VERP_SECRET, ctx.settings.bounce_domain),
        original_message_id=f"<{canary['notice_id']}@eob.example>",
        original_headers=b"Subject: x\r\n\r\n", recipient=CANARY_EMAIL, action="failed", status="5.1.1",
        diagnostic="550 5.1.1 user unknown", arrival_date=LATE)
    assert process_document(ctx, dsn, "rfc822", "maildir").outcome == "notice_to_paper"
    canary = month.canary_notice(month.emailed)
    assert canary["status"] == "paper_queued" and canary["left_on"] == "2026-12-29"
    assert is_suppressed(ctx.ledger, CANARY_EMAIL, VERP_SECRET)
    assert process_document(ctx, dsn, "rfc822", "maildir").outcome == "duplicate"


def test_the_dry_run_plans_and_changes_nothing(month: Month, sink: SmtpSink) -> None:
    before = notices(month.ctx)
    plan = notices_stage(month.ctx, DAY, dry_run=True)
    assert plan["dry_run"] and plan["due"] == len(before) == plan["planned_email"] + plan["planned_paper"]
    assert notices(month.ctx) == before and not sink.received


def test_a_notice_that_cannot_be_drawn_stays_due_and_the_others_go(month: Month) -> None:
    ctx = month.ctx
    broken = month.canary_notice(month.paper)
    with ctx.ledger.begin() as conn:  # a claim the statement does not list: render refuses it
        conn.execute(text("UPDATE prompt_notices SET claim_id = 'CNOSUCHCLAIM' WHERE statement_id = :s "
                          "AND claim_id = :c"), {"s": broken["statement_id"], "c": broken["claim_id"]})
    with pytest.raises(NoticesNotDrawn, match=r"1 prompt notice\(s\) could not be drawn and stay due") \
            as caught:
        notices_stage(ctx, DAY)
    assert "CNOSUCHCLAIM" in str(caught.value) and "Paperphi" not in str(caught.value)
    left = notices(ctx)
    assert left["CNOSUCHCLAIM"]["status"] == "due" and "no such claim" in left["CNOSUCHCLAIM"]["last_reason"]
    assert {n["status"] for claim, n in left.items() if claim != "CNOSUCHCLAIM"} <= {"sent", "paper_queued"}
    assert [e["event"] for e in _events(ctx, broken["statement_id"])
            if e["detail"]["claim_id"] == "CNOSUCHCLAIM"] == ["notice_render_failed"]


def test_paper_notices_are_batched_printed_and_mailed_with_the_statements(month: Month) -> None:
    ctx = month.ctx
    notices_stage(ctx, DAY)
    on_paper = {n["notice_id"]: n for n in notices(ctx).values() if n["status"] == "paper_queued"}
    batch_day = "2026-12-28"  # queued after Christmas Eve's cut-off: Monday's batch
    month.clock.advance(days=3, hours=20)  # Monday 14:00
    result = paper_batch_stage(ctx, batch_day)
    assert result["notices"] == len(on_paper) >= 1 and result["address_exceptions"] == 0
    drop = ctx.settings.workspace / "vendor-drop"
    listed = {row.split(",")[0] for path in drop.glob("*.manifest.csv")
              for row in path.read_text().splitlines()}
    assert set(on_paper) <= listed, "every paper notice is a piece of the day's batch"
    assert {n["status"] for n in notices(ctx).values() if n["notice_id"] in on_paper} == {"batched"}
    PrintVendor(drop, mail_date=date(2026, 12, 29)).process()
    counts = paper_vendor_files_stage(ctx)
    assert counts["notices_printed"] == counts["notices_mailed"] == len(on_paper)
    mailed = {n["notice_id"]: n for n in notices(ctx).values() if n["notice_id"] in on_paper}
    assert {n["status"] for n in mailed.values()} == {"mailed"}
    assert {n["left_on"] for n in mailed.values()} == {"2026-12-29"}, "the vendor's mail date"
    paper_canary = month.canary_notice(month.paper)
    assert [e["event"] for e in _events(ctx, paper_canary["statement_id"])
            if e["detail"]["notice_id"] == paper_canary["notice_id"]] == [
        "notice_paper_queued", "notice_batched", "notice_printed", "notice_mailed"]
    assert paper_batch_stage(ctx, batch_day)["notices"] == 0, "a notice is batched once"


def test_the_ledger_keeps_claim_ids_only(month: Month) -> None:
    """Support reads the timeline; nothing about the claim beyond its id is in it."""
    notices_stage(month.ctx, DAY)
    with month.ctx.ledger.engine.connect() as conn:
        dumped = json.dumps([list(map(str, row))
                             for table in ("prompt_notices", "statement_events", "audit_log")
                             for row in conn.execute(text(f"SELECT * FROM {table}"))])
    for canary in CANARY_STRINGS + [CANARY_EMAIL]:
        assert canary not in dumped



def test_one_notices_run_at_a_time(month: Month, sink: SmtpSink) -> None:
    """A second run (the morning schedule and a monthly compose's asset at once) leaves the due
    notices to the run that holds the lease."""
    from pipeline.delivery.lease import PoolLease
    from pipeline.stages.notices import NOTICE_LEASE

    other = PoolLease(month.ctx.ledger, NOTICE_LEASE, ttl=600, now=month.clock, holder="other-host/x:1:a")
    assert other.try_take()
    assert notices_stage(month.ctx, DAY) == {"day": DAY, "busy": "other-host/x:1:a"}
    assert {n["status"] for n in notices(month.ctx).values()} == {"due"} and not sink.received


def test_a_paper_notice_whose_address_cannot_be_printed_waits_in_the_queue_until_it_can(month: Month) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.stages import run_dir

    ctx = month.ctx
    notices_stage(ctx, DAY)
    canary = month.canary_notice(month.paper)
    members_file = run_dir(ctx.settings, "eob-2026-11") / "members.parquet"
    original = pq.read_table(members_file)
    is_canary = pc.equal(original["member_id"], month.paper)
    broken = original
    for column, value in (("state", "IL"), ("postal_code", "90210")):  # a California ZIP in Illinois
        broken = broken.set_column(broken.column_names.index(column), column,
                                   pc.if_else(is_canary, value, broken[column]))
    pq.write_table(broken, members_file)
    month.clock.advance(days=3, hours=20)
    first = paper_batch_stage(ctx, "2026-12-28")
    assert canary["notice_id"] not in {p for p in _pieces(ctx)}
    assert first["address_exceptions"] >= 1
    assert paper_batch_stage(ctx, "2026-12-28")["notices"] >= 1
    waiting = month.canary_notice(month.paper)
    assert waiting["status"] == "paper_queued" and waiting["last_reason"].startswith("mailing address: ")
    refused = [e for e in _events(ctx, canary["statement_id"]) if e["event"] == "notice_address_refused"
               and e["detail"]["notice_id"] == canary["notice_id"]]
    assert len(refused) == 1, "the reason is recorded once, not at every run"
    pq.write_table(original, members_file)  # the address corrected in the member file
    month.clock.advance(days=1)
    paper_batch_stage(ctx, "2026-12-29")
    assert month.canary_notice(month.paper)["status"] == "batched"
    assert canary["notice_id"] in _pieces(ctx)


def _pieces(ctx: Context) -> set[str]:
    with ctx.ledger.engine.connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT statement_id FROM batch_pieces WHERE live = 1"))}


def test_a_notice_event_does_not_hide_that_its_statements_send_was_in_doubt(month: Month) -> None:
    """The statement's crashed send stays recognisable when its notice goes out meanwhile."""
    ctx = month.ctx
    statement_id = month.canary_notice(month.emailed)["statement_id"]
    for status, event in ((Status.RENDERED, Event.RENDERED), (Status.QUEUED, Event.QUEUED)):
        ctx.ledger.transition(statement_id, status, event, pool="pool_t")
    ctx.ledger.record_event(statement_id, Event.SEND_ATTEMPT, {"pool": "pool_t"})
    notices_stage(ctx, DAY)
    assert _events(ctx, statement_id)[-1]["event"] == "notice_sent"
    in_doubt = ctx.ledger.fetch("send_in_doubt_for_pool", pool="pool_t")
    assert [row["statement_id"] for row in in_doubt] == [statement_id]


# -- a corrected extract after the notices were flagged -----------------------------------------


def _member_notices(ctx: Context, member: str) -> list[dict[str, Any]]:
    """Every notice of the member's statements of the period, any version (oldest first)."""
    with ctx.ledger.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text(
            "SELECT p.*, s.version FROM prompt_notices p "
            "JOIN statements s ON s.statement_id = p.statement_id "
            "WHERE s.member_id = :m ORDER BY s.version, p.claim_id"), {"m": member})]


def _versions(ctx: Context, member: str) -> list[str]:
    return [v["statement_id"] for v in ctx.ledger.fetch("compose_versions_for_member", period=PERIOD,
                                                         member_id=member)]


def _set_status(ctx: Context, statement_id: str, status: str) -> None:
    """As if the statement had gone out since (the steps between are other tests' business)."""
    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = :status WHERE statement_id = :s"),
                     {"status": status, "s": statement_id})


def _recompose(month: Month) -> dict[str, Any]:
    """The period ingested and composed again an hour later, from the corrected extract."""
    month.clock.advance(hours=1)
    ingest_stage(month.ctx, PERIOD)
    return compose_stage(month.ctx, PERIOD)


def test_a_paper_notice_of_a_statement_a_correction_replaces_is_closed_with_it_and_never_printed(
        month: Month) -> None:
    """The notice went to the paper queue from version 1; a corrected extract replaces version 1
    before it went out. The notice is closed with it, on its timeline, and the print run does not
    take it: the claim is noticed from version 2, which its own compose flagged."""
    ctx = month.ctx
    notices_stage(ctx, DAY)
    queued = _member_notices(ctx, month.paper)
    assert queued and {n["status"] for n in queued} == {"paper_queued"}
    old_id = queued[0]["statement_id"]
    correct_a_line(ctx.settings.extracts_dir / PERIOD, month.paper)
    assert _recompose(month)["reissued"] == 1
    new_id = _versions(ctx, month.paper)[-1]
    assert ctx.ledger.statement(old_id)["status"] == Status.SUPERSEDED  # type: ignore[index]
    after = _member_notices(ctx, month.paper)
    closed = [n for n in after if n["statement_id"] == old_id]
    assert [(n["notice_id"], n["status"]) for n in closed] == [(n["notice_id"], "superseded") for n in queued]
    for notice in queued:
        assert [(e["event"], e["detail"].get("by")) for e in _events(ctx, old_id)
                if e["detail"]["notice_id"] == notice["notice_id"]] == [
            ("notice_paper_queued", None), ("notice_superseded", new_id)]
    fresh = [n for n in after if n["statement_id"] == new_id]
    assert {n["claim_id"] for n in fresh} == {n["claim_id"] for n in queued}, "version 2 notices them"
    assert {n["status"] for n in fresh} == {"due"}

    month.clock.advance(days=3, hours=19)  # Monday's batch
    paper_batch_stage(ctx, "2026-12-28")
    assert not {n["notice_id"] for n in queued} & _pieces(ctx), "never printed from version 1"


def test_a_claim_whose_notice_left_is_not_noticed_again_when_a_correction_reissues_its_statement(
        month: Month, sink: SmtpSink) -> None:
    """The emailed canary's notices were accepted by the relay, the paper canary's queued for print
    while its statement was already mailed; then another line of each changes. Their version 2 is
    late for the same claims, but each claim keeps the one notice that left: not a second email
    or letter; the report lists each claim once, as sent or on paper; version 2 says the notice
    was sent, and when."""
    from pipeline.report import build_report
    from pipeline.stages.notices import separate_notices

    ctx = month.ctx
    notices_stage(ctx, DAY)
    left = {member: _member_notices(ctx, member) for member in (month.emailed, month.paper)}
    assert {n["status"] for n in left[month.emailed]} == {"sent"}
    assert {n["status"] for n in left[month.paper]} == {"paper_queued"}
    _set_status(ctx, left[month.paper][0]["statement_id"], "mailed")
    emailed_before = len(notice_messages(sink.received))
    folder = ctx.settings.extracts_dir / PERIOD
    for member, noticed in left.items():
        correct_a_line(folder, member, not_claims=frozenset(n["claim_id"] for n in noticed))
    composed = _recompose(month)
    assert composed["reissued"] == 2
    for member, noticed in left.items():
        assert _member_notices(ctx, member) == noticed, "no notice row for version 2, none closed"

    again = notices_stage(ctx, DAY)
    assert again["due"] == again["sent"] == again["paper"] == 0
    assert len(notice_messages(sink.received)) == emailed_before
    assert composed["noticed_before"] == len(left[month.emailed]) + len(left[month.paper])
    report = build_report(ctx.ledger, RUN_ID)
    for noticed in left.values():
        rows = [r for r in report.prompt_notice_claims if r["claim_id"] in {n["claim_id"] for n in noticed}]
        assert sorted((r["claim_id"], r["notice_id"], r["status"]) for r in rows) == sorted(
            (n["claim_id"], n["notice_id"], n["status"]) for n in noticed), "each claim once"

    new_id = _versions(ctx, month.emailed)[-1]
    told = separate_notices(ctx, RUN_ID, ctx.ledger.statement(new_id)["shard"])  # type: ignore[index]
    assert sorted((n.claim_id, n.leaves) for n in told[new_id]) == sorted(
        (n["claim_id"], NOTICE_LEAVES["email"]) for n in left[month.emailed])

    month.clock.advance(days=3, hours=19)  # the paper canary's notices are printed once, from v1
    paper_batch_stage(ctx, "2026-12-28")
    assert {n["notice_id"] for n in left[month.paper]} <= _pieces(ctx)


def test_a_due_notice_of_a_statement_replaced_or_withdrawn_after_release_is_closed_not_reported_undrawable(
        month: Month, sink: SmtpSink) -> None:
    """The canaries' statements went out before their notices; then a corrected extract reissues the
    emailed canary's (version 2, flagged afresh) and withdraws the paper canary's. Version 1 can no
    longer be drawn: its due notices are closed, the new version's go out, and the task succeeds."""
    ctx = month.ctx
    emailed_v1 = _member_notices(ctx, month.emailed)[0]["statement_id"]
    paper_v1 = _member_notices(ctx, month.paper)[0]["statement_id"]
    for status, event in ((Status.RENDERED, Event.RENDERED), (Status.QUEUED, Event.QUEUED),
                          (Status.SENT, Event.SENT)):
        assert ctx.ledger.transition(emailed_v1, status, event, pool="pool_t")
    _set_status(ctx, paper_v1, "mailed")
    folder = ctx.settings.extracts_dir / PERIOD
    correct_a_line(folder, month.emailed)
    drop_member(folder, month.paper)
    composed = _recompose(month)
    assert (composed["reissued"], composed["withdrawn_after_release"]) == (1, 1)
    assert ctx.ledger.statement(emailed_v1)["status"] == "sent"  # type: ignore[index]
    emailed_v2 = _versions(ctx, month.emailed)[-1]
    stale = [n for member in (month.emailed, month.paper) for n in _member_notices(ctx, member)
             if n["statement_id"] in (emailed_v1, paper_v1)]
    assert stale and {n["status"] for n in stale} == {"due"}

    result = notices_stage(ctx, DAY)  # no NoticesNotDrawn

    assert result["not_drawn"] == 0 and result["superseded"] == len(stale)
    for notice in stale:
        claim = notice["claim_id"]
        mine = [e for e in _events(ctx, notice["statement_id"]) if e["detail"]["claim_id"] == claim]
        assert [e["event"] for e in mine] == ["notice_superseded"], "closed, not a render failure"
        why = {"by": emailed_v2} if notice["statement_id"] == emailed_v1 else \
            {"cause": "its statement was withdrawn"}
        assert mine[0]["detail"] == {"notice_id": mine[0]["detail"]["notice_id"], "claim_id": claim,
                                     "notice_status": "superseded", **why}
    now = _member_notices(ctx, month.emailed)
    assert {n["status"] for n in now if n["statement_id"] == emailed_v1} == {"superseded"}
    fresh = [n for n in now if n["statement_id"] == emailed_v2]
    assert {n["claim_id"] for n in fresh} == {n["claim_id"] for n in stale if n["statement_id"] == emailed_v1}
    assert {n["status"] for n in fresh} == {"sent"}
    to_canary = [m for m in notice_messages(sink.received).values() if m["To"] == CANARY_EMAIL]
    assert len(to_canary) == len(fresh), "one notice per claim, from version 2"

    # a notice whose statement is current but cannot be drawn still fails the task
    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE prompt_notices SET status = 'due', claim_id = 'CNOSUCHCLAIM' "
                          "WHERE notice_id = :n"), {"n": fresh[0]["notice_id"]})
    with pytest.raises(NoticesNotDrawn):
        notices_stage(ctx, DAY)


def test_a_lost_lease_stops_the_notices_before_they_reach_a_pool(
        month: Month, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the statements' sender: another run may hold the lease now, so none is emailed; what is
    not sent stays due for that run."""
    from pipeline.delivery.lease import LeaseLost, PoolLease

    monkeypatch.setattr(PoolLease, "valid", lambda self: False)  # its renewal lapsed
    with pytest.raises(LeaseLost):
        notices_stage(month.ctx, DAY)
    assert not notice_messages(sink.received)
    assert {n["status"] for n in _member_notices(month.ctx, month.emailed)} == {"due"}
