"""The reason-code tables: group-coded CARCs (templates/reason_codes.csv) and remark codes,
RARCs (templates/remark_codes.csv), with the plain language a statement prints for them.

Ingest checks a line's reason code and adjustments against them, the FHIR mapping groups bare
CARCs through them, and compose explains each code with them; so they sit below all three and
import only the templates' location.

Each CARC row says what kind of adjustment it is, which decides where its amount is booked and
whether it makes the line an adverse benefit determination:

- `cost_share` (PR-1, PR-2, PR-3): deductible, coinsurance, copay; not adverse;
- `contractual` (CO-45, CO-42, PI-45, CO-253): the discount, the provider's write-off under its
  contract or fee schedule; not adverse;
- `adverse` (CO-50, PR-96, ...): PR not covered (the member may owe it), CO/PI/OA `denied` (the
  member does not owe it); an adverse benefit determination, so it names a plan provision;
- `informational` (OA-23): booked nowhere, it explains an amount in another column (the other
  plan's payment); not adverse.

and who pays (`who_pays`) follows the group: PR the member may owe it, CO the provider writes it
off, PI the payer reduced it, OA another payer's part (OA-23: neither "you owe" nor "you do not owe").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.templates import TEMPLATES_DIR

__all__ = ["ADJUSTMENT_KINDS", "COST_SHARE_COLUMNS", "WHO_PAYS", "ReasonTable", "ReasonTableError",
           "RemarkTable", "reason_table", "remark_table"]

ADJUSTMENT_KINDS = ("cost_share", "contractual", "adverse", "informational")
WHO_PAYS = {"PR": "member", "CO": "provider", "PI": "payer", "OA": "other_payer"}
"""Who bears an adjustment, by group code: the reason table's `who_pays` must agree."""
COST_SHARE_COLUMNS = {"PR-1": "deductible", "PR-2": "coinsurance", "PR-3": "copay"}
"""The cost-share CARCs and the line amount each one is."""


@dataclass(frozen=True, slots=True)
class ReasonTable:
    """templates/reason_codes.csv: group-coded CARC → kind, who pays, plan provision and
    plain-language text, one version per file."""

    version: str
    rows: dict[str, dict[str, str]]

    @property
    def codes(self) -> list[str]:
        return sorted(self.rows)

    @property
    def with_provision(self) -> list[str]:
        return sorted(code for code, row in self.rows.items() if row["plan_provision"].strip())

    def of_kind(self, *kinds: str) -> list[str]:
        """The codes of the given kinds (ADJUSTMENT_KINDS)."""
        return sorted(code for code, row in self.rows.items() if row["kind"] in kinds)

    def kind(self, code: str) -> str:
        return self.rows[code]["kind"]

    def by_carc(self, carc: str) -> list[str]:
        """Group-coded entries for a bare CARC number ("45" → ["CO-45"])."""
        return sorted(code for code in self.rows if code.split("-", 1)[1] == carc)

    def booked_as(self, code: str) -> str | None:
        """The canonical line amount an adjustment with this code is part of (None: informational)."""
        if code in COST_SHARE_COLUMNS:
            return COST_SHARE_COLUMNS[code]
        kind = self.rows[code]["kind"]
        if kind == "informational":
            return None
        if code.startswith("PR-"):
            return "not_covered"
        return "discount" if kind == "contractual" else "denied"


@dataclass(frozen=True, slots=True)
class RemarkTable:
    """templates/remark_codes.csv: remark code (RARC) → plain-language text in en and es."""

    version: str
    rows: dict[str, dict[str, str]]

    @property
    def codes(self) -> list[str]:
        return sorted(self.rows)

    def text(self, code: str, language: str = "en") -> str:
        row = self.rows[code]
        return row.get(f"text_{language}") or row["text_en"]


class ReasonTableError(ValueError):
    """A reason-code table is malformed; the message names the row."""


def _read(path: Path) -> tuple[str, list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    versions = {row["table_version"] for row in rows}
    if len(versions) != 1:
        raise ReasonTableError(f"{path.name}: rows carry several table versions {sorted(versions)}")
    return versions.pop(), rows


@cache
def reason_table(path: Path = TEMPLATES_DIR / "reason_codes.csv") -> ReasonTable:
    version, rows = _read(path)
    table: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        code = row["code"]
        if code in table:
            raise ReasonTableError(f"{path.name}: row {number} repeats code {code}")
        if not row["text_en"].strip():
            raise ReasonTableError(f"{path.name}: row {number} has no English text")
        if row.get("kind") not in ADJUSTMENT_KINDS:
            raise ReasonTableError(f"{path.name}: row {number} has kind {row.get('kind')!r}, "
                                   f"not one of {', '.join(ADJUSTMENT_KINDS)}")
        group = code.split("-", 1)[0]
        if row["group"] != group or row.get("who_pays") != WHO_PAYS.get(group):
            raise ReasonTableError(f"{path.name}: row {number} ({code}): group {row['group']!r} and "
                                   f"who_pays {row.get('who_pays')!r} do not match the code's group")
        if (code in COST_SHARE_COLUMNS) != (row["kind"] == "cost_share"):
            raise ReasonTableError(f"{path.name}: row {number} ({code}): only PR-1, PR-2 and PR-3 "
                                   "are cost sharing")
        if row["kind"] == "adverse" and not row["plan_provision"].strip():
            raise ReasonTableError(f"{path.name}: row {number} ({code}) is adverse but names no "
                                   "plan provision")
        table[code] = row
    return ReasonTable(version, table)


@cache
def remark_table(path: Path = TEMPLATES_DIR / "remark_codes.csv") -> RemarkTable:
    version, rows = _read(path)
    table: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        if row["code"] in table:
            raise ReasonTableError(f"{path.name}: row {number} repeats code {row['code']}")
        if not row["text_en"].strip() or not row["text_es"].strip():
            raise ReasonTableError(f"{path.name}: row {number} needs English and Spanish text")
        table[row["code"]] = row
    return RemarkTable(version, table)
