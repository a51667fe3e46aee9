"""The statement's claims table: grouped by claim, every line with what happened to it.

Readable first: text at least 8 pt (times the statement's scale: 2 for large print). To fit a
letter page at that size the table shows only the amount columns the statement needs (other
insurance and "not paid (denied)" only when some line has them) and puts the rest of each line
under it, in a detail row: the member's share split (deductible, copay, coinsurance, not
covered), every adjustment code with its amount, the No Surprises mark and the balance-billing
warning. The claim banner says who was paid, when, and the check or EFT reference, or that the
claim is pending or replaces an earlier decision. When even that does not fit (large print), each
line is set as a list of labelled amounts instead of columns.

Totals reconcile on the page: billed = plan discount + not paid (denied) + other insurance +
plan paid + you may owe + still under review (pended lines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby

from pipeline.model import ClaimLine, Statement
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, WHITE, Theme
from pipeline.render.cells import CELL_PAD, Cell, Row, cell_lines
from pipeline.render.eob.claims import claim_banner, claim_status, scaled_heading_rows
from pipeline.render.eob.words import Words, dates, format_money
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid
from pipeline.render.text import text_width

BASE_SIZE = 8.0
"""The table's text size at scale 1: the issue's floor for any text."""
NSA_MARK = "\u2020"  # dagger: a No Surprises Act-protected line (legend under the table)
SHARE_PARTS = (("deductible", "claims_detail.deductible"), ("copay", "claims_detail.copay"),
               ("coinsurance", "claims_detail.coinsurance"), ("not_covered", "claims_detail.not_covered"))


@dataclass(frozen=True, slots=True)
class Amount:
    """One amount column: the ClaimLine attribute it shows and its header key."""

    field: str
    key: str
    optional: bool = False  # shown only when some line of the statement has it


AMOUNTS: tuple[Amount, ...] = (
    Amount("billed", "claims.col_billed"),
    Amount("discount", "claims.col_discount"),
    Amount("denied", "claims_detail.col_denied", optional=True),
    Amount("allowed", "claims.col_allowed"),
    Amount("other_payer_paid", "claims.col_other", optional=True),
    Amount("plan_paid", "claims.col_plan_paid"),
    Amount("member_owes", "claims.col_you_may_owe"),
)


def value(line: ClaimLine, field: str) -> int:
    """A line's amount as the table shows it: a pended line has no allowed amount yet."""
    if field == "allowed" and line.status == "pended":
        return 0
    return int(getattr(line, field))


def cell_text(line: ClaimLine, field: str) -> str:
    if field == "allowed" and line.status == "pended":
        return "\u2014"
    return format_money(value(line, field))


def amount_columns(lines: Sequence[ClaimLine]) -> tuple[Amount, ...]:
    return tuple(a for a in AMOUNTS if not a.optional or any(getattr(line, a.field) for line in lines))


def total(lines: Sequence[ClaimLine], field: str) -> int:
    return sum(value(line, field) for line in lines)


def share_text(lines: Sequence[ClaimLine], words: Words) -> str:
    """"Your share: deductible $x, coinsurance $y" for the parts that are not zero."""
    parts = [words.file.text(key, {"amount": format_money(total(lines, field))}, memo=False)
             for field, key in SHARE_PARTS if total(lines, field)]
    return words.file.text("claims_detail.your_share", {"parts": ", ".join(parts)}) if parts else ""


def adjustments_text(line: ClaimLine) -> str:
    """Every adjustment code of the line with its amount (and remark code); a line from an
    extract without the list shows its one reason code."""
    if not line.adjustments:
        return line.reason_code
    return "  ".join(f"{a.code} {format_money(a.amount)}" + (f" ({a.rarc})" if a.rarc else "")
                     for a in line.adjustments)


def line_detail(line: ClaimLine, words: Words) -> str:
    """The detail under a line: its share split, its codes, its protections and warnings."""
    parts = []
    share = share_text([line], words)
    if share:
        parts.append(share)
    codes = adjustments_text(line)
    if codes:
        parts.append(words.file.text("claims_detail.codes", {"codes": codes}, memo=False))
    if line.network != "in":
        parts.append(words("claims_detail.no_surprises_line") if line.no_surprises
                     else words("claims_detail.balance_billing"))
    return "  \u00b7  ".join(parts)


