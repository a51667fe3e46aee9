"""The finance report as an XLSX workbook (openpyxl): one sheet per table, cells typed (whole
numbers, money in a currency format, rates as percentages), the header row frozen."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from pipeline.report.figures import Figures
from pipeline.report.tables import tables

CURRENCY = '"$"#,##0.00'
PRICE = '"$"#,##0.000000'
PERCENT = "0.00%"


def write_workbook(f: Figures, path: Path) -> Path:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for table in tables(f):
        sheet = book.create_sheet(table.name[:31])
        sheet.append([c.label for c in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_value(row.get(c.key)) for c in table.columns])
            for column, cell in zip(table.columns, sheet[sheet.max_row], strict=True):
                cell.number_format = _format(column.kind, row.get(column.key))
        sheet.freeze_panes = "A2"
        for index, column in enumerate(table.columns, start=1):
            width = max([len(column.label), *(len(str(r.get(column.key, ""))) for r in table.rows)])
            sheet.column_dimensions[sheet.cell(1, index).column_letter].width = min(60, width + 2)
    book.save(path)
    return path


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _format(kind: str, value: Any) -> str:
    if kind == "money" or (kind == "text" and isinstance(value, Decimal)):
        return CURRENCY
    if kind == "price":
        return PRICE
    if kind == "rate":
        return PERCENT
    if kind == "int" or isinstance(value, int):
        return "#,##0"
    return "General"
