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

from pipeline.model import ClaimLine
from pipeline.templates import TEMPLATES_DIR

__all__ = ["ADJUSTMENT_KINDS", "COST_SHARE_COLUMNS", "WHO_PAYS", "ReasonTable",
           "ReasonTableError", "RemarkTable", "column_suffix", "is_adverse", "is_reduction", "line_codes",
           "reason_table", "remark_table"]

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
    """templates/remark_codes.csv: remark code (RARC) → plain-language text per language
    (`text_en`, `text_es`, `text_zh_Hant`)."""

    version: str
    rows: dict[str, dict[str, str]]

    @property
    def codes(self) -> list[str]:
        return sorted(self.rows)

    def text(self, code: str, language: str = "en") -> str:
        """The remark's plain language in a statement language ("zh-Hant"), English where the
        table has none."""
        row = self.rows[code]
        return row.get(f"text_{column_suffix(language)}") or row["text_en"]


class ReasonTableError(ValueError):
    """A reason-code table is malformed; the message names the row."""


def column_suffix(language: str) -> str:
    """A statement language as the tables' column names carry it: "zh-Hant" → "zh_Hant"
    (`text_zh_Hant`, `plan_provision_zh_Hant`)."""
    return language.replace("-", "_")


def _language_columns(path: Path, fields: list[str], number: int, row: dict[str, str],
                      prefix: str, required: bool) -> None:
    """Every `<prefix>_<language>` column of the table is filled where `required`: a language
    the table is written in is written in for every row."""
    for name in fields:
        if name.startswith(prefix) and required and not (row.get(name) or "").strip():
            raise ReasonTableError(f"{path.name}: row {number} ({row['code']}) has no {name}")


def _read(path: Path) -> tuple[str, list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    fields = list(reader.fieldnames or ())
    for number, row in enumerate(rows, start=2):
        _language_columns(path, fields, number, row, "text_", True)
        provision = bool(row.get("plan_provision", "").strip())
        _language_columns(path, fields, number, row, "plan_provision_", provision)
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
        if not row["text_en"].strip() or not row["text_es"].strip():  # every text_ column: _read
            raise ReasonTableError(f"{path.name}: row {number} needs English and Spanish text")
        table[row["code"]] = row
    return RemarkTable(version, table)


# ------------------------------------------------------------------ what makes a line adverse
# One definition for compose (the statement's appeal rights), the prompt-notice renderer and
# the tests; ingest's `adverse` column applies the same rule to whole columns
# (pipeline/ingest/claim_rules.py).

def line_codes(line: ClaimLine) -> list[str]:
    """The line's group-coded reasons in the extract's order: every adjustment, then the
    line's main reason code when no adjustment names it."""
    codes = list(dict.fromkeys(adjustment.code for adjustment in line.adjustments))
    if line.reason_code and line.reason_code not in codes:
        codes.append(line.reason_code)
    return codes


def is_reduction(code: str) -> bool:
    """A code that denies or reduces a benefit: the table's kind `adverse` (it names a plan
    provision), as ingest's `adverse` column reads it; cost sharing, the contracted discount
    and the other plan's payment never are."""
    row = reason_table().rows.get(code)
    return row is not None and row["kind"] == "adverse"


def is_adverse(line: ClaimLine) -> bool:
    """An adverse benefit determination: a denied or partly paid line, an amount not paid
    because of a denial, or a paid (or adjusted) line carrying a reduction code. A pended line
    is not decided yet."""
    if line.status == "pended":
        return False
    if line.status in ("denied", "partial") or line.denied > 0:
        return True
    return any(is_reduction(code) for code in line_codes(line))
