"""The ingest and compose stages against a real (SQLite) ledger: accounts, statements, reissues."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.clock import utc_now
from pipeline.compose import KEYED_IDS, UNKEYED_IDS, StatementIds, iter_composed, make_statement_id
from pipeline.deadlines import NoticeRule
from pipeline.delivery.suppression import address_hash
from pipeline.demo.generate import generate_extract
from pipeline.ledger import Ledger
from pipeline.ledger.sql import migrations
from pipeline.ledger.statuses import Status
from pipeline.periods import statement_date
from pipeline.settings import Settings
from pipeline.stages import compose_stage, ingest_stage, open_context, report_stage, run_dir
from pipeline.stages import ingest as ingest_module
from pipeline.stages.context import Context
from pipeline.storage import open_store

PERIOD = "2026-11"
NOTICES = NoticeRule.leaving_on(30, statement_date(PERIOD))  # leaving on the statement date


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "ws").mkdir()
    context = open_context(Settings(workspace=tmp_path / "ws", shards=2))
    generate_extract(context.settings.extracts_dir / PERIOD, members=120, period=PERIOD, seed=4)
    yield context
    context.ledger.close()


def _sid(ctx, member: str, version: int = 1) -> str:  # type: ignore[no-untyped-def]
    """The statement id compose gives the member in this (new, so keyed) run."""
    return ctx.statement_ids("eob-2026-11")(member, PERIOD, version)  # type: ignore[no-any-return]


def _statements(ctx) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    with ctx.ledger.begin() as conn:
        from sqlalchemy import text

        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT statement_id, member_id, version, status, replaces, content_hash, prompt_notice, channel "
            "FROM statements ORDER BY member_id, version"))]


def test_accounts_and_statements_reach_the_ledger_once(ctx) -> None:  # type: ignore[no-untyped-def]
    ingested = ingest_stage(ctx, PERIOD)
    files = ctx.ledger.fetch("ingest_files_for_run", run_id="eob-2026-11")
    claims = [f for f in files if f["kind"] == "claims"]
    assert sum(f["rows_read"] for f in claims) == ingested["lines_read"] > 0
    assert all(f["rows_read"] == f["rows_accepted"] + f["rows_quarantined"] for f in files)
    reasons = ctx.ledger.fetch("quarantine_reasons_for_run", run_id="eob-2026-11")
    assert sum(r["row_count"] for r in reasons if r["source_file"].startswith("claims")) == \
        ingested["lines_quarantined"]
    first = compose_stage(ctx, PERIOD)
    assert first["inserted"] == first["statements"] == len(_statements(ctx)) > 100
    assert first["email"] + first["paper"] == first["statements"]
    assert all(s["content_hash"] and s["version"] == 1 for s in _statements(ctx))
    again = compose_stage(ctx, PERIOD)
    assert (again["inserted"], again["reissued"], again["unchanged"]) == (0, 0, first["statements"])
    notices = ctx.ledger.fetch("ingest_prompt_notices_for_run", run_id="eob-2026-11")
    flagged = {s["statement_id"] for s in _statements(ctx) if s["prompt_notice"]}
    assert flagged and {n["statement_id"] for n in notices} == flagged
    # each flagged claim's notice is due before its statement leaves (on the statement's channel)
    departs = ctx.notice_rule("eob-2026-11").departs
    channel = {s["statement_id"]: s["channel"] for s in _statements(ctx)}
    assert all(n["notice_due"] < departs[channel[n["statement_id"]]].isoformat() for n in notices)


def _correct_one_line(ctx) -> str:  # type: ignore[no-untyped-def]
    """Move one dollar from discount to plan paid on a paid line: still reconciles, new content."""
    path = ctx.settings.extracts_dir / PERIOD / "claims_part1.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    accepted = {line.claim_id for c in iter_composed(run_dir(ctx.settings, "eob-2026-11"), 0, PERIOD,
                                                     notices=NOTICES,
                                                     statement_ids=ctx.statement_ids("eob-2026-11"))
                for line in c.statement.lines}
    row = next(r for r in rows if r["claim_id"] in accepted and r["status"] == "paid"
               and float(r["discount"]) >= 1)
    row["discount"] = f"{float(row['discount']) - 1:.2f}"
    row["plan_paid"] = f"{float(row['plan_paid']) + 1:.2f}"
    if row.get("adjustments"):  # the list says the same: one dollar less written off under CO-45
        row["adjustments"] = ";".join(
            f"CO-45:{float(entry.split(':')[1]) - 1:.2f}" if entry.startswith("CO-45:") else entry
            for entry in row["adjustments"].split(";"))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return row["member_id"]


def test_compose_records_each_statements_claim_numbers_as_keyed_hashes_only(ctx) -> None:  # type: ignore[no-untyped-def]
    """For the support desk's search by claim number (pipeline/ledger/claims.py): one row per claim
    and statement, keyed like nothing else; a statement left without them (a compose stopped in
    between) gets them from the next compose, and nothing is recorded twice."""
    from sqlalchemy import text

    from pipeline.ledger.claims import claim_hasher
    from pipeline.storage import iter_buckets

    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    statement_of = {s["member_id"]: s["statement_id"] for s in _statements(ctx)}
    digest = claim_hasher(ctx.settings.statement_id_key.get_secret_value().encode())
    work = run_dir(ctx.settings, "eob-2026-11")
    expected = {(digest(claim), statement_of[member])
                for shard in range(ctx.settings.shards)
                for _, lines in iter_buckets(work, shard, ["member_id", "claim_id"])
                for member, claim in zip(lines["member_id"].to_pylist(), lines["claim_id"].to_pylist(),
                                         strict=True)}

    def recorded() -> set[tuple[str, str]]:
        with ctx.ledger.begin() as conn:
            rows = conn.execute(text("SELECT claim_hash, statement_id FROM statement_claims"))
            return {(r[0], r[1]) for r in rows}

    assert recorded() == expected and {sid for _, sid in expected} == set(statement_of.values())
    assert all(len(h) == 32 and not h.startswith("C") for h, _ in expected)
    lost = sorted(statement_of.values())[:3]
    with ctx.ledger.begin() as conn:
        for sid in lost:
            conn.execute(text("DELETE FROM statement_claims WHERE statement_id = :s"), {"s": sid})
    assert compose_stage(ctx, PERIOD)["inserted"] == 0
    assert recorded() == expected


def test_a_corrected_extract_reissues_only_the_changed_statement(ctx) -> None:  # type: ignore[no-untyped-def]
    ingest_stage(ctx, PERIOD)
    first = compose_stage(ctx, PERIOD)
    member = _correct_one_line(ctx)
    ingest_stage(ctx, PERIOD)
    second = compose_stage(ctx, PERIOD)
    assert (second["inserted"], second["reissued"], second["unchanged"]) == (1, 1, first["statements"] - 1)
    versions = ctx.ledger.fetch("compose_versions_for_member", period=PERIOD, member_id=member)
    assert [v["version"] for v in versions] == [1, 2]
    old, new = versions
    assert new["replaces"] == old["statement_id"] == _sid(ctx, member, 1)
    assert old["status"] == Status.SUPERSEDED and new["status"] == Status.COMPOSED
    closed = ctx.ledger.timeline(old["statement_id"])[-1]
    assert (closed["event"], closed["from_status"], closed["to_status"]) == (
        "superseded", "composed", "superseded")
    assert closed["detail"] == {"by": new["statement_id"]}
    assert "reissue" in [e["event"] for e in ctx.ledger.timeline(new["statement_id"])]
    rendered = {c.statement.member.member_id: c.statement
                for shard in range(2) for c in iter_composed(run_dir(ctx.settings, "eob-2026-11"), shard,
                                                             PERIOD, notices=NOTICES,
                                                             statement_ids=ctx.statement_ids("eob-2026-11"))}
    statement = rendered[member]
    assert (statement.statement_id, statement.version, statement.replaces) == (
        new["statement_id"], 2, old["statement_id"])
    third = compose_stage(ctx, PERIOD)
    assert (third["inserted"], third["reissued"]) == (0, 0)


def _unkeyed(member: str, version: int = 1) -> str:
    """A statement id as compose made it before ids were keyed."""
    return f"st-{PERIOD}-{hashlib.sha256(f'{member}|{PERIOD}|{version}'.encode()).hexdigest()[:16]}"


def test_a_run_composed_before_ids_were_keyed_recomposes_to_the_ids_it_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ledger from before keyed ids, whose run was composed with unkeyed ids: after the
    migration the run keeps its scheme, so re-composes (the same extract, a corrected one) and
    render's re-derivation give the ids it has, and nothing is composed twice."""
    (tmp_path / "ws").mkdir()
    settings = Settings(workspace=tmp_path / "ws", shards=2)
    generate_extract(settings.extracts_dir / PERIOD, members=120, period=PERIOD, seed=4)
    ledger = Ledger.open(settings.ledger_dsn, migrate=False)
    keyed_from = next(m.version for m in migrations(ledger.dialect) if m.name == "statement_id_scheme")
    ledger.migrate(upto=keyed_from - 1)
    before = Context(settings, ledger, open_store(settings.objects_url))
    ingest_stage(before, PERIOD)
    with monkeypatch.context() as patch:  # compose as it was: ids an unkeyed hash, no scheme kept
        patch.setattr(Context, "statement_ids", lambda self, run_id: StatementIds(UNKEYED_IDS, b""))
        # nor the day a flagged claim's statement leaves (a later migration's column)
        patch.setattr(ingest_module._ShardPlan, "add_prompt_notices", lambda *args: None)
        # nor the claim numbers' hashes (a later migration's table)
        patch.setattr(ingest_module._ShardPlan, "add_claims", lambda *args: None)
        first = compose_stage(before, PERIOD)
    ledger.close()
    ctx = open_context(settings)  # migrates the ledger
    old = _statements(ctx)
    assert len(old) == first["inserted"] > 100
    assert all(s["statement_id"] == _unkeyed(s["member_id"]) for s in old)
    assert ctx.ledger.statement_id_scheme("eob-2026-11") == UNKEYED_IDS

    shutil.rmtree(run_dir(settings, "eob-2026-11") / "statements")  # render without compose's choices
    derived = {c.statement.statement_id for shard in range(2) for c in iter_composed(
        run_dir(settings, "eob-2026-11"), shard, PERIOD, notices=NOTICES,
        statement_ids=ctx.statement_ids("eob-2026-11"))}
    assert derived == {s["statement_id"] for s in old}
    again = compose_stage(ctx, PERIOD)
    assert (again["inserted"], again["reissued"], again["unchanged"]) == (0, 0, len(old))
    assert _statements(ctx) == old
    assert not ctx.ledger.fetch("compose_statements_without_claims", run_id="eob-2026-11", shard=0)

    member = _correct_one_line(ctx)
    ingest_stage(ctx, PERIOD)
    corrected = compose_stage(ctx, PERIOD)
    assert (corrected["inserted"], corrected["reissued"]) == (1, 1)
    now = _statements(ctx)
    assert len(now) == len(old) + 1
    assert len({(s["member_id"], s["version"]) for s in now}) == len(now)
    replaced, reissued = [s for s in now if s["member_id"] == member]
    assert (replaced["statement_id"], reissued["statement_id"]) == (_unkeyed(member), _unkeyed(member, 2))
    assert reissued["replaces"] == replaced["statement_id"]
    ctx.ledger.close()


