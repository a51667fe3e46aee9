"""`eob audit verify` and `eob audit report` on SQLite and PostgreSQL: an operator is told which
entry was tampered with and how, can catch a cut-off end with a recorded head, and a compliance
officer gets an access review with no member data in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.desk.audit import DeskAction, entries, record
from pipeline.ledger import Ledger
from tests.support.desk_accounts import add_statements


@pytest.fixture
def env(tmp_path: Path, ledger_url: str) -> dict[str, str]:
    return {"EOB_WORKSPACE": str(tmp_path / "ws"), "EOB_LEDGER_URL": ledger_url, "COLUMNS": "200"}


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    ledger = Ledger.open(ledger_url)
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 1)
    for n in range(4):
        record(ledger, actor="alice", action=DeskAction.SEARCH, source="10.0.0.7", detail={"n": n})
    yield ledger
    ledger.close()


def _eob(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=env)


def test_verify_prints_the_entries_and_the_head_of_an_intact_log(
        env: dict[str, str], ledger: Ledger) -> None:
    result = _eob(env, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "audit log intact: 4 entries" in result.output
    head = re.search(r"head ([0-9a-f]{64}) \(4 entries, last entry written (\S+) UTC", result.output)
    last = ledger.fetch("audit_chain")[-1]
    assert head is not None and (head[1], head[2]) == (last["hash"], last["at"][:19])
    assert "outside this database" in result.output


def test_verify_names_a_tampered_entry_and_fails(env: dict[str, str], ledger: Ledger) -> None:
    with ledger.begin() as conn:
        conn.execute(text("UPDATE audit_log SET detail = '{\"n\": 9}' WHERE seq = 2"))
    result = _eob(env, "audit", "verify")
    assert result.exit_code == 1
    assert "audit log BROKEN at entry 2 (modified)" in result.output
    assert "was changed after it was written" in result.output


def test_verify_names_a_deleted_entry(env: dict[str, str], ledger: Ledger) -> None:
    with ledger.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    result = _eob(env, "audit", "verify")
    assert result.exit_code == 1 and "BROKEN at entry 3 (deleted)" in result.output


def test_a_recorded_head_catches_a_cut_off_end(env: dict[str, str], ledger: Ledger) -> None:
    head = re.search(r"head ([0-9a-f]{64})", _eob(env, "audit", "verify").output)
    assert head is not None
    record(ledger, actor="bob", action=DeskAction.SIGN_IN, source=None)
    assert _eob(env, "audit", "verify", "--expect-head", head[1]).exit_code == 0
    with ledger.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    assert _eob(env, "audit", "verify").exit_code == 0, "a shorter chain is intact on its own"
    result = _eob(env, "audit", "verify", "--expect-head", head[1])
    assert result.exit_code == 1 and "(deleted)" in result.output
    assert "no longer in the audit log" in result.output


def test_report_writes_the_access_review_and_prints_its_summary(
        env: dict[str, str], ledger: Ledger, tmp_path: Path) -> None:
    add_statements(ledger, {"st-1": "M000009876"})
    record(ledger, actor="alice", action=DeskAction.VIEW_STATEMENT, source="10.0.0.7", statement_id="st-1")
    day = ledger.now()[:10]
    out = tmp_path / "review"
    result = _eob(env, "audit", "report", "--since", day, "--out", str(out), "--actor", "compliance")
    assert result.exit_code == 0, result.output
    assert f"access review {day} to now" in result.output and "audit log intact" in result.output
    assert "alice: 1 members, 1 statement views, 4 searches" in result.output
    assert "looks at members with no open contact: 1" in result.output
    html = out / f"access-review-{day}-now.html"
    assert html.is_file() and (out / f"access-review-{day}-now.csv").is_file()
    assert "M000009876" not in html.read_text() + result.output
    head = ledger.fetch("audit_chain")[-2]["hash"]  # the last entry before the export's own
    assert f"audit log head {head}" in result.output and head in html.read_text()
    assert head in (out / f"access-review-{day}-now.csv").read_text()
    export = entries(ledger, limit=1)[0]
    assert (export.actor, export.action, export.detail["report"]) == ("compliance", "export",
                                                                      "access_review")


def test_verify_refuses_a_head_that_is_not_one(env: dict[str, str]) -> None:
    result = _eob(env, "audit", "verify", "--expect-head", "abc123")
    assert result.exit_code == 2 and "64-character head" in result.output


def test_report_refuses_a_day_it_cannot_read(env: dict[str, str]) -> None:
    result = _eob(env, "audit", "report", "--since", "03/12/2026")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    backwards = _eob(env, "audit", "report", "--since", "2026-12-03", "--until", "2026-12-01")
    assert backwards.exit_code == 2 and "before --since" in backwards.output
