"""Why a line was not paid in full: every adjustment of every line, explained from the versioned
reason table, and whether the line is an adverse benefit determination.

A line carries a list of adjustments (group code, CARC, amount, optional RARC); a line from an
extract that predates the list carries one `reason_code`, which is read as a one-entry list. The
statement explains each distinct code once; who pays follows the group code (PR: the member may
owe; CO: the provider writes it off; OA: another party, e.g. OA-23 the other plan's payment,
informational; PI: the payer reduced it), which the renderer reads from the code itself.

Whether a line is adverse (`is_adverse`) is decided in `pipeline.reason_codes`, below both this
room and the renderer, so compose, the prompt notice and the tests share one definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pipeline.model import ClaimLine, ReasonExplanation
from pipeline.reason_codes import (
    column_suffix,
    is_adverse,
    is_reduction,
    line_codes,
    reason_table,
)

__all__ = ["UnknownReasonCode", "explain_reason", "is_adverse",
           "is_reduction", "line_codes", "statement_codes"]

class UnknownReasonCode(LookupError):
    """A line carries a reason code the plain-language table does not explain."""


def explain_reason(code: str, language: str) -> ReasonExplanation:
    """A reason code's plain-language text for a statement: the table's `text_<language>` and
    `plan_provision_<language>` columns ("-" written "_"), English where it has none."""
    return _explain_reason(code, language)


@cache
def _explain_reason(code: str, language: str) -> ReasonExplanation:
    table = reason_table()
    if code not in table.rows:
        raise UnknownReasonCode(f"reason code {code} has no plain-language text in "
                                f"templates/reason_codes.csv (table version {table.version})")
    row = table.rows[code]
    suffix = column_suffix(language)
    text = row.get(f"text_{suffix}") or row["text_en"]
    provision = row.get(f"plan_provision_{suffix}") or row["plan_provision"]  # English: the column itself
    return ReasonExplanation(code, text, row["member_may_owe"] == "1", provision)


def statement_codes(lines: Iterable[ClaimLine]) -> list[str]:
    """Every distinct reason code of the statement's lines, sorted (the codes table's order)."""
    return sorted({code for line in lines for code in line_codes(line)})