def test_a_new_run_gets_keyed_ids(ctx) -> None:  # type: ignore[no-untyped-def]
    ingest_stage(ctx, PERIOD)
    assert ctx.ledger.statement_id_scheme("eob-2026-11") == KEYED_IDS
    compose_stage(ctx, PERIOD)
    key = ctx.settings.statement_id_key.get_secret_value().encode()
    for s in _statements(ctx):
        assert s["statement_id"] == make_statement_id(s["member_id"], PERIOD, s["version"], key=key)
        assert s["statement_id"] != _unkeyed(s["member_id"], s["version"])


def test_a_rendered_version_replaced_before_it_is_queued_never_goes_out(ctx) -> None:  # type: ignore[no-untyped-def]
    from pipeline.ledger import Transition

    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    ctx.ledger.apply([Transition(s["statement_id"], Status.RENDERED, "rendered") for s in _statements(ctx)])
    member = _correct_one_line(ctx)
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    old, new = ctx.ledger.fetch("compose_versions_for_member", period=PERIOD, member_id=member)
    assert (old["status"], new["status"]) == (Status.SUPERSEDED, Status.COMPOSED)
    closed = ctx.ledger.timeline(old["statement_id"])[-1]
    assert (closed["from_status"], closed["to_status"]) == ("rendered", "superseded")
    assert {s["status"] for s in _statements(ctx) if s["member_id"] != member} == {Status.RENDERED}


