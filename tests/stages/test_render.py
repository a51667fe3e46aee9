"""The render stage on a generated run: stored PDFs, ledger facts, and idempotent re-runs.

A small month is generated, ingested and composed for real (SQLite ledger, local object
store); then shard 0 is rendered, re-rendered unchanged, re-rendered after its content
changed, and rendered with a failing statement.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from sqlalchemy import text

from pipeline.deadlines import NoticeRule
from pipeline.demo.generate import generate_extract
from pipeline.ledger.statuses import Status
from pipeline.periods import statement_date
from pipeline.settings import Settings
from pipeline.stages import compose_stage, ingest_stage, open_context, render_stage
from pipeline.stages.context import Context, run_id_for
from tests.support.canary import CANARY_LAST, CANARY_STRINGS, plant_canary
from tests.support.factories import extract_member_password, extract_recipients

PERIOD = "2026-11"
NOTICES = NoticeRule.leaving_on(30, statement_date(PERIOD))  # leaving on the statement date
SHARD = 0


@dataclass
class CountingStore:
    """The real local store, counting uploads (a skipped statement must not upload)."""

    inner: object
    puts: int = 0

    def put(self, key: str, data: bytes, content_type: str):  # type: ignore[no-untyped-def]
        self.puts += 1
        return self.inner.put(key, data, content_type)  # type: ignore[attr-defined]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = Settings(workspace=tmp_path / "ws", shards=2, render_batch_size=7)
    generate_extract(settings.extracts_dir / PERIOD, members=40, period=PERIOD, seed=11)
    context = open_context(settings)
    ingest_stage(context, PERIOD)
    compose_stage(context, PERIOD)
    context.store = CountingStore(context.store)  # type: ignore[assignment]
    return context


def _rows(ctx: Context) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = ctx.ledger.fetch("statement_ids_in_shard", run_id=run_id_for(PERIOD), shard=SHARD)
    return {row["statement_id"]: ctx.ledger.statement(row["statement_id"]) for row in rows}


def test_first_run_stores_encrypted_email_copies_and_plain_print_copies(ctx: Context) -> None:
    result = render_stage(ctx, PERIOD, SHARD)
    rows = _rows(ctx)
    assert result["rendered"] == len(rows) > 0 and result["failed"] == 0
    members = extract_recipients(ctx.settings.extracts_dir / PERIOD)
    for statement_id, row in rows.items():
        assert row["status"] == Status.RENDERED and row["pages"] >= 1
        key = row["object_key"] or row["print_key"]
        data = ctx.store.get(key)
        assert len(data) == row["size_bytes"]
        events = ctx.ledger.timeline(statement_id)
        rendered = [e for e in events if e["event"] == "rendered"][0]
        assert len(rendered["detail"]["content_sha256"]) == 64
        if row["channel"] == "email":
            member = members[row["member_id"]]
            password = extract_member_password(member, ctx.settings.password_policy)
            with pikepdf.open(io.BytesIO(data), password=password) as pdf:
                assert len(pdf.pages) == row["pages"] and pdf.encryption.R == 6
            with pytest.raises(pikepdf.PasswordError):
                pikepdf.open(io.BytesIO(data))
            birthday = extract_member_password(member, "dob_mmddyyyy")
            with pytest.raises(pikepdf.PasswordError):  # the default is more than the birthday
                pikepdf.open(io.BytesIO(data), password=birthday)
        else:
            with pikepdf.open(io.BytesIO(data)) as pdf:  # the print copy has no password
                assert len(pdf.pages) == row["pages"]


def test_rerun_skips_unchanged_statements_without_encrypting_or_uploading(ctx: Context) -> None:
    first = render_stage(ctx, PERIOD, SHARD)
    uploads = ctx.store.puts  # type: ignore[attr-defined]
    before = _rows(ctx)
    again = render_stage(ctx, PERIOD, SHARD)
    assert again["unchanged"] == first["rendered"]
    assert again["rendered"] == again["rerendered"] == 0
    assert ctx.store.puts == uploads  # type: ignore[attr-defined]
    assert _rows(ctx) == before


def test_routing_as_rendered_queues_each_batch_when_it_is_stored(ctx: Context) -> None:
    """The monthly DAG renders with route=True: every statement leaves the shard queued for a pool
    or for paper, batch by batch (the first batch is queued before the shard has finished)."""
    first_batch_queued_at: list[int] = []
    real_put = ctx.store.put

    def put(key: str, data: bytes, content_type: str):  # type: ignore[no-untyped-def]
        if not first_batch_queued_at:
            queued = [r for r in _rows(ctx).values() if r["status"] in (Status.QUEUED, Status.PAPER_QUEUED)]
            if queued:
                first_batch_queued_at.append(ctx.store.puts)  # type: ignore[attr-defined]
        return real_put(key, data, content_type)

    ctx.store.put = put  # type: ignore[method-assign]
    result = render_stage(ctx, PERIOD, SHARD, route=True)
    rows = _rows(ctx)
    assert result["rendered"] == len(rows) > ctx.settings.render_batch_size
    for row in rows.values():
        expected = Status.QUEUED if row["channel"] == "email" else Status.PAPER_QUEUED
        assert row["status"] == expected
        assert (row["pool"] is not None) == (row["channel"] == "email")
    assert first_batch_queued_at and first_batch_queued_at[0] <= ctx.settings.render_batch_size + 1


def test_changed_content_is_rerendered_in_place_with_its_own_event(ctx: Context) -> None:
    render_stage(ctx, PERIOD, SHARD)
    statement_id, row = sorted(_rows(ctx).items())[0]
    with ctx.ledger.begin() as conn:  # as if rendered with older wording
        conn.execute(text("UPDATE statement_events SET detail = :detail "
                          "WHERE statement_id = :id AND event = 'rendered'"),
                     {"detail": json.dumps({"content_sha256": "0" * 64}), "id": statement_id})
    again = render_stage(ctx, PERIOD, SHARD)
    assert again["rerendered"] == 1
    after = ctx.ledger.statement(statement_id)
    assert after is not None and after["status"] == Status.RENDERED
    key = row["object_key"] or row["print_key"]
    assert (after["object_key"] or after["print_key"]) == key
    if row["channel"] == "email":  # fresh encryption: new bytes, new digest
        assert after["sha256"] != row["sha256"]
    events = [e["event"] for e in ctx.ledger.timeline(statement_id)]
    assert events[-1] == "rerendered"
    assert render_stage(ctx, PERIOD, SHARD)["rerendered"] == 0  # and now it is current


def test_statements_past_rendered_are_never_touched(ctx: Context) -> None:
    render_stage(ctx, PERIOD, SHARD)
    statement_id = sorted(_rows(ctx))[0]
    assert ctx.ledger.transition(statement_id, Status.QUEUED, "queued", pool="pool_a")
    again = render_stage(ctx, PERIOD, SHARD)
    assert again["skipped"] == 1
    assert ctx.ledger.statement(statement_id)["status"] == Status.QUEUED  # type: ignore[index]


@pytest.fixture
def canary_ctx(tmp_path: Path) -> Context:
    """A generated month whose first member carries a planted name, street and date of birth."""
    settings = Settings(workspace=tmp_path / "ws", shards=1, render_batch_size=7)
    generate_extract(settings.extracts_dir / PERIOD, members=12, period=PERIOD, seed=11)
    plant_canary(settings.extracts_dir / PERIOD)
    context = open_context(settings)
    ingest_stage(context, PERIOD)
    compose_stage(context, PERIOD)
    return context


def test_a_layout_failure_quoting_member_data_fails_that_statement_only_and_leaks_nothing(
        canary_ctx: Context, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """Deep in the engine, encoding a string fails with an error that quotes it, as a codec or a
    font library would. The string is the canary member's own name: the statement must fail
    with a reason naming only its id and the error type, the other statements must render, and
    no log line, console output, ledger row, event or audit entry may carry the canary."""
    import logging

    import pipeline.render.canvas as canvas

    encode = canvas.text_ops

    def strict(text: str, font: str, size: float, used: set[str]) -> str:
        if CANARY_LAST in text:
            raise UnicodeEncodeError("latin-1", text, 0, len(text), f"cannot encode {text!r}")
        return encode(text, font, size, used)

    monkeypatch.setattr(canvas, "text_ops", strict)
    caplog.set_level(logging.DEBUG)
    result = render_stage(canary_ctx, PERIOD, 0)

    ledger = canary_ctx.ledger
    statements = [ledger.statement(r["statement_id"]) for r in ledger.fetch(
        "statement_ids_in_shard", run_id=run_id_for(PERIOD), shard=0)]
    failed = [s for s in statements if s is not None and s["status"] == Status.FAILED]
    assert result["failed"] == 1 and len(failed) == 1
    assert result["rendered"] == len(statements) - 1
    victim = failed[0]
    assert victim["last_reason"] == (f"RenderError: statement {victim['statement_id']}: "
                                     "layout failed (UnicodeEncodeError)")
    output = capfd.readouterr()
    seen = [caplog.text, output.out, output.err, json.dumps(statements, default=str),
            json.dumps(ledger.timeline(victim["statement_id"]), default=str),
            json.dumps(ledger.fetch("audit_chain"), default=str)]
    for private in CANARY_STRINGS:
        assert not [text for text in seen if private in text], private


def _members(ctx: Context) -> list[dict]:  # type: ignore[type-arg]
    import csv

    path = ctx.settings.extracts_dir / PERIOD / "members.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_statement_compose_put_on_paper_for_a_suppressed_address_is_printed_not_emailed(
    tmp_path: Path
) -> None:
    """Render re-derives statements without the suppression list: the channel compose recorded
    decides the variant (the print copy, no password) and the route (paper, not a pool)."""
    import csv

    from pipeline.compose import iter_composed
    from pipeline.delivery.suppression import address_hash
    from pipeline.stages import route_stage, run_dir

    (tmp_path / "ws").mkdir()
    ctx = open_context(Settings(workspace=tmp_path / "ws", shards=1))
    generate_extract(ctx.settings.extracts_dir / PERIOD, members=30, period=PERIOD, seed=4)
    ingest_stage(ctx, PERIOD)
    run_id = run_id_for(PERIOD)
    emailed = {c.recipient_id for c in iter_composed(
        run_dir(ctx.settings, run_id), 0, PERIOD, notices=NOTICES,
        statement_ids=ctx.statement_ids(run_id)) if c.channel == "email"}
    members = csv.DictReader((ctx.settings.extracts_dir / PERIOD / "members.csv").open(encoding="utf-8"))
    target = next(m for m in members if m["member_id"] in emailed)
    ctx.ledger.execute("insert_suppression", address_hash=address_hash(
        target["email"], ctx.settings.verp_secret.get_secret_value()), cause="hard_bounce",
        statement_id=None, at=ctx.ledger.now())
    compose_stage(ctx, PERIOD)
    sid = ctx.statement_ids(run_id)(target["member_id"], PERIOD, 1)
    render_stage(ctx, PERIOD, 0, route=True)
    route_stage(ctx, PERIOD)
    row = ctx.ledger.statement(sid)
    assert (row["status"], row["channel"], row["pool"]) == (Status.PAPER_QUEUED, "paper", None)
    assert row["print_key"] and not row["object_key"]
    with pikepdf.open(io.BytesIO(ctx.store.get(row["print_key"]))) as pdf:  # no password
        assert len(pdf.pages) >= 1
