"""What the claims table (claims_table.py) and the prompt notice share: a claim's status and
banner, the scaled section heading; and the codes table with who pays each code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from reportlab.lib.units import inch

from pipeline.model import ClaimLine, Statement
from pipeline.reason_codes import WHO_PAYS, remark_table
from pipeline.render.blocks import Block
from pipeline.render.canvas import CONTENT_WIDTH, WHITE, Theme
from pipeline.render.cells import CELL_PAD, Cell, Row, cell_lines
from pipeline.render.eob.words import Words
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid, heading_rows
from pipeline.render.text import text_width, wrap_text


def claim_status(lines: Sequence[ClaimLine]) -> str:
    """A claim's status from its lines: paid, denied, pended (nothing decided yet), adjusted
    (reprocessed, nothing denied), or partial (anything else mixed)."""
    statuses = {line.status for line in lines}
    if statuses == {"paid"}:
        return "paid"
    if statuses == {"denied"}:
        return "denied"
    if statuses == {"pended"}:
        return "pended"
    if "adjusted" in statuses and statuses <= {"adjusted", "paid"}:
        return "adjusted"
    return "partial"


def claim_banner(first: ClaimLine, words: Words, date_format: Callable[[date], str],
                 network_words: dict[str, str]) -> tuple[str, str]:
    """A claim's banner lines from its first line: provider and network; then claim number,
    date received, patient and relationship."""
    network = network_words["in" if first.network == "in" else "out"]
    relationship = f"claims.relationships.{first.patient_relationship}"
    if not words.file.has(relationship):
        relationship = "claims.relationships.other"
    detail = "  \u00b7  ".join((
        f"{words('claims.claim', claim_id=first.claim_id)}, "
        f"{words('claims.received', date=date_format(first.received_date))}",
        words("claims.patient", name=first.patient_name, relationship=words(relationship)),
    ))
    return f"{words('claims.provider', name=first.provider_name)}  \u00b7  {network}", detail


def scaled_heading_rows(text: str, theme: Theme, scale: float) -> list[Row]:
    """A section heading as grid rows (grid.heading_rows) at the statement's scale."""
    if scale == 1.0:
        return heading_rows(text, theme)
    size = 10.5 * scale
    heading = Cell(wrap_text(text, BOLD, size, CONTENT_WIDTH), -CELL_PAD, CONTENT_WIDTH, BOLD, size,
                   theme.primary)
    rule = (("bottom", 0.0, 1.1 * inch, 1.2, theme.accent),)
    return [Row((heading,), pad_top=0, pad_bottom=3.5, rules=rule), Row((), pad_top=5, pad_bottom=0)]


def who_pays(code: str, words: Words) -> str:
    """Who bears an adjustment, by its group code (`pipeline.reason_codes.WHO_PAYS`), in the
    document's words, for the statement's codes table and the notice's reasons alike.

    PR: the member may owe it; CO: the provider writes it off; PI: the plan reduced it;
    OA: another payer's part (OA-23, the other plan's payment: for information, never "you do
    not owe", since the member may owe cost share on the same line); a remark code (no group)
    is a remark."""
    group = code.split("-", 1)[0] if "-" in code else ""
    return words(f"reasons_detail.{WHO_PAYS.get(group, 'remark')}")


def remark_explanations(lines: Sequence[ClaimLine], language: str) -> list[tuple[str, str]]:
    """(remark code, its plain language) for every remark code (RARC) the lines' adjustments
    carry, sorted: each printed next to its adjustment is explained in the codes table, in
    the statement's language (templates/remark_codes.csv; English where it has none)."""
    table = remark_table()
    codes = sorted({adjustment.rarc for line in lines for adjustment in line.adjustments if adjustment.rarc})
    return [(code, table.text(code, language) if code in table.rows else "") for code in codes]


def reason_blocks(statement: Statement, words: Words, theme: Theme, scale: float = 1.0) -> list[Block]:
    """What each reason code on the statement means and who pays, then what each remark code
    means; nothing if none."""
    remarks = remark_explanations(statement.lines, statement.member.language)
    if not statement.reasons and not remarks:
        return []
    size = 8.5 * scale
    code_w = text_width("CO-000", BOLD, size) + 2 * CELL_PAD + 4
    who_w = max(2.2 * inch * scale ** 0.5, 1.2 * inch)
    edges = (0.0, code_w, CONTENT_WIDTH - who_w, CONTENT_WIDTH)

    def row(texts: Sequence[str], fonts: Sequence[str], color: str, **kwargs: Any) -> Row:
        return Row(tuple(
            Cell(cell_lines(text, font, size, edges[i + 1] - edges[i]), edges[i],
                 edges[i + 1] - edges[i], font, size, color)
            for i, (text, font) in enumerate(zip(texts, fonts, strict=True))
        ), pad_top=2.5, pad_bottom=2.5, **kwargs)

    heading = scaled_heading_rows(words("reasons.heading"), theme, scale)
    rows = [*heading]
    rows += [row([words("reasons.col_code"), words("reasons.col_meaning"),
                 words("reasons.col_who_pays")], [BOLD] * 3, WHITE,
                fills=((0.0, CONTENT_WIDTH, theme.primary),))]
    rule = (("bottom", 0.0, CONTENT_WIDTH, 0.4, theme.rule),)
    rows += [row([reason.code, reason.text, who_pays(reason.code, words)],
                 [BOLD, REGULAR, REGULAR], theme.text, rules=rule)
             for reason in statement.reasons]
    rows += [row([code, text, words("reasons_detail.remark")], [BOLD, REGULAR, REGULAR], theme.text,
                 rules=rule) for code, text in remarks if text]
    return [Grid(rows, lead_rows=2, header_rows=1, space_before=4)]
