"""Finance's run reports: the totals of a run the pipeline really reported (the report stage over
the desk's world), as a page and as the summary spreadsheet; never a statement id, claim number
or member id, although the operations report written beside them names all three."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from pipeline.desk.audit import entries
from pipeline.stages import report_stage
from tests.support.desk import PERIOD, RUN_ID
from tests.web.conftest import Desk


def _identifiers(desk: Desk) -> set[str]:
    with desk.ctx.ledger.begin() as conn:
        statements = {row[0] for row in conn.execute(text("SELECT statement_id FROM statements"))}
    return statements | desk.world.claim_ids | desk.world.member_ids


def _named(identifiers: set[str], text_: str) -> set[str]:
    return {name for name in identifiers if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text_)}


def test_finance_gets_the_runs_totals_and_no_statement_claim_or_member(desk: Desk) -> None:
    written = report_stage(desk.ctx, PERIOD)
    identifiers = _identifiers(desk)
    operations = Path(written["html"]).read_text(encoding="utf-8")
    notices = Path(written["html"]).with_name(f"{RUN_ID}-prompt-notices.csv").read_text(encoding="utf-8")
    assert _named(identifiers, operations) and _named(identifiers, notices), \
        "the operations report and the notices list name statements and claims: what must not leak"

    finance = desk.as_user("finance")
    listing = finance.get("/reports").text
    assert f'href="/reports/{RUN_ID}"' in listing and f'href="/reports/{RUN_ID}-summary.csv"' in listing
    assert f"{RUN_ID}.html" not in listing and "prompt-notices" not in listing and "overruns" not in listing

    page = finance.get(f"/reports/{RUN_ID}")
    assert page.status_code == 200
    statements = written["statements"]
    assert re.search(rf"Statements made</th><td class=\"number\">{statements}<", page.text)
    assert "Saved against sending everything on paper" in page.text
    served = finance.get(f"/reports/{RUN_ID}-summary.csv")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/csv")
    assert f"{RUN_ID},statements,{statements}" in served.text
    for body in (listing, page.text, served.text):
        assert not _named(identifiers, body)

    for name in (f"{RUN_ID}.html", f"{RUN_ID}-prompt-notices.csv", f"{RUN_ID}-accumulator-overruns.csv",
                 "..%2Fledger.sqlite", "eob-2026-10"):
        refused = finance.get(f"/reports/{name}")
        assert refused.status_code == 404 and not _named(identifiers, refused.text), name
    exports = [entry.detail for entry in entries(desk.ctx.ledger, actor="finance")]
    assert {"report": f"{RUN_ID}-summary.csv"} in exports and {"report": RUN_ID} in exports


def test_a_figure_that_is_not_a_number_is_left_out(desk: Desk) -> None:
    reports = desk.settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{RUN_ID}-summary.csv").write_text(
        "run_id,metric,value\n"
        f"{RUN_ID},statements,25\n{RUN_ID},paper_cost_usd,3.40\n{RUN_ID},odd_one,st-2026-11-abc\n")
    page = desk.as_user("finance").get(f"/reports/{RUN_ID}").text
    assert "25" in page and "3.40" in page
    assert "Odd one" not in page and "st-2026-11-abc" not in page
