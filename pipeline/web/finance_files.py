"""The finance and deliverability reports in the reports folder, as the desk lists and serves them.

`eob report` and the run's last task write, per period's run or per calendar month,
`finance-period-YYYY-MM.html` (inline SVG charts, no scripts), `finance-period-YYYY-MM.xlsx` and
a folder `finance-period-YYYY-MM-csv/` of one CSV per table (`finance-month-YYYY-MM.*` for a
month). They hold aggregates only. Files are found by exact name pattern; a table's CSV is
offered as `finance-period-YYYY-MM-<table>.csv`, the name its download keeps. A request's name
is only ever compared with the names found here: it never becomes a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

REPORT_FILE = re.compile(r"^(finance-(period|month)-(\d{4}-\d{2}))\.(html|xlsx)$")
"""A finance report's page or workbook: group 1 the report, 2 its scope, 3 its period or month,
4 the kind."""
CSV_FOLDER = re.compile(r"^(finance-(period|month)-(\d{4}-\d{2}))-csv$")
TABLE_FILE = re.compile(r"^([a-z][a-z0-9_]*)\.csv$")

Kind = Literal["html", "xlsx", "csv"]
MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class FinanceFile:
    """One file of a finance report: the name the desk offers it under, and where it lies."""

    name: str
    kind: Kind
    path: Path
    size: int
    modified: float

    @property
    def label(self) -> str:
        """What the link says: the table's name for a CSV."""
        if self.kind == "csv":
            return self.name.rsplit("-", 1)[-1].removesuffix(".csv").replace("_", " ")
        return {"html": "Report", "xlsx": "Workbook"}[self.kind]


@dataclass(frozen=True, slots=True)
class FinanceReport:
    """One finance report (a period's run or a month) and its files."""

    report: str
    scope: str
    key: str
    modified: datetime
    page: FinanceFile | None
    workbook: FinanceFile | None
    tables: tuple[FinanceFile, ...]

    @property
    def title(self) -> str:
        return f"Run of {self.key}" if self.scope == "period" else f"Month {self.key}"

    def files(self) -> list[FinanceFile]:
        return [file for file in (self.page, self.workbook, *self.tables) if file is not None]


def finance_reports(folder: Path) -> list[FinanceReport]:
    """The finance reports in `folder`, newest period or month first (a run before its month)."""
    if not folder.is_dir():
        return []
    found: dict[str, _Found] = {}
    for path in folder.iterdir():
        match = REPORT_FILE.match(path.name)
        if match and path.is_file():
            entry = found.setdefault(match[1], _Found(match[2], match[3]))
            kind: Kind = "html" if match[4] == "html" else "xlsx"
            entry.files[kind] = _file(path.name, kind, path)
            continue
        match = CSV_FOLDER.match(path.name)
        if match and path.is_dir():
            entry = found.setdefault(match[1], _Found(match[2], match[3]))
            entry.tables = [_file(f"{match[1]}-{table[1]}.csv", "csv", child)
                            for child in sorted(path.iterdir())
                            if (table := TABLE_FILE.match(child.name)) and child.is_file()]
    reports = [entry.report(report) for report, entry in found.items()]
    return sorted(reports, key=lambda r: (r.key, r.scope == "period"), reverse=True)


def finance_file(folder: Path, name: str) -> FinanceFile | None:
    """The file offered under exactly `name`, or None."""
    if not name.startswith("finance-"):
        return None
    return next((file for report in finance_reports(folder) for file in report.files()
                 if file.name == name), None)


def _file(name: str, kind: Kind, path: Path) -> FinanceFile:
    stat = path.stat()
    return FinanceFile(name, kind, path, stat.st_size, stat.st_mtime)


@dataclass(slots=True)
class _Found:
    scope: str
    key: str
    files: dict[Kind, FinanceFile] = field(default_factory=dict)
    tables: list[FinanceFile] = field(default_factory=list)

    def report(self, report: str) -> FinanceReport:
        every = [*self.files.values(), *self.tables]
        newest = max((file.modified for file in every), default=0.0)
        return FinanceReport(report, self.scope, self.key, datetime.fromtimestamp(newest, UTC),
                             self.files.get("html"), self.files.get("xlsx"), tuple(self.tables))
