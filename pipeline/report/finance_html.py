"""The finance report written out: an HTML page with inline SVG charts, one CSV per table and
an XLSX workbook, all from the same figures (`pipeline.report.tables`)."""

from __future__ import annotations

import csv
from pathlib import Path

import jinja2

from pipeline.report.charts import all_charts
from pipeline.report.figures import Figures
from pipeline.report.tables import shown, tables
from pipeline.report.xlsx import write_workbook
from pipeline.templates import TEMPLATES_DIR


def report_name(f: Figures) -> str:
    return f"finance-{f.scope}-{f.key}"


def render_html(f: Figures) -> str:
    """The page: headline tiles, alerts, checks, charts and every table; no scripts and nothing
    fetched from elsewhere, so it reads the same offline or attached to an email."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "reports"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["shown"] = shown
    return env.get_template("finance.html.j2").render(
        f=f, totals=f.totals(), tables=tables(f), charts=all_charts(f))


def write_finance_report(f: Figures, folder: Path) -> dict[str, Path]:
    """Write the HTML, the CSV files (one per table) and the workbook; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    name = report_name(f)
    html = folder / f"{name}.html"
    html.write_text(render_html(f), encoding="utf-8")
    csv_folder = folder / f"{name}-csv"
    csv_folder.mkdir(exist_ok=True)
    for table in tables(f):
        with (csv_folder / f"{table.name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.label for c in table.columns])
            for row in table.rows:
                writer.writerow([_csv_cell(row.get(c.key), c.kind) for c in table.columns])
    xlsx = write_workbook(f, folder / f"{name}.xlsx")
    return {"html": html, "csv": csv_folder, "xlsx": xlsx}


def _csv_cell(value: object, kind: str) -> str:
    """CSV keeps plain numbers (no thousands separators) for spreadsheets to read."""
    if kind in ("money", "int") and value not in (None, ""):
        return str(value)
    if kind == "rate" and value not in (None, ""):
        return f"{float(value):.6f}"  # type: ignore[arg-type]
    return shown(value, kind)