def claim_note(lines: Sequence[ClaimLine], words: Words, date_format: Callable[[date], str]) -> str:
    """The banner's third line: pending, what it replaces, and who was paid, when, how."""
    first = lines[0]
    notes = []
    statuses = {line.status for line in lines}
    if "pended" in statuses:
        notes.append(words("claims_detail.pended"))
    original = next((line.original_claim_id for line in lines if line.original_claim_id), "")
    if "adjusted" in statuses or original:
        notes.append(words("claims_detail.adjusted", claim_id=original or first.claim_id))
    paid = [line for line in lines if line.plan_paid > 0 and line.payee]
    if paid:
        line = paid[0]
        when = date_format(line.paid_date) if line.paid_date else ""
        if line.payee == "member":
            notes.append(words("claims_detail.paid_to_member", date=when, reference=line.payment_ref
                               or words("claims_detail.no_reference")))
        else:
            notes.append(words("claims_detail.paid_to_provider", date=when))
    return "  \u00b7  ".join(notes)


class _Table:
    """Rows of the claims table at one scale, for one statement's amount columns."""

    def __init__(self, theme: Theme, words: Words, amounts: tuple[Amount, ...], lines: Sequence[ClaimLine],
                 scale: float, days: Sequence[str]) -> None:
        self.theme, self.words, self.amounts, self.scale = theme, words, amounts, scale
        self.size = BASE_SIZE * scale
        self.pad = 2 * CELL_PAD + 0.5
        figures = [format_money(total(lines, a.field)) for a in amounts]
        figures += [format_money(value(line, a.field)) for line in lines for a in amounts]
        widest = max((text_width(f, BOLD, self.size) for f in figures), default=0.0) + self.pad
        headers = [words(a.key) for a in amounts]
        head_words = max((text_width(w, BOLD, self.size) for h in headers for w in h.split()),
                         default=0.0) + self.pad
        money = max(widest, head_words)
        date_w = max([text_width(day, REGULAR, self.size) for day in days] + [text_width(
            max(words("claims.col_date").split(), key=len), BOLD, self.size)]) + self.pad
        service_w = CONTENT_WIDTH - date_w - money * len(amounts)
        self.fits = service_w >= 80 * scale
        self.edges = [0.0, date_w, date_w + service_w]
        for _ in amounts:
            self.edges.append(self.edges[-1] + money)
        self.headers = (words("claims.col_date"), words("claims.col_service"), *headers)
        self.full = (0.0, CONTENT_WIDTH)
        owes = len(self.edges) - 2
        self.owes_fill = (self.edges[owes], self.edges[owes + 1] - self.edges[owes], theme.accent_tint)

    def cell(self, text: str, first: int, last: int | None = None, *, font: str = REGULAR,
             color: str | None = None, align: str = "left", remember: bool = True,
             size: float | None = None) -> Cell:
        last = first if last is None else last
        x, width = self.edges[first], self.edges[last + 1] - self.edges[first]
        size = size or self.size
        return Cell(cell_lines(text, font, size, width, remember=remember), x, width, font, size,
                    color or self.theme.text, align)

    def amount(self, text: str, column: int, font: str = REGULAR) -> Cell:
        x, width = self.edges[column], self.edges[column + 1] - self.edges[column]
        start = x + width - CELL_PAD - text_width(text, font, self.size)
        return Cell((text,), x, width, font, self.size, self.theme.text, "right", (start,))

    def header(self) -> Row:
        cells = [self.cell(h, i, font=BOLD, color=WHITE, align="right" if i >= 2 else "left")
                 for i, h in enumerate(self.headers)]
        depth = max(len(c.lines) for c in cells)  # bottom-align header labels
        cells = [Cell(("",) * (depth - len(c.lines)) + c.lines, c.x, c.width, c.font, c.size,
                      c.color, c.align) for c in cells]
        return Row(tuple(cells), pad_top=3, pad_bottom=3, fills=((*self.full, self.theme.primary),))

    def banner(self, title: str, status: str, status_color: str, detail: str, note: str) -> list[Row]:
        theme, last = self.theme, len(self.edges) - 2
        split = max(2, last - 2)
        fill = ((*self.full, theme.tint),)
        rows = [Row((self.cell(title, 0, split - 1, font=BOLD),
                     self.cell(status, split, last, font=BOLD, color=status_color, align="right")),
                    pad_top=3.0, pad_bottom=0.5, fills=fill, keep_with_next=True,
                    rules=(("top", *self.full, 0.75, theme.primary),)),
                Row((self.cell(detail, 0, last, color=theme.text, remember=False),),
                    pad_top=0.5, pad_bottom=0.5 if note else 2.0, fills=fill, keep_with_next=True)]
        if note:
            rows.append(Row((self.cell(note, 0, last, remember=False),), pad_top=0.5, pad_bottom=2.0,
                            fills=fill, keep_with_next=True))
        return rows

    def line(self, line: ClaimLine, day: str, detail: str, keep: bool, context: tuple[Row, ...]) -> list[Row]:
        service = f"{line.service_description} ({line.service_code})"
        if line.no_surprises:
            service += f" {NSA_MARK}"
        cells = [self.cell(day, 0, remember=False), self.cell(service, 1)]
        owes = len(self.amounts) - 1
        cells += [self.amount(cell_text(line, a.field), 2 + i, BOLD if i == owes else REGULAR)
                  for i, a in enumerate(self.amounts)]
        first = Row(tuple(cells), pad_top=2.0, pad_bottom=0.5 if detail else 2.0, fills=(self.owes_fill,),
                    keep_with_next=bool(detail) or keep, context=context)
        if not detail:
            return [first]
        color = self.theme.alert if line.status == "denied" or line.denied else self.theme.muted
        last = len(self.edges) - 2
        second = Row((self.cell(detail, 1, last, color=color, remember=False),), pad_top=0.5,
                     pad_bottom=2.5, keep_with_next=keep, context=context,
                     rules=(("bottom", self.edges[1], CONTENT_WIDTH - self.edges[1], 0.3, self.theme.rule),))
        return [first, second]

    def totals(self, label: str, lines: Sequence[ClaimLine], context: tuple[Row, ...], *,
               statement: bool = False) -> list[Row]:
        cells = [self.cell(label, 0, 1, font=BOLD)]
        cells += [self.amount(format_money(total(lines, a.field)), 2 + i, BOLD)
                  for i, a in enumerate(self.amounts)]
        theme = self.theme
        if statement:
            rules: tuple[tuple[str, float, float, float, str], ...] = (
                ("top", *self.full, 1.2, theme.primary),)
            fills: tuple[tuple[float, float, str], ...] = ((*self.full, theme.tint), self.owes_fill)
        else:
            rules, fills = (("top", self.edges[1], CONTENT_WIDTH - self.edges[1], 0.4, theme.rule),), (
                self.owes_fill,)
        rows = [Row(tuple(cells), pad_top=3 if statement else 2, pad_bottom=1, fills=fills, rules=rules,
                    context=context, keep_with_next=True)]
        parts = [share_text(lines, self.words)]
        undecided = total(lines, "pending")  # a pended line's billed amount, as Statement.total counts it
        if undecided:
            parts.append(self.words.file.text("claims_detail.pending_total",
                                              {"amount": format_money(undecided)}, memo=False))
        text = "  \u00b7  ".join(p for p in parts if p)
        last = len(self.edges) - 2
        bottom = (("bottom", *self.full, 1.2, theme.primary),) if statement else ()
        rows.append(Row((self.cell(text, 1, last, remember=False),) if text else (), pad_top=0.5,
                        pad_bottom=3 if statement else 2, fills=fills[:1] if statement else (),
                        rules=bottom, context=context))
        return rows