def test_a_superseded_version_is_neither_a_failure_nor_owed_a_delivery(ctx) -> None:  # type: ignore[no-untyped-def]
    ingest_stage(ctx, PERIOD)
    first = compose_stage(ctx, PERIOD)
    member = _correct_one_line(ctx)
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    old_id, new_id = _sid(ctx, member, 1), _sid(ctx, member, 2)
    with ctx.ledger.begin() as conn:  # as if everything else had been rendered and sent
        from sqlalchemy import text

        conn.execute(text("UPDATE statements SET status = 'sent' WHERE status = 'composed'"))
    summary = report_stage(ctx, PERIOD)
    assert summary["failed_checks"] == []
    assert (summary["statements"], summary["superseded"], summary["failed"]) == (
        first["statements"] + 1, 1, 0)
    assert summary["rendered"] == summary["sent"] == first["statements"]
    html = Path(summary["html"]).read_text()
    assert "every superseded statement is replaced by a newer version" in html and "✘" not in html
    assert f"<td><code>{old_id}</code></td><td>superseded</td>" in html
    with Path(summary["csv"]).open(newline="", encoding="utf-8") as handle:
        csv_rows = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
    assert (csv_rows["superseded"], csv_rows["failed"], csv_rows["status_superseded"]) == ("1", "0", "1")
    # a superseded version without the version that replaces it would not reconcile
    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET replaces = NULL WHERE statement_id = :s"), {"s": new_id})
    assert report_stage(ctx, PERIOD)["failed_checks"] == [
        "every superseded statement is replaced by a newer version or withdrawn"]


def _drop_members(ctx, members: list[str]) -> None:  # type: ignore[no-untyped-def]
    """A corrected extract without these members' claim lines (re-keyed or withdrawn claims)."""
    path = ctx.settings.extracts_dir / PERIOD / "claims_part1.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["member_id"] not in members)


def _set_status(ctx, statement_id: str, status: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = :status WHERE statement_id = :s"),
                     {"status": status, "s": statement_id})


