"""The claims table (grouped by claim, with claim and statement totals) and the reason codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import groupby
from typing import Any

from reportlab.lib.units import inch

from pipeline.model import ClaimLine, Statement
from pipeline.reason_codes import line_codes, remark_table
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, WHITE, Theme
from pipeline.render.cells import CELL_PAD, Cell, Row, cell_lines
from pipeline.render.eob.words import Words, dates, format_money
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid, heading_rows
from pipeline.render.text import text_width, wrap_text
from pipeline.templates import TemplateFile

# The table's amount columns: the ClaimLine field each shows and its header's template key.
CLAIM_TABLE_AMOUNTS: tuple[tuple[str, str], ...] = (
    ("billed", "col_billed"),
    ("discount", "col_discount"),
    ("allowed", "col_allowed"),
    ("plan_paid", "col_plan_paid"),
    ("other_payer_paid", "col_other"),
    ("deductible", "col_deductible"),
    ("copay", "col_copay"),
    ("coinsurance", "col_coinsurance"),
    ("not_covered", "col_not_covered"),
    ("member_owes", "col_you_may_owe"),
)


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


def line_amounts(lines: Sequence[ClaimLine]) -> list[str]:
    """The claim table's amount cells for one line, or the sums over several (a claim total)."""
    if len(lines) == 1:
        line = lines[0]
        return [format_money(getattr(line, name)) for name, _ in CLAIM_TABLE_AMOUNTS]
    return [format_money(sum(getattr(line, name) for line in lines))
            for name, _ in CLAIM_TABLE_AMOUNTS]


@dataclass(frozen=True, slots=True)
class Columns:
    """Claim-table geometry: font size and column edges chosen for this statement's values."""

    size: float
    edges: tuple[float, ...]  # x of each column's left edge, plus the right edge

    def span(self, first: int, last: int) -> tuple[float, float]:
        return self.edges[first], self.edges[last + 1] - self.edges[first]


@lru_cache(maxsize=64)
def _header_word_width(header: str, size: float) -> float:
    return max(text_width(word, BOLD, size) for word in header.split())


def claims_columns(headers: Sequence[str], units: Sequence[Sequence[float]],
                    totals: Sequence[float]) -> Columns:
    """Column widths from the widest value; shrink the font until the service column has room.

    `units` are each line's value widths at size 1 (column 1, the service, wraps and is not
    measured); `totals` the statement totals' (printed half a point larger). Amounts never
    wrap: money columns are as wide as their widest figure.
    """
    pad = 2 * CELL_PAD + 0.5
    widest = [max(column, default=0.0) for column in zip(*units, strict=True)] if units else (
        [0.0] * len(headers))
    date_unit = max(widest[0], text_width("00/00/0000", REGULAR, 1.0))
    for size in (7.0, 6.5, 6.0, 5.5):
        head_size = size - 0.5
        heads = [_header_word_width(header, head_size) for header in headers]
        date_w = max(date_unit * size, heads[0]) + pad
        money = [max(widest[2 + i] * size, totals[i] * (size + 0.5), heads[2 + i]) + pad
                 for i in range(len(CLAIM_TABLE_AMOUNTS))]
        code_w = max(widest[-1] * size, heads[-1]) + pad
        service_w = CONTENT_WIDTH - date_w - sum(money) - code_w
        if service_w >= 78 or size == 5.5:
            widths = (date_w, max(service_w, 40.0), *money, code_w)
            edges = [0.0]
            for width in widths:
                edges.append(edges[-1] + width)
            return Columns(size, tuple(edges))
    raise AssertionError("unreachable")


@lru_cache(maxsize=64)
def claims_headers(words_file: TemplateFile) -> tuple[str, ...]:
    keys = ("col_date", "col_service", *(key for _, key in CLAIM_TABLE_AMOUNTS), "col_code")
    return tuple(words_file.text(f"claims.{key}") for key in keys)


