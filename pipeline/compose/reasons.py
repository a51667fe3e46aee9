"""Why a line was not paid in full: every adjustment of every line, explained from the versioned
reason table, and whether the line is an adverse benefit determination.

A line carries a list of adjustments (group code, CARC, amount, optional RARC); a line from an
extract that predates the list carries one `reason_code`, which is read as a one-entry list. The
statement explains each distinct code once; who pays follows the group code (PR: the member may
owe; CO: the provider writes it off; OA: another party, e.g. OA-23 the other plan's payment,
informational; PI: the payer reduced it), which the renderer reads from the code itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pipeline.model import ClaimLine, ReasonExplanation
from pipeline.reason_codes import reason_table

LANGUAGES = ("en", "es")

ROUTINE_CODES = frozenset({"PR-1", "PR-2", "PR-3", "CO-45", "OA-23"})
"""Cost sharing, the contracted discount and the other plan's payment: never adverse by
themselves. Any other code the table ties to a plan provision is a denial or reduction."""


class UnknownReasonCode(LookupError):
    """A line carries a reason code the plain-language table does not explain."""


def explain_reason(code: str, language: str) -> ReasonExplanation:
    """A reason code's plain-language text for a statement (English where the language has none)."""
    return _explain_reason(code, language if language in LANGUAGES else "en")


@cache
def _explain_reason(code: str, language: str) -> ReasonExplanation:
    table = reason_table()
    if code not in table.rows:
        raise UnknownReasonCode(f"reason code {code} has no plain-language text in "
                                f"templates/reason_codes.csv (table version {table.version})")
    row = table.rows[code]
    text = row.get(f"text_{language}") or row["text_en"]
    return ReasonExplanation(code, text, row["member_may_owe"] == "1", row["plan_provision"])


def line_codes(line: ClaimLine) -> list[str]:
    """The line's group-coded reasons in the extract's order: every adjustment, then the
    line's main reason code when no adjustment names it."""
    codes = list(dict.fromkeys(adjustment.code for adjustment in line.adjustments))
    if line.reason_code and line.reason_code not in codes:
        codes.append(line.reason_code)
    return codes


def statement_codes(lines: Iterable[ClaimLine]) -> list[str]:
    """Every distinct reason code of the statement's lines, sorted (the codes table's order)."""
    return sorted({code for line in lines for code in line_codes(line)})


def is_reduction(code: str) -> bool:
    """A code that denies or reduces a benefit (it names a plan provision), not routine cost
    sharing or the contracted discount."""
    if code in ROUTINE_CODES:
        return False
    row = reason_table().rows.get(code)
    if row is None:
        return code.startswith("PI-")
    if row.get("kind"):  # the table says what kind of adjustment each code is
        return row["kind"] == "adverse"
    return bool(row["plan_provision"].strip())


def is_adverse(line: ClaimLine) -> bool:
    """An adverse benefit determination: a denied or partly paid line, an amount not paid
    because of a denial, or a paid (or adjusted) line carrying a reduction code. A pended line
    is not decided yet."""
    if line.status == "pended":
        return False
    if line.status in ("denied", "partial") or line.denied > 0:
        return True
    return any(is_reduction(code) for code in line_codes(line))
