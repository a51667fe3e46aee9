"""The run reports, for finance: aggregate figures only, read-only, and no member lookup.

Only the aggregate files of each run are listed and served: the HTML report and its summary
CSV (`eob-YYYY-MM.html`, `eob-YYYY-MM-summary.csv`). The per-statement CSVs written beside
them (prompt notices, accumulator overruns) name statements and claims, which is member-level
data finance has no need for, so they are neither listed nor served. A file is served only
when its name is one of those listed: no path from the request ever reaches the file system.
Each download is audited as an export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from pipeline.desk.audit import record
from pipeline.desk.permissions import Permission
from pipeline.web.access import Visitor, require
from pipeline.web.state import desk_of

router = APIRouter()

AGGREGATE_REPORT = re.compile(r"^eob-(\d{4}-\d{2})(\.html|-summary\.csv)$")
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox")
"""A served run report keeps its own inline styles; it still runs nothing and frames nothing."""


@dataclass(frozen=True, slots=True)
class ReportFile:
    name: str
    period: str
    kind: str
    size: int
    modified: datetime


def report_files(folder: Path) -> list[ReportFile]:
    """The aggregate run reports in `folder`, newest period first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = AGGREGATE_REPORT.match(path.name)
        if match and path.is_file():
            stat = path.stat()
            found.append(ReportFile(
                path.name, match[1], "Run report (web page)" if match[2] == ".html" else "Summary (CSV)",
                stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
    return sorted(found, key=lambda f: (f.period, f.name), reverse=True)


@router.get("/reports")
def reports_page(request: Request,
                 visitor: Annotated[Visitor, Depends(require(Permission.VIEW_REPORTS))]) -> Response:
    desk = desk_of(request)
    return desk.pages.render("reports.html", visitor, title="Reports",
                             reports=report_files(desk.settings.reports_dir))


@router.get("/reports/{name}")
def report_file(request: Request, name: str,
                visitor: Annotated[Visitor, Depends(require(Permission.VIEW_REPORTS))]) -> Response:
    desk = desk_of(request)
    listed = {report.name for report in report_files(desk.settings.reports_dir)}
    if name not in listed:
        return desk.pages.render("error.html", visitor, status=404, title="No such report",
                                 message="There is no report with that name. Go back to the list of reports.")
    record(desk.ctx.ledger, actor=visitor.username, action="export", source=visitor.source,
           detail={"report": name})
    path = desk.settings.reports_dir / name
    if name.endswith(".html"):
        return FileResponse(path, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": REPORT_POLICY})
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=name)