class ClaimsGridBuilder:
    """Builds the claim detail rows: header, then per claim a banner, its lines, a total."""

    def __init__(self, theme: Theme, columns: Columns, n: int) -> None:
        self.theme, self.columns, self.n = theme, columns, n
        self.size = columns.size
        owes_x, owes_w = columns.span(n - 2, n - 2)
        self.owes_fill = (owes_x, owes_w, theme.accent_tint)
        self.full = (0.0, columns.edges[-1])
        self.spans = [columns.span(i, i) for i in range(n)]
        self.rights = [x + width - CELL_PAD for x, width in self.spans]

    def cell(self, text: str, first: int, last: int | None = None, *, font: str = REGULAR,
             size: float | None = None, color: str | None = None, align: str = "left",
             remember: bool = False) -> Cell:
        x, width = self.columns.span(first, first if last is None else last)
        size = size or self.size
        return Cell(cell_lines(text, font, size, width, remember=remember), x, width, font,
                    size, color or self.theme.text, align)

    def amount(self, text: str, unit: float, column: int, font: str, size: float) -> Cell:
        """A right-aligned value its column was sized for: never wraps, start known."""
        x, width = self.spans[column]
        return Cell((text,), x, width, font, size, self.theme.text, "right",
                    (self.rights[column] - unit * size,))

    def header(self, headers: Sequence[str]) -> Row:
        size = self.size - 0.5
        cells = [self.cell(h, i, font=BOLD, size=size, color=WHITE, remember=True,
                           align="right" if 2 <= i < self.n - 1 else "left")
                 for i, h in enumerate(headers)]
        depth = max(len(c.lines) for c in cells)  # bottom-align header labels
        cells = [Cell(("",) * (depth - len(c.lines)) + c.lines, c.x, c.width, c.font, c.size,
                      c.color, c.align) for c in cells]
        return Row(tuple(cells), pad_top=3, pad_bottom=3,
                   fills=((*self.full, self.theme.primary),))

    def banner(self, provider: str, status: str, status_color: str,
               detail: str) -> list[Row]:
        theme, span = self.theme, self.n - 4
        fill = ((*self.full, theme.tint),)
        first = Row((self.cell(provider, 0, span - 1, font=BOLD, remember=True),
                     self.cell(status, span, self.n - 1, font=BOLD, color=status_color,
                               align="right", remember=True)),
                    pad_top=3.0, pad_bottom=0.5, fills=fill, keep_with_next=True,
                    rules=(("top", *self.full, 0.75, theme.primary),))
        second = Row((self.cell(detail, 0, span - 1, color=theme.muted),),
                     pad_top=0.5, pad_bottom=2.0, fills=fill, keep_with_next=True)
        return [first, second]

    def line(self, values: Sequence[str], units: Sequence[float], code_color: str,
             keep_with_next: bool, context: tuple[Row, ...]) -> Row:
        n, size, spans, text = self.n, self.size, self.spans, self.theme.text
        cells = [Cell((values[0],), spans[0][0], spans[0][1], REGULAR, size, text, "left",
                      (spans[0][0] + CELL_PAD,)),
                 self.cell(values[1], 1, remember=True)]  # plan wording, not member data
        cells += [self.amount(values[i], units[i], i, BOLD if i == n - 2 else REGULAR, size)
                  for i in range(2, n - 1)]
        cells.append(self.cell(values[-1], n - 1, color=code_color, remember=True))
        return Row(tuple(cells), pad_top=1.75, pad_bottom=1.75, fills=(self.owes_fill,),
                   keep_with_next=keep_with_next, context=context)

    def claim_total(self, label: str, amounts: Sequence[str], context: tuple[Row, ...]) -> Row:
        n, size = self.n, self.size
        cells = [self.cell(label, 1, font=BOLD, remember=True)]
        cells += [self.amount(a, text_width(a, BOLD, 1.0), 2 + i, BOLD, size)
                  for i, a in enumerate(amounts)]
        x, _ = self.columns.span(1, 1)
        return Row(tuple(cells), fills=(self.owes_fill,), context=context,
                   rules=(("top", x, self.columns.edges[n - 1] - x, 0.4, self.theme.rule),))

    def statement_total(self, label: str, amounts: Sequence[str],
                        units: Sequence[float]) -> Row:
        size, theme = self.size + 0.5, self.theme
        cells = [self.cell(label, 0, 1, font=BOLD, size=size, remember=True)]
        cells += [self.amount(a, units[i], 2 + i, BOLD, size) for i, a in enumerate(amounts)]
        rules = (("top", *self.full, 1.2, theme.primary), ("bottom", *self.full, 1.2,
                                                             theme.primary))
        return Row(tuple(cells), pad_top=4, pad_bottom=4,
                   fills=((*self.full, theme.tint), self.owes_fill), rules=rules)