def test_a_member_dropped_from_the_corrected_extract_is_withdrawn_not_sent(ctx) -> None:  # type: ignore[no-untyped-def]
    """The claims on that statement were withdrawn or now belong to someone else: a version not
    yet out (rendered, or queued to a pool) never goes out; one already sent is flagged once for
    follow-up and keeps its status; a failed one is left alone. When the lines come back, the
    withdrawn members get a new version and the sent one is reinstated."""
    ingest_stage(ctx, PERIOD)
    first = compose_stage(ctx, PERIOD)
    rendered, queued, sent, failed = sorted(s["member_id"] for s in _statements(ctx))[:4]
    ids = {m: _sid(ctx, m, 1) for m in (rendered, queued, sent, failed)}
    for member, status in ((rendered, "rendered"), (queued, "queued"), (sent, "sent"), (failed, "failed")):
        _set_status(ctx, ids[member], status)
    original = (ctx.settings.extracts_dir / PERIOD / "claims_part1.csv").read_bytes()
    _drop_members(ctx, [rendered, queued, sent, failed])
    ingest_stage(ctx, PERIOD)
    second = compose_stage(ctx, PERIOD)
    assert (second["withdrawn"], second["withdrawn_after_release"], second["inserted"]) == (2, 1, 0)
    for member, was in ((rendered, "rendered"), (queued, "queued")):
        assert ctx.ledger.statement(ids[member])["status"] == Status.SUPERSEDED
        closed = ctx.ledger.timeline(ids[member])[-1]
        assert (closed["event"], closed["from_status"], closed["to_status"]) == (
            "withdrawn", was, "superseded")
    assert ctx.ledger.statement(ids[sent])["status"] == "sent"
    assert ctx.ledger.timeline(ids[sent])[-1]["event"] == "withdrawn_after_release"
    assert ctx.ledger.statement(ids[failed])["status"] == "failed"
    assert "withdrawn_after_release" not in [e["event"] for e in ctx.ledger.timeline(ids[failed])]
    work = run_dir(ctx.settings, "eob-2026-11")
    to_render = {c.statement.member.member_id for shard in range(2)
                 for c in iter_composed(work, shard, PERIOD, notices=NOTICES,
                                        statement_ids=ctx.statement_ids("eob-2026-11"))}
    assert not to_render & {rendered, queued, sent, failed}
    again = compose_stage(ctx, PERIOD)  # nothing is withdrawn or flagged twice
    assert (again["withdrawn"], again["withdrawn_after_release"]) == (0, 0)
    assert [e["event"] for e in ctx.ledger.timeline(ids[sent])].count("withdrawn_after_release") == 1
    with ctx.ledger.begin() as conn:  # as if everything else had gone out
        from sqlalchemy import text

        conn.execute(text("UPDATE statements SET status = 'sent' WHERE status = 'composed'"))
    summary = report_stage(ctx, PERIOD)
    assert summary["failed_checks"] == []
    assert (summary["superseded"], summary["withdrawn"], summary["withdrawn_after_release"]) == (2, 2, 1)
    html = Path(summary["html"]).read_text()
    assert f"<td><code>{ids[rendered]}</code></td><td>before release</td><td>superseded</td>" in html
    assert f"<td><code>{ids[sent]}</code></td><td>after release</td><td>sent</td>" in html
    # the claims come back (the correction was itself a mistake)
    (ctx.settings.extracts_dir / PERIOD / "claims_part1.csv").write_bytes(original)
    ingest_stage(ctx, PERIOD)
    back = compose_stage(ctx, PERIOD)
    assert (back["inserted"], back["reissued"], back["unchanged"]) == (2, 2, first["statements"] - 2)
    for member in (rendered, queued):
        versions = ctx.ledger.fetch("compose_versions_for_member", period=PERIOD, member_id=member)
        assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "composed")]
    assert ctx.ledger.timeline(ids[sent])[-1]["event"] == "reinstated"
    with ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE statements SET status = 'sent' WHERE status = 'composed'"))
    summary = report_stage(ctx, PERIOD)
    assert summary["failed_checks"] == []  # withdrawn, then replaced: explained
    assert summary["withdrawn_after_release"] == 0  # reinstated: nothing to follow up


def test_withdrawing_a_statement_whose_send_is_in_doubt_or_that_went_out_meanwhile_flags_it(  # type: ignore[no-untyped-def]
        ctx) -> None:
    """A queued statement whose send task stopped mid-transaction may be with the member: closed, so
    it is not sent again, and flagged. One that went out after compose read its status is flagged."""
    from pipeline.ledger import Transition
    from pipeline.stages import withdrawals

    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    doubt, moved_on = [s["statement_id"] for s in _statements(ctx)][:2]
    for statement_id in (doubt, moved_on):
        ctx.ledger.apply([Transition(statement_id, Status.RENDERED, "rendered"),
                          Transition(statement_id, Status.QUEUED, "queued")])
    ctx.ledger.record_event(doubt, "send_attempt", {"pool": "pool_a"})
    read_earlier = [dict(ctx.ledger.statement(sid) or {}) for sid in (doubt, moved_on)]
    ctx.ledger.apply([Transition(moved_on, Status.SENT, "sent")])  # the send task got there first
    assert withdrawals.withdraw(ctx, read_earlier, set()) == (1, 2)
    assert ctx.ledger.statement(doubt)["status"] == Status.SUPERSEDED
    assert ctx.ledger.timeline(doubt)[-1]["event"] == "withdrawn_in_doubt"  # closed and flagged at once
    assert ctx.ledger.statement(moved_on)["status"] == "sent"
    assert ctx.ledger.timeline(moved_on)[-1]["event"] == "withdrawn_after_release"