def _status(lines: Sequence[ClaimLine], words: Words, theme: Theme) -> tuple[str, str]:
    status = claim_status(lines)
    colors = {"paid": theme.primary, "denied": theme.alert, "partial": theme.text,
              "pended": theme.text, "adjusted": theme.text}
    name = words(f"claims.status_names.{status}")
    return words.file.text("claims.status", {"status": name}, memo=True), colors.get(status, theme.text)


def _claim_rows(table: _Table, claim: Sequence[ClaimLine], words: Words, theme: Theme,
                date_format: Callable[[date], str], days: dict[date, str]) -> list[Row]:
    """One claim in the table: its banner, each line with its detail, a total for several lines."""
    network_words = {"in": words("claims.network_in"), "out": words("claims.network_out")}
    title, detail = claim_banner(claim[0], words, date_format, network_words)
    status, color = _status(claim, words, theme)
    rows = table.banner(title, status, color, detail, claim_note(claim, words, date_format))
    continued: tuple[Row, ...] = ()
    for position, line in enumerate(claim):
        if position == 1:
            continued = tuple(table.banner(f"{title}  {words('claims.continued')}", status, color,
                                           detail, ""))
        keep = len(claim) > 1 and position == len(claim) - 1  # the last line stays with its total
        rows += table.line(line, days[line.service_date], line_detail(line, words), keep, continued)
    if len(claim) > 1:
        rows += table.totals(words("claims.claim_total"), claim, continued)
    return rows