def line_values(lines: Sequence[ClaimLine], words: Words) -> tuple[list[list[str]], list[list[float]]]:
    """Each line's cells (date, service, amounts, codes) and their widths at size 1 (the codes
    cell wraps, one code a line: its width is the widest code's)."""
    date_format = dates(words.file)
    values, units = [], []
    for line in lines:
        codes = line_codes(line)  # every adjustment's code: a reduced paid line shows its reduction
        row = [date_format(line.service_date), f"{line.service_description} ({line.service_code})",
               *line_amounts([line]), " ".join(codes)]
        values.append(row)
        units.append([text_width(row[0], REGULAR, 1.0), 0.0,
                      *(text_width(value, BOLD, 1.0) for value in row[2:-1]),
                      max((text_width(code, REGULAR, 1.0) for code in codes), default=0.0)])  # one a line
    return values, units


def _claims_grid(statement: Statement, words: Words, theme: Theme) -> Grid:
    """Claim detail grouped by claim: a claim banner, its lines, a claim total, then totals.

    Amount widths are measured once, at size 1 (Helvetica's digits, "$", "," and "." are
    as wide in bold as in regular), and serve both column sizing and right alignment.
    """
    headers = claims_headers(words.file)
    date_format = dates(words.file)
    values, units = line_values(statement.lines, words)
    totals = line_amounts(statement.lines)
    total_units = [text_width(value, BOLD, 1.0) for value in totals]
    columns = claims_columns(headers, units, total_units)
    build = ClaimsGridBuilder(theme, columns, len(headers))
    status_colors = {"paid": theme.primary, "denied": theme.alert, "partial": theme.accent}
    rows = [*heading_rows(words("claims.heading"), theme), build.header(headers)]
    network_words = {"in": words("claims.network_in"), "out": words("claims.network_out")}
    index = 0
    for _, group in groupby(statement.lines, key=lambda line: line.claim_id):
        lines = list(group)
        first, status = lines[0], claim_status(lines)
        provider, detail = claim_banner(first, words, date_format, network_words)
        status_text = words(f"claims.status_names.{status}")
        status_text = words.file.text("claims.status", {"status": status_text}, memo=True)
        rows += build.banner(provider, status_text, status_colors[status], detail)
        continued: tuple[Row, ...] = ()
        for position, line in enumerate(lines):
            if position == 1:
                continued = tuple(build.banner(f"{provider}  {words('claims.continued')}",
                                               status_text, status_colors[status], detail))
            code_color = theme.alert if line.status == "denied" else theme.text
            keep = len(lines) > 1 and position == len(lines) - 1  # last line stays with total
            rows.append(build.line(values[index], units[index], code_color, keep, continued))
            index += 1
        if len(lines) > 1:
            rows.append(build.claim_total(words("claims.claim_total"), line_amounts(lines),
                                          continued))
    rows.append(build.statement_total(words("claims.statement_total"), totals, total_units))
    return Grid(rows, lead_rows=2, header_rows=1, space_before=10, space_after=4)


def claims_blocks(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    """The claim detail table and its codes hint; a short note when there are no claims."""
    if not statement.lines:
        return [Heading(words("claims.heading"), theme),
                TextBlock(words("claims.none"), REGULAR, 8.5, theme.text)]
    return [_claims_grid(statement, words, theme),
            TextBlock(words("claims.codes_hint"), REGULAR, 7, theme.muted, optional=True)]


def scaled_heading_rows(text: str, theme: Theme, scale: float) -> list[Row]:
    """A section heading as grid rows (grid.heading_rows) at the statement's scale."""
    if scale == 1.0:
        return heading_rows(text, theme)
    size = 10.5 * scale
    heading = Cell(wrap_text(text, BOLD, size, CONTENT_WIDTH), -CELL_PAD, CONTENT_WIDTH, BOLD, size,
                   theme.primary)
    rule = (("bottom", 0.0, 1.1 * inch, 1.2, theme.accent),)
    return [Row((heading,), pad_top=0, pad_bottom=3.5, rules=rule), Row((), pad_top=5, pad_bottom=0)]


WHO_PAYS = {"PR": "member", "CO": "provider", "PI": "payer", "OA": "other_payer"}
"""Who bears an adjustment, by its group code (X12): the reasons table's "who pays"."""


def who_pays(code: str, words: Words) -> str:
    """PR: the member may owe it; CO: the provider writes it off; PI: the plan reduced it;
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