def test_statements_withdrawn_before_do_not_count_against_the_limit_again(ctx) -> None:  # type: ignore[no-untyped-def]
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    with ctx.ledger.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE statements SET status = 'sent'"))
    members = sorted(s["member_id"] for s in _statements(ctx))
    _drop_members(ctx, members[:12])
    ingest_stage(ctx, PERIOD)
    wide = replace(ctx, settings=ctx.settings.model_copy(update={"compose_withdraw_limit": 0.5}))
    assert compose_stage(wide, PERIOD)["withdrawn_after_release"] == 12
    _drop_members(ctx, members[:17])  # five more: within the default limit on their own
    ingest_stage(ctx, PERIOD)
    assert compose_stage(ctx, PERIOD)["withdrawn_after_release"] == 5


def test_compose_refuses_to_withdraw_more_than_the_limit_allows(ctx) -> None:  # type: ignore[no-untyped-def]
    """A delivery missing many members looks like a partial one: compose changes nothing (not
    even the reissues the same delivery brings) until ops confirm it by raising the limit."""
    from pipeline.stages.withdrawals import WithdrawalRefused

    ingest_stage(ctx, PERIOD)
    first = compose_stage(ctx, PERIOD)
    changed = _correct_one_line(ctx)
    members = sorted(s["member_id"] for s in _statements(ctx) if s["member_id"] != changed)
    dropped = members[:30]
    _drop_members(ctx, dropped)
    ingest_stage(ctx, PERIOD)
    refused = (f"2026-11: the extract has no claim lines for 30 of the {first['statements']} members who "
               "already have a statement, more than the 12 EOB_COMPOSE_WITHDRAW_LIMIT allows; nothing was "
               "changed")
    with pytest.raises(WithdrawalRefused, match=refused):
        compose_stage(ctx, PERIOD)
    statements = _statements(ctx)
    assert len(statements) == first["statements"] and {s["status"] for s in statements} == {Status.COMPOSED}
    ctx = replace(ctx, settings=ctx.settings.model_copy(update={"compose_withdraw_limit": 0.3}))
    done = compose_stage(ctx, PERIOD)
    assert (done["withdrawn"], done["reissued"]) == (30, 1)


def test_a_period_keeps_the_shard_count_it_started_with(ctx) -> None:  # type: ignore[no-untyped-def]
    """A member's statements live in one shard: changing EOB_SHARDS mid-period would make every
    moved member look new (or gone), so both stages refuse with what to do."""
    from pipeline.stages.context import ShardCountChanged

    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    three = replace(ctx, settings=ctx.settings.model_copy(update={"shards": 3}))
    keep = "2026-11 was started with 2 shards and EOB_SHARDS is now 3: keep EOB_SHARDS=2 for this period"
    with pytest.raises(ShardCountChanged, match=keep):
        ingest_stage(three, PERIOD)
    with pytest.raises(ShardCountChanged, match=keep):
        compose_stage(three, PERIOD)
    assert compose_stage(ctx, PERIOD)["withdrawn"] == 0


def test_lookup_shows_a_superseded_statement_and_what_replaced_it(  # type: ignore[no-untyped-def]
        ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    member = _correct_one_line(ctx)
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    monkeypatch.setenv("EOB_WORKSPACE", str(ctx.settings.workspace))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["lookup", "--member", member, "--actor", "support:test",
                                      "--reference", "CALL-1", "--purpose", "statement not received"])
    assert result.exit_code == 0, result.output
    old_id, new_id = _sid(ctx, member, 1), _sid(ctx, member, 2)
    assert f"{old_id} · {PERIOD} · version 1 · status superseded" in result.output
    assert f"{new_id} · {PERIOD} · version 2 · status composed" in result.output
    assert f"by: {new_id}" in result.output and f"replaces: {old_id}" in result.output


def test_a_sent_statement_stays_sent_when_a_correction_replaces_it(ctx) -> None:  # type: ignore[no-untyped-def]
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    member = _correct_one_line(ctx)
    old_id = _sid(ctx, member, 1)
    for status, event in ((Status.RENDERED, "rendered"), (Status.QUEUED, "queued"), (Status.SENT, "sent")):
        assert ctx.ledger.transition(old_id, status, event)
    ingest_stage(ctx, PERIOD)
    assert compose_stage(ctx, PERIOD)["reissued"] == 1
    versions = ctx.ledger.fetch("compose_versions_for_member", period=PERIOD, member_id=member)
    assert [(v["version"], v["status"]) for v in versions] == [(1, "sent"), (2, "composed")]
    assert "superseded" in [e["event"] for e in ctx.ledger.timeline(old_id)]