def claims_grid(lines: Sequence[ClaimLine], words: Words, theme: Theme, scale: float = 1.0, *,
                heading: str, statement_total: bool) -> Grid | None:
    """The claims table under `heading`, with the statement's total row if `statement_total`;
    None when its columns do not fit at this scale."""
    date_format = dates(words.file)
    days = {line.service_date: date_format(line.service_date) for line in lines}
    table = _Table(theme, words, amount_columns(lines), lines, scale, list(days.values()))
    if not table.fits:
        return None
    rows = [*scaled_heading_rows(heading, theme, scale), table.header()]
    for _, group in groupby(lines, key=lambda line: line.claim_id):
        rows += _claim_rows(table, list(group), words, theme, date_format, days)
    if statement_total:
        rows += table.totals(words("claims.statement_total"), lines, (), statement=True)
    return Grid(rows, lead_rows=2, header_rows=1, space_before=10, space_after=4)


def claims_list(lines: Sequence[ClaimLine], words: Words, theme: Theme, scale: float, *,
                heading: str, statement_total: bool) -> list[Block]:
    """The claims as labelled lists (large print): a heading per claim, then per line its date
    and service and each amount that is not zero, with its detail; then the totals (the
    statement's if `statement_total`, else the claim's when it has several lines)."""
    size = BASE_SIZE * scale
    date_format = dates(words.file)
    network_words = {"in": words("claims.network_in"), "out": words("claims.network_out")}
    amounts = amount_columns(lines)
    blocks: list[Block] = [Heading(heading, theme, size=10.5 * scale)]

    def text(value: str, font: str = REGULAR, color: str | None = None, after: float = 0.0) -> TextBlock:
        return TextBlock(value, font, size, color or theme.text, remember=False, space_after=after)

    def figures(of: Sequence[ClaimLine]) -> str:
        return "; ".join(f"{words(a.key)}: {format_money(total(of, a.field))}" for a in amounts
                         if total(of, a.field) or a.field in ("billed", "member_owes"))

    for _, group in groupby(lines, key=lambda line: line.claim_id):
        claim = list(group)
        title, detail = claim_banner(claim[0], words, date_format, network_words)
        status, color = _status(claim, words, theme)
        blocks += [TextBlock(title, BOLD, size, theme.primary, remember=False, space_before=6 * scale,
                             keep_with_next=True),
                   text(f"{detail}  \u00b7  {status}")]
        note = claim_note(claim, words, date_format)
        if note:
            blocks.append(text(note))
        for line in claim:
            service = f"{date_format(line.service_date)}: {line.service_description} ({line.service_code})"
            blocks += [text(service + (f" {NSA_MARK}" if line.no_surprises else ""), BOLD),
                       text(figures([line])), text(line_detail(line, words), color=theme.muted, after=2)]
    label = "claims.statement_total" if statement_total else "claims.claim_total" if len(lines) > 1 else ""
    if label:
        blocks += [TextBlock(words(label), BOLD, size, theme.primary, remember=False,
                             space_before=6 * scale, keep_with_next=True),
                   text(figures(lines)), text(share_text(lines, words), after=4)]
    return blocks


def _detail_blocks(lines: Sequence[ClaimLine], words: Words, theme: Theme, scale: float, *,
                   heading: str, statement_total: bool) -> list[Block]:
    """The table (or, when its columns do not fit, the lists) and the No Surprises legend."""
    grid = claims_grid(lines, words, theme, scale, heading=heading, statement_total=statement_total)
    blocks: list[Block] = [grid] if grid is not None else claims_list(
        lines, words, theme, scale, heading=heading, statement_total=statement_total)
    if any(line.no_surprises for line in lines):
        blocks.append(TextBlock(f"{NSA_MARK} {words('claims_detail.no_surprises_legend')}", REGULAR,
                                BASE_SIZE * scale, theme.text, space_after=2))
    return blocks


def claim_blocks(lines: Sequence[ClaimLine], words: Words, theme: Theme, scale: float, heading: str
                 ) -> list[Block]:
    """One claim as the statement shows it (a prompt notice's claim): the same columns, banner,
    detail rows and wording, and its total when it has several lines; no statement total."""
    return _detail_blocks(lines, words, theme, scale, heading=heading, statement_total=False)


def claims_blocks(statement: Statement, words: Words, theme: Theme, scale: float = 1.0) -> list[Block]:
    """The claim detail and what its marks mean; a short note when there are no claims."""
    if not statement.lines:
        return [Heading(words("claims.heading"), theme, size=10.5 * scale),
                TextBlock(words("claims.none"), REGULAR, 10 * scale, theme.text)]
    blocks = _detail_blocks(statement.lines, words, theme, scale, heading=words("claims.heading"),
                            statement_total=True)
    blocks.append(TextBlock(words("claims_detail.codes_hint"), REGULAR, BASE_SIZE * scale, theme.muted,
                            optional=True))
    return blocks
