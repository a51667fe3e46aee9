"""Finance's run reports: the totals of a run the pipeline really reported (the report stage over
the desk's world), as a page and as the summary spreadsheet, and the finance and deliverability
reports it writes beside them (page, workbook, table CSVs); never a statement id, claim number
or member id, although the operations report written beside them names all three."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import text

from pipeline.desk.audit import entries
from pipeline.stages import report_stage
from pipeline.stages.finance_report import finance_month_stage
from pipeline.web.headers import REPORT_POLICY
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


def _workbook_text(content: bytes) -> str:
    """Every part of an XLSX (cells, shared strings, sheet names, properties) as text."""
    with zipfile.ZipFile(io.BytesIO(content)) as workbook:
        return "\n".join(workbook.read(part).decode("utf-8", "replace") for part in workbook.namelist())


def test_finance_gets_the_finance_report_page_workbook_and_tables(desk: Desk) -> None:
    written = report_stage(desk.ctx, PERIOD)
    finance_month_stage(desk.ctx, PERIOD)
    identifiers = _identifiers(desk)
    assert identifiers and Path(written["finance_html"]).name == f"finance-period-{PERIOD}.html"

    finance = desk.as_user("finance")
    listing = finance.get("/reports")
    assert listing.status_code == 200
    names = [f"finance-{scope}-{PERIOD}.{kind}" for scope in ("period", "month") for kind in ("html", "xlsx")]
    tables = [f"finance-{scope}-{PERIOD}-{table}.csv" for scope in ("period", "month")
              for table in ("summary", "channels", "costs", "email_providers", "queues", "deadline")]
    for name in names + tables:
        assert f'href="/reports/{name}"' in listing.text, name

    page = finance.get(f"/reports/finance-period-{PERIOD}.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "Finance and deliverability" in page.text
    assert "<script" not in page.text.lower()
    assert page.headers["content-security-policy"] == REPORT_POLICY
    assert "script-src" not in page.headers["content-security-policy"] and "sandbox" in REPORT_POLICY
    assert "no-store" in page.headers["cache-control"]

    workbook = finance.get(f"/reports/finance-period-{PERIOD}.xlsx")
    assert workbook.status_code == 200 and workbook.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert f'filename="finance-period-{PERIOD}.xlsx"' in workbook.headers["content-disposition"]
    sheets = load_workbook(io.BytesIO(workbook.content), read_only=True)
    assert {"summary", "channels", "costs", "email_providers"} <= set(sheets.sheetnames)
    sheets.close()

    summary = finance.get(f"/reports/finance-period-{PERIOD}-summary.csv")
    assert summary.status_code == 200 and summary.headers["content-type"].startswith("text/csv")
    assert f'filename="finance-period-{PERIOD}-summary.csv"' in summary.headers["content-disposition"]
    assert summary.text.splitlines()[0] == "figure,value"
    assert re.search(rf"^statements,{written['statements']}\r?$", summary.text, re.MULTILINE)

    served = [listing.text, page.text, _workbook_text(workbook.content), summary.text]
    for name in names[1:] + tables:
        response = finance.get(f"/reports/{name}")
        assert response.status_code == 200, name
        served.append(_workbook_text(response.content) if name.endswith(".xlsx") else response.text)
    for body in served:
        assert not _named(identifiers, body)

    exports = [entry.detail for entry in entries(desk.ctx.ledger, actor="finance")]
    for name in (f"finance-period-{PERIOD}.html", f"finance-period-{PERIOD}.xlsx",
                 f"finance-period-{PERIOD}-summary.csv", f"finance-month-{PERIOD}-queues.csv"):
        assert {"report": name} in exports, name


def test_only_finance_gets_a_finance_report_and_only_by_a_listed_name(desk: Desk) -> None:
    report_stage(desk.ctx, PERIOD)
    identifiers = _identifiers(desk)
    served = (f"finance-period-{PERIOD}.html", f"finance-period-{PERIOD}.xlsx",
              f"finance-period-{PERIOD}-summary.csv")
    for user in ("agent", "auditor"):
        client = desk.as_user(user)
        assert client.get("/reports").status_code == 403
        for name in served:
            refused = client.get(f"/reports/{name}")
            assert refused.status_code == 403 and "Not allowed for your role" in refused.text, (user, name)
        assert not [entry for entry in entries(desk.ctx.ledger, actor=user)
                    if (entry.detail or {}).get("report")], user

    finance = desk.as_user("finance")
    for name in ("finance-period-2026-10.html", f"finance-month-{PERIOD}.pdf",
                 f"finance-period-{PERIOD}-nosuch.csv", f"finance-period-{PERIOD}-csv",
                 f"finance-period-{PERIOD}-csv%2Fsummary.csv", f"..%2Freports%2Ffinance-period-{PERIOD}.html",
                 f"finance-period-{PERIOD}.html%00", f"finance-period-{PERIOD}..html",
                 f"FINANCE-period-{PERIOD}.html", "finance-..%2F..%2Fledger.sqlite"):
        refused = finance.get(f"/reports/{name}")
        assert refused.status_code == 404 and not _named(identifiers, refused.text), name
    assert not [entry for entry in entries(desk.ctx.ledger, actor="finance")
                if (entry.detail or {}).get("report")], "a refused name is not recorded as an export"