def test_a_suppressed_address_gets_paper(ctx) -> None:  # type: ignore[no-untyped-def]
    path = ctx.settings.extracts_dir / PERIOD / "members.csv"
    members = list(csv.DictReader(path.open(encoding="utf-8")))
    ingest_stage(ctx, PERIOD)
    baseline = {c.statement.member.member_id: c for shard in range(2) for c in iter_composed(
        run_dir(ctx.settings, "eob-2026-11"), shard, PERIOD, notices=NOTICES,
        statement_ids=ctx.statement_ids("eob-2026-11"))}
    target = next(m for m in members
                  if m["member_id"] in baseline and baseline[m["member_id"]].channel == "email")
    secret = ctx.settings.verp_secret.get_secret_value()
    ctx.ledger.execute("insert_suppression", address_hash=address_hash(target["email"], secret),
                       cause="hard_bounce", statement_id=None, at=ctx.ledger.now())
    compose_stage(ctx, PERIOD)
    row = ctx.ledger.statement(_sid(ctx, target["member_id"]))
    assert row is not None and (row["channel"], row["paper_reason"]) == ("paper", "suppressed")


def test_extract_ready_sees_the_period_folder(ctx) -> None:  # type: ignore[no-untyped-def]
    from pipeline.stages import extract_ready_stage

    ctx = replace(ctx, now=lambda: utc_now() + timedelta(minutes=11))  # past the quiet period
    assert extract_ready_stage(ctx, PERIOD)
    assert not extract_ready_stage(ctx, "2026-12")  # no folder yet
    empty = ctx.settings.extracts_dir / "2027-01"
    (empty / "still-uploading").mkdir(parents=True)
    (empty / ".members.csv.part").write_text("x")
    (empty / "README.txt").write_text("x")
    assert not extract_ready_stage(ctx, "2027-01")  # empty of extract files
    (empty / "members.csv").write_text("member_id\n")
    assert extract_ready_stage(ctx, "2027-01")


def test_extract_ready_waits_until_files_are_quiet_and_the_marker_is_there(  # type: ignore[no-untyped-def]
        ctx, caplog: pytest.LogCaptureFixture) -> None:
    """A file still being written is not read: the sensor waits for the quiet period to pass
    since the last change, and for the delivery's marker file when one is configured."""
    from pipeline.ingest import open_extract
    from pipeline.stages import extract_ready_stage

    folder = ctx.settings.extracts_dir / PERIOD

    def last_change() -> datetime:
        return datetime.fromtimestamp(max(p.stat().st_ctime for p in folder.iterdir()), UTC)

    written = last_change()
    clock = {"now": written + timedelta(minutes=4)}
    ctx = replace(ctx, now=lambda: clock["now"],
                  settings=ctx.settings.model_copy(update={"extract_ready_marker": "_SUCCESS"}))
    caplog.set_level(logging.INFO, logger="pipeline.stages.ingest")
    assert not extract_ready_stage(ctx, PERIOD)
    assert caplog.records[-1].waiting_for == (  # the task log says what the sensor waits for
        "a file changed 4 minute(s) ago; waiting until none has changed for 10 minutes")
    clock["now"] = written + timedelta(minutes=10)
    assert not extract_ready_stage(ctx, PERIOD)  # quiet long enough, but the marker is missing
    assert caplog.records[-1].waiting_for == "the delivery's marker file is not there yet"
    (folder / "_SUCCESS").write_text("")
    assert extract_ready_stage(ctx, PERIOD)
    time.sleep(0.01)
    with sorted(folder.glob("claims*"))[0].open("a") as claims:  # the transfer writes again
        claims.write("\n")
    assert not extract_ready_stage(ctx, PERIOD)
    clock["now"] = last_change() + timedelta(minutes=10)
    assert extract_ready_stage(ctx, PERIOD)
    assert open_extract(folder, ctx.settings.workspace / "x").claims  # ingest ignores the marker
    ctx.settings = ctx.settings.model_copy(update={"extract_quiet_minutes": 0})
    clock["now"] = written - timedelta(hours=1)  # a file stamped ahead of this clock: 0 means now
    assert extract_ready_stage(ctx, PERIOD)


def test_a_marker_named_like_an_extract_file_is_refused() -> None:
    with pytest.raises(ValueError, match="'done.json' would be read as part of the extract"):
        Settings(extract_ready_marker="done.json")


def test_a_file_copied_in_with_an_old_timestamp_still_counts_as_just_changed(tmp_path: Path) -> None:
    """`cp -p` and many transfer tools keep the sender's modification time (old, or ahead of this
    clock): the quiet period runs from when the file landed here."""
    from pipeline.ingest import local_arrival

    folder = tmp_path / PERIOD
    folder.mkdir()
    stamps = {"claims.csv": utc_now() - timedelta(days=2), "members.csv": utc_now() + timedelta(days=2)}
    for name, stamp in stamps.items():
        (folder / name).write_text("id\n")
        os.utime(folder / name, (stamp.timestamp(), stamp.timestamp()))
    arrival = local_arrival(folder, None)
    assert arrival.waiting_for(utc_now(), timedelta(minutes=10)) is not None
    assert arrival.waiting_for(utc_now() + timedelta(minutes=10), timedelta(minutes=10)) is None


