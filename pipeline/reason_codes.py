"""The reason-code table: group-coded CARCs and the plain language a statement prints for them.

Ingest checks a line's reason code against it, the FHIR mapping groups bare CARCs through it,
and compose explains each code with it; so it sits below all three and imports only the
templates' location.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.templates import TEMPLATES_DIR

__all__ = ["ReasonTable", "ReasonTableError", "reason_table"]


@dataclass(frozen=True, slots=True)
class ReasonTable:
    """templates/reason_codes.csv: group-coded CARC → plain-language text, one version per file."""

    version: str
    rows: dict[str, dict[str, str]]

    @property
    def codes(self) -> list[str]:
        return sorted(self.rows)

    @property
    def with_provision(self) -> list[str]:
        return sorted(code for code, row in self.rows.items() if row["plan_provision"].strip())

    def by_carc(self, carc: str) -> list[str]:
        """Group-coded entries for a bare CARC number ("45" → ["CO-45"])."""
        return sorted(code for code in self.rows if code.split("-", 1)[1] == carc)


class ReasonTableError(ValueError):
    """The reason-code table is malformed; the message names the row."""


@cache
def reason_table(path: Path = TEMPLATES_DIR / "reason_codes.csv") -> ReasonTable:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    versions = {row["table_version"] for row in rows}
    if len(versions) != 1:
        raise ReasonTableError(f"{path.name}: rows carry several table versions {sorted(versions)}")
    table: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        if row["code"] in table:
            raise ReasonTableError(f"{path.name}: row {number} repeats code {row['code']}")
        if not row["text_en"].strip():
            raise ReasonTableError(f"{path.name}: row {number} has no English text")
        table[row["code"]] = row
    return ReasonTable(versions.pop(), table)
