"""A patient's own statement in the ledger and at the support desk: named by recipient, never
by the service that made it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.demo.generate import generate_extract
from pipeline.recipients import mask_member_id, recipient_id
from pipeline.report import build_report
from pipeline.settings import Settings
from pipeline.stages import compose_stage, ingest_stage, open_context
from pipeline.stages.context import Context

PERIOD = "2026-11"


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "ws").mkdir()
    context = open_context(Settings(workspace=tmp_path / "ws", shards=2))
    generate_extract(context.settings.extracts_dir / PERIOD, members=400, period=PERIOD, seed=7)
    yield context
    context.ledger.close()


def _requests(ctx: Context) -> list[dict[str, str]]:
    path = ctx.settings.extracts_dir / PERIOD / "confidential_requests.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_patients_own_statements_are_ledger_rows_of_their_own(ctx: Context,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    with ctx.ledger.begin() as conn:
        from sqlalchemy import text

        query = text("SELECT statement_id, member_id FROM statements")
        rows = [dict(r._mapping) for r in conn.execute(query)]
    own = [r for r in rows if "~" in r["member_id"]]
    requested = {recipient_id(r["member_id"], r["patient_id"]) for r in _requests(ctx)}
    assert own and requested & {r["member_id"] for r in own}
    members = {r["member_id"] for r in rows}
    target = next(r for r in own if r["member_id"] in requested and r["member_id"].split("~")[0] in members)
    subscriber, patient = target["member_id"].split("~")

    monkeypatch.setenv("EOB_WORKSPACE", str(ctx.settings.workspace))
    monkeypatch.setenv("COLUMNS", "200")
    from pipeline.cli.main import app

    shown = CliRunner().invoke(app, ["lookup", target["statement_id"], "--actor", "support:test"])
    assert shown.exit_code == 0, shown.output
    assert f"recipient: patient's own statement, member {mask_member_id(subscriber)}" in shown.output
    assert patient not in shown.output  # ids masked, as the desk shows them
    for word in ("sensitive", "confidential", "behavioral", "substance", "reproductive"):
        assert word not in shown.output.lower()
    report = build_report(ctx.ledger, "eob-2026-11")
    assert report.summary()["own_statements"] == len(own)
    # the card's member id finds the subscriber's statements only, never a patient's own
    contact = ["--actor", "support:test", "--reference", "CALL-1", "--purpose", "Statement not received"]
    family = CliRunner().invoke(app, ["lookup", "--member", subscriber, *contact])
    assert family.exit_code == 0, family.output
    assert target["statement_id"] not in family.output
    assert "recipient: subscriber" in family.output and "patient's own statement" not in family.output
    alone = CliRunner().invoke(app, ["lookup", "--member", target["member_id"], *contact])
    assert target["statement_id"] in alone.output and "recipient: subscriber" not in alone.output