def test_extract_ready_follows_a_file_url(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pipeline.stages import extract_ready_stage

    root = tmp_path / "drop"
    ctx = SimpleNamespace(settings=Settings(workspace=tmp_path / "ws", extracts_url=f"file://{root}",
                                            extract_quiet_minutes=0), now=utc_now)
    assert not extract_ready_stage(ctx, PERIOD)  # type: ignore[arg-type]
    generate_extract(root / PERIOD, members=5, period=PERIOD, seed=1)
    assert extract_ready_stage(ctx, PERIOD)  # type: ignore[arg-type]


# -- a failed ingest changes nothing, and compose and render refuse the period ----------------
RUN = "eob-2026-11"
INGEST_OUTPUTS = ("lines", "members.parquet", "plans.parquet", "quarantine", "ingest.json")


def _ingest_outputs(ctx) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    work = run_dir(ctx.settings, RUN)
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and p.relative_to(work).parts[0] in INGEST_OUTPUTS}


def _accounts(ctx) -> tuple[list[dict], list[dict]]:  # type: ignore[no-untyped-def,type-arg]
    return (ctx.ledger.fetch("ingest_files_for_run", run_id=RUN),
            ctx.ledger.fetch("quarantine_reasons_for_run", run_id=RUN))


def _drop_column(path: Path, column: str) -> str:
    """Damage a claims file the way a broken export does: a column missing from the header."""
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(f"{column},", "", 1), encoding="utf-8")
    return original


def test_a_reingest_refused_half_way_keeps_the_previous_ingest_whole(ctx) -> None:  # type: ignore[no-untyped-def]
    """A corrected delivery whose second claims file is refused after the first was read: the
    previous canonical lines, member file, quarantine and ledger accounts stay exactly as they
    were, compose and render refuse the period (they would otherwise work from lines that are not
    the delivery's), and once the file is fixed the correction goes through as usual."""
    from pipeline.stages import ExtractRefused, IngestNotSucceeded, NeedsOperator, render_stage

    ingest_stage(ctx, PERIOD)
    first = compose_stage(ctx, PERIOD)
    before, accounts, statements = _ingest_outputs(ctx), _accounts(ctx), _statements(ctx)
    assert {name.split("/")[0] for name in before} == set(INGEST_OUTPUTS)
    _correct_one_line(ctx)  # in claims_part1.csv, read before claims_part2.csv is refused
    part2 = ctx.settings.extracts_dir / PERIOD / "claims_part2.csv"
    original = _drop_column(part2, "billed")

    with pytest.raises(ExtractRefused, match=r"claims_part2\.csv: missing column\(s\) billed") as refused:
        ingest_stage(ctx, PERIOD)
    assert isinstance(refused.value, NeedsOperator)  # the DAG fails the task without retries
    assert _ingest_outputs(ctx) == before
    assert _accounts(ctx) == accounts
    assert [p.name for p in ctx.settings.work_dir.iterdir()] == [RUN]  # no staging folder left
    state = ctx.ledger.ingest_state(RUN)
    assert state["ingest_state"] == "failed"
    assert state["ingest_error"] == "claims_part2.csv: missing column(s) billed"
    refusal = (r"^the latest ingest of 2026-11 failed \(.*\): claims_part2\.csv: missing column\(s\) "
               r"billed\. {} refuses the period until an ingest of it succeeds: .*run ingest again$")
    with pytest.raises(IngestNotSucceeded, match=refusal.format("Compose")):
        compose_stage(ctx, PERIOD)
    for shard in (0, 1):
        with pytest.raises(IngestNotSucceeded, match=refusal.format("Render")):
            render_stage(ctx, PERIOD, shard)
    assert _statements(ctx) == statements  # nothing composed, rendered or withdrawn meanwhile

    part2.write_text(original, encoding="utf-8")
    ingest_stage(ctx, PERIOD)
    assert ctx.ledger.ingest_state(RUN)["ingest_state"] == "succeeded"
    assert _ingest_outputs(ctx) != before
    second = compose_stage(ctx, PERIOD)
    assert (second["reissued"], second["unchanged"], second["withdrawn"]) == (1, first["statements"] - 1, 0)


def test_compose_and_render_refuse_a_period_whose_first_ingest_failed(ctx) -> None:  # type: ignore[no-untyped-def]
    """Instead of composing and rendering 0 statements as if all were well."""
    from pipeline.stages import ExtractRefused, IngestNotSucceeded, render_stage

    (ctx.settings.extracts_dir / PERIOD / "members.csv").unlink()
    with pytest.raises(ExtractRefused, match=r"^the 2026-11 extract was refused: members\.csv: not found"):
        ingest_stage(ctx, PERIOD)
    assert not (run_dir(ctx.settings, RUN) / "lines").exists()
    failed = r"^the latest ingest of 2026-11 failed \(.*\): members\.csv: not found.* {} refuses .*again$"
    with pytest.raises(IngestNotSucceeded, match=failed.format("Compose")):
        compose_stage(ctx, PERIOD)
    with pytest.raises(IngestNotSucceeded, match=failed.format("Render")):
        render_stage(ctx, PERIOD, 0)
    assert _statements(ctx) == []
    never = "^2026-10 has not been ingested: run ingest for 2026-10 first"
    with pytest.raises(IngestNotSucceeded, match=never):
        compose_stage(ctx, "2026-10")


