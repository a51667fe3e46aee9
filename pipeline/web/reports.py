"""The run reports, for finance: totals only, read-only, and no member lookup.

Finance needs each monthly run's totals (statements, channels, queues, notices, costs, savings),
never a member's statement. The run's own HTML report is written for operations and lists
statement ids and claim numbers (prompt notices, reissued and withdrawn statements), so it is
neither listed nor served here, and neither are the per-statement CSVs beside it. What finance
gets is built from the run's summary CSV (`eob-YYYY-MM-summary.csv`, one count or amount per
line): a page of its figures, and the file itself to download. A figure that is not a number is
left out, so nothing but a total can reach the page. Finance also gets the finance and
deliverability reports (`pipeline.web.finance_files`), which hold aggregates only: the page as
written (inline SVG charts, no scripts), served under the report policy that keeps its inline
styles and runs nothing, and its workbook and table CSVs to download. A file is served only when
its name is one of those listed: no path from the request reaches the file system. Each look is
audited as an export.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from pipeline.desk.audit import DeskAction, record
from pipeline.desk.permissions import Permission
from pipeline.web.access import Visitor, require
from pipeline.web.finance_files import MEDIA_TYPES, FinanceFile, finance_file, finance_reports
from pipeline.web.headers import REPORT_POLICY
from pipeline.web.pages import words
from pipeline.web.state import desk_of

router = APIRouter()
REPORTS = Depends(require(Permission.VIEW_REPORTS))

SUMMARY_FILE = re.compile(r"^(eob-(\d{4}-\d{2}))-summary\.csv$")
"""A run's summary CSV: group 1 the run id, group 2 its period."""

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Claim lines", (
        ("lines_read", "Claim lines read"), ("lines_accepted", "Accepted"),
        ("lines_quarantined", "Quarantined (set aside for correction)"))),
    ("Statements", (
        ("members", "Members in the extract"), ("statements", "Statements made"),
        ("rendered", "PDFs made"), ("own_statements", "Patients' own statements"),
        ("failed", "Failed"), ("superseded", "Replaced before sending (superseded)"),
        ("reissued", "Reissued by a corrected extract"), ("withdrawn", "Withdrawn"),
        ("withdrawn_after_release", "Withdrawn after they may have gone out"))),
    ("Email", (
        ("accepted_by_relay", "Accepted by the mail relay"), ("sent", "Emailed"),
        ("bounced", "Bounced"), ("queue_retry", "Waiting for a retry"),
        ("queue_verification", "Waiting for a confirmed address"),
        ("queue_paper", "Waiting for the print batch"))),
    ("Paper", (
        ("paper", "On paper"), ("print_batches", "Print batches"), ("paper_mailed", "Mailed"),
        ("paper_returned", "Returned to sender"),
        ("paper_exceptions", "Waiting for a corrected mailing address"))),
    ("Prompt-payment notices", (
        ("prompt_notice", "Statements with a prompt-payment notice"),
        ("prompt_notice_claims", "Claims needing a notice"), ("notices_due", "Notices due"),
        ("notices_sent", "Notices sent"), ("notices_on_paper", "Notices on paper"),
        ("notices_waiting", "Notices waiting"), ("notices_late", "Notices late"),
        ("prompt_notice_most_days_late", "Most days late"))),
    ("Accumulators", (
        ("accumulator_overrun", "Statements flagged over an accumulator limit"),
        ("held_accumulator_overrun", "Held for it"))),
    ("Costs (US dollars)", (
        ("email_cost_usd", "Email"), ("paper_cost_usd", "Paper"),
        ("savings_vs_all_paper_usd", "Saved against sending everything on paper"))),
)
"""The summary's figures in the order and words finance reads them; any other figure (the count
of each status, a figure added later) follows under "Other figures"."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run's summary file as the list shows it."""

    run_id: str
    period: str
    file_name: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: str


def run_summaries(folder: Path) -> list[RunSummary]:
    """The runs with a summary CSV in `folder`, newest period first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = SUMMARY_FILE.match(path.name)
        if match and path.is_file():
            stat = path.stat()
            found.append(RunSummary(match[1], match[2], path.name, stat.st_size,
                                    datetime.fromtimestamp(stat.st_mtime, UTC)))
    return sorted(found, key=lambda run: run.period, reverse=True)


def read_figures(path: Path) -> dict[str, str]:
    """metric -> value of a summary CSV (columns run_id, metric, value), numbers only: a value
    that is not a number is dropped rather than shown."""
    figures: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            metric, value = (row.get("metric") or "").strip(), (row.get("value") or "").strip()
            if metric and _number(value):
                figures[metric] = value
    return figures


def sections(figures: dict[str, str]) -> list[tuple[str, list[Figure]]]:
    """The figures grouped for the page: `SECTIONS` first, then every other figure."""
    shown: set[str] = set()
    grouped: list[tuple[str, list[Figure]]] = []
    for title, labels in SECTIONS:
        rows = [Figure(label, figures[metric]) for metric, label in labels if metric in figures]
        shown.update(metric for metric, _ in labels)
        if rows:
            grouped.append((title, rows))
    statuses = [Figure(words(metric.removeprefix("status_")).capitalize(), value)
                for metric, value in sorted(figures.items()) if metric.startswith("status_")]
    others = [Figure(words(metric).capitalize(), value) for metric, value in sorted(figures.items())
              if metric not in shown and not metric.startswith("status_")]
    if statuses:
        grouped.append(("Statements by status now", statuses))
    if others:
        grouped.append(("Other figures", others))
    return grouped


def _number(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


@router.get("/reports")
def reports_page(request: Request, visitor: Annotated[Visitor, REPORTS]) -> Response:
    desk = desk_of(request)
    return desk.pages.render("reports.html", visitor, title="Reports",
                             runs=run_summaries(desk.settings.reports_dir),
                             finance=finance_reports(desk.settings.reports_dir))


@router.get("/reports/{name}")
def report(request: Request, name: str, visitor: Annotated[Visitor, REPORTS]) -> Response:
    """A run's totals as a page (`/reports/eob-2026-11`) or its summary CSV (the file's name), or
    a finance report's page, workbook or table CSV (the name the list gives it)."""
    desk = desk_of(request)
    finance = finance_file(desk.settings.reports_dir, name)
    if finance is not None:
        record(desk.ctx.ledger, actor=visitor.username, action=DeskAction.EXPORT,
               source=visitor.source, detail={"report": finance.name})
        return _served(finance)
    runs = run_summaries(desk.settings.reports_dir)
    run = next((run for run in runs if name in (run.run_id, run.file_name)), None)
    if run is None:
        return desk.pages.render("error.html", visitor, status=404, title="No such report",
                                 message="There is no report with that name. Go back to the list of reports.")
    record(desk.ctx.ledger, actor=visitor.username, action=DeskAction.EXPORT, source=visitor.source,
           detail={"report": name})
    path = desk.settings.reports_dir / run.file_name
    if name == run.file_name:
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=run.file_name)
    return desk.pages.render("report.html", visitor, title=f"Run report {run.period}", run=run,
                             sections=sections(read_figures(path)))


def _served(file: FinanceFile) -> Response:
    """A finance report's page as written, under the report policy (its own inline styles and
    SVG; no script, frame or form); a workbook or CSV as a download."""
    if file.kind == "html":
        return HTMLResponse(file.path.read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": REPORT_POLICY})
    return FileResponse(file.path, media_type=MEDIA_TYPES[file.kind], filename=file.name)