def test_an_unreachable_s3_extract_is_left_to_the_retries(  # type: ignore[no-untyped-def]
        ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection S3 refuses may work on the next try: not a refused extract (which the DAG
    fails at once), and the ledger keeps no failure for a run that never started."""
    import socket

    from pipeline.ingest import ExtractFileError, ExtractUnavailable
    from pipeline.stages import NeedsOperator

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s3 = replace(ctx, settings=ctx.settings.model_copy(update={
        "extracts_url": "s3://eob-drop/insurer", "s3_endpoint_url": f"http://127.0.0.1:{port}"}))
    unreachable = r"^s3://eob-drop/insurer/2026-11/: S3 could not be reached .*a retry may succeed$"
    with pytest.raises(ExtractUnavailable, match=unreachable) as caught:
        ingest_stage(s3, PERIOD)
    assert not isinstance(caught.value, NeedsOperator | ExtractFileError)
    assert ctx.ledger.ingest_state(RUN) is None


def _notices_for_run_starting(tmp_path: Path, started: datetime) -> tuple[Context, set[str], dict]:  # type: ignore[type-arg]
    """Ingest and compose the same extract with the run starting at `started`: the claims
    flagged for a prompt notice, and the accepted lines' adverse claims with their channel."""
    (tmp_path / "ws").mkdir(parents=True)
    context = open_context(Settings(workspace=tmp_path / "ws", shards=2), now=lambda: started)
    generate_extract(context.settings.extracts_dir / PERIOD, members=120, period=PERIOD, seed=4)
    ingest_stage(context, PERIOD)
    compose_stage(context, PERIOD)
    flagged = {n["claim_id"] for n in context.ledger.fetch("ingest_prompt_notices_for_run",
                                                           run_id="eob-2026-11")}
    from pipeline.compose.reasons import is_adverse

    adverse: dict[str, tuple[date, str]] = {}  # claim -> its earliest denied or reduced line's receipt
    for shard in range(2):
        for c in iter_composed(run_dir(context.settings, "eob-2026-11"), shard, PERIOD,
                               notices=context.notice_rule("eob-2026-11"),
                               statement_ids=context.statement_ids("eob-2026-11")):
            for line in c.statement.lines:
                if is_adverse(line):  # denied, partial, or paid with a reduction code
                    known = adverse.get(line.claim_id, (line.received_date, c.channel))
                    adverse[line.claim_id] = (min(known[0], line.received_date), c.channel)
    return context, flagged, adverse


@pytest.mark.parametrize(("started", "email", "paper"), [
    # on schedule: ready at noon (6 h after compose), email that day, paper the next business day
    (datetime(2026, 12, 7, 6, tzinfo=UTC), date(2026, 12, 7), date(2026, 12, 8)),
    # a late extract, composed on Christmas Eve at 18:00: ready after midnight on the holiday,
    # emailed that day; on paper the next batch is Monday the 28th, mailed Tuesday the 29th
    (datetime(2026, 12, 24, 18, tzinfo=UTC), date(2026, 12, 25), date(2026, 12, 29)),
])
def test_prompt_notices_are_the_claims_whose_statement_leaves_after_their_due_date(
        tmp_path: Path, started: datetime, email: date, paper: date) -> None:
    """Measured against the day the statement actually leaves on its channel (paper: the
    vendor's cut-off and mail days, holidays), not the date printed on it."""
    ctx, flagged, adverse = _notices_for_run_starting(tmp_path, started)
    try:
        leaves = {"email": email, "paper": paper}
        expected = {claim for claim, (received, channel) in adverse.items()
                    if received + timedelta(days=30) < leaves[channel]}
        assert flagged == expected and expected
        rows = ctx.ledger.fetch("ingest_prompt_notices_for_run", run_id="eob-2026-11")
        assert {(row["channel"], row["statement_leaves"]) for row in rows} <= {
            ("email", email.isoformat()), ("paper", paper.isoformat())}
        assert {row["statement_id"] for row in rows} == {
            s["statement_id"] for s in _statements(ctx) if s["prompt_notice"]}
    finally:
        ctx.ledger.close()


def test_a_late_extract_flags_more_claims(tmp_path: Path) -> None:
    """The same extract composed three weeks late: its statements reach more claims too late."""
    on_time, flagged_on_time, _ = _notices_for_run_starting(tmp_path / "a",
                                                            datetime(2026, 12, 3, 6, tzinfo=UTC))
    late, flagged_late, _ = _notices_for_run_starting(tmp_path / "b", datetime(2026, 12, 24, 6, tzinfo=UTC))
    on_time.ledger.close()
    late.ledger.close()
    assert flagged_on_time < flagged_late
