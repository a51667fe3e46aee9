"""Page furniture: what is drawn outside the flow on every page of a statement.

Page 1 carries the letterhead and the recipient's address (for print: the return address, the
insurer's legal name and administrator, and fold marks) and the statement facts; later pages a
running header; every page a footer with its number.

The print variant leaves the recipient window of the envelope empty, with `WINDOW_CLEARANCE`
around it: the address block (endorsement, Intelligent Mail barcode, the address as USPS
standardised it on the day) is stamped there when the piece is batched
(`pipeline.paper.window_block`), because only then are the checked address and the barcode's
serial known. The window geometry lives here so that both sides place against the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from reportlab.lib.units import inch

from pipeline.model import Statement
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN, PAGE_HEIGHT, PAGE_WIDTH, WHITE, Out, Theme
from pipeline.render.eob.brand import brand_logo
from pipeline.render.eob.legal import TypeSizes, type_sizes
from pipeline.render.eob.words import Words, mask_member_id
from pipeline.render.fonts import BOLD, REGULAR, face, on_change
from pipeline.render.pdf.structure import Tag
from pipeline.render.text import ellipsize, fit_block, fit_size, text_width, wrap_text

BOTTOM = 0.7 * inch  # flow bottom; the footer sits below it
FIRST_PAGE_TOP = 3.25 * inch  # page 1 header zone (address windows, statement facts)
LATER_PAGE_TOP = 0.95 * inch
RIGHT_COLUMN_X = 4.75 * inch

# #10 double-window envelope, letter sheet tri-folded (positions from the sheet's top-left).
# Typical vendor stock; confirm against the print vendor's envelope spec before production.
RETURN_WINDOW = (0.75 * inch, 0.5 * inch, 3.25 * inch, 0.875 * inch)  # x, top, width, height
RECIPIENT_WINDOW = (0.75 * inch, 2.0 * inch, 3.75 * inch, 1.125 * inch)
WINDOW_PADDING = 0.12 * inch
WINDOW_CLEARANCE = 0.125 * inch
"""Around the recipient window nothing but the stamped address block is printed, and the block
keeps this distance inside the window's edges: a letter moves about 1/8 in inside its envelope."""
RECIPIENT_KEEP_OUT = (RECIPIENT_WINDOW[0] - WINDOW_CLEARANCE, RECIPIENT_WINDOW[1] - WINDOW_CLEARANCE,
                      RECIPIENT_WINDOW[2] + 2 * WINDOW_CLEARANCE,
                      RECIPIENT_WINDOW[3] + 2 * WINDOW_CLEARANCE)
"""The print variant's page 1 draws nothing in here (x, top, width, height from the top-left)."""
FOLD_MARKS = (PAGE_HEIGHT / 3, 2 * PAGE_HEIGHT / 3)


@dataclass(slots=True)
class PageFurniture:
    """Everything drawn outside the flow: page-1 header, running header, footer."""

    statement: Statement
    words: Words
    theme: Theme
    variant: str
    _top: float = 0.0  # first_page_top, once known

    @property
    def sizes(self) -> TypeSizes:
        """Standard sizes (at least 8 pt, 10 pt on page 1) or large print (at least 16 pt)."""
        return type_sizes(self.statement)

    def footer(self, out: Out, page: int, pages: int) -> None:
        """The page number and the document's name: an artifact (screen readers skip it)."""
        theme, words, size = self.theme, self.words, self.sizes.small
        y = BOTTOM - 0.3 * inch if size < 12 else 0.28 * inch
        with out.artifact():
            out.rule(theme.rule, MARGIN, y + size * 1.375, PAGE_WIDTH - MARGIN, 0.5)
            label = words("footer.page", page=page, pages=pages)
            label_width = text_width(label, BOLD, size)
            out.show(PAGE_WIDTH - MARGIN - label_width, y, label, BOLD, size, theme.text)
            left = f"{words.context['legal_name']}  \u00b7  {self.reference()}"
            out.show(MARGIN, y, ellipsize(left, REGULAR, size, CONTENT_WIDTH - label_width - 12),
                     REGULAR, size, theme.muted)

    def reference(self) -> str:
        """The footer's name for the document (a notice names its claim)."""
        return self.words("footer.statement_ref")

    def continued(self) -> str:
        """The running title of the later pages."""
        return self.words("header.continued")

    def header(self, out: Out, page: int) -> None:
        """Page 1's header is content (tagged); a later page's repeats it: an artifact."""
        if page == 1:
            self.first_page(out)
        else:
            with out.artifact():
                self.later_page(out)

    def later_page_top(self) -> float:
        """Where the flow starts on later pages (from the top of the sheet)."""
        small = self.sizes.small
        if small < 12:
            return LATER_PAGE_TOP
        # name, title line, member line and the rule under them (see later_page)
        return MARGIN + (small + 2) + 2 * small * 1.3 + small * 0.55 + 10

    def later_page(self, out: Out) -> None:
        theme, words, member = self.theme, self.words, self.statement.member
        top = PAGE_HEIGHT - MARGIN
        right = PAGE_WIDTH - MARGIN
        small = self.sizes.small
        large = small >= 12
        name_size, title_size = (small + 2, small) if large else (11, 8.5)
        name = ellipsize(words.context["short_name"], BOLD, name_size, CONTENT_WIDTH * 0.3)
        out.show(MARGIN, top - name_size, name, BOLD, name_size, theme.primary)
        title = f"{self.continued()}  \u00b7  {words('header.not_a_bill')}"
        # large print: the title on a line of its own under the name
        title_x_room = CONTENT_WIDTH if large else CONTENT_WIDTH * 0.68
        title = ellipsize(title, BOLD, title_size, title_x_room)
        title_y = top - name_size - title_size * 1.3 if large else top - 10
        out.show(right - text_width(title, BOLD, title_size), title_y, title, BOLD, title_size,
                 theme.primary)
        who = ellipsize(
            f"{words('header.member')}: {member.first_name} {member.last_name}  \u00b7  "
            f"{words('header.member_id')}: {mask_member_id(member.member_id)}",
            REGULAR, small, title_x_room)
        who_y = title_y - small * 1.3 if large else top - 21
        out.show(right - text_width(who, REGULAR, small), who_y, who, REGULAR, small,
                 theme.muted)
        out.rule(theme.primary, MARGIN, who_y - small * 0.55, right, 1.5)

    def first_page(self, out: Out) -> None:
        if self.variant == "print":  # the recipient window stays empty: stamped when batched
            self._return_address(out)
            self._insurer_identity(out)
            for from_top in FOLD_MARKS:
                y = PAGE_HEIGHT - from_top
                out.rule(self.theme.muted, 0.12 * inch, y, 0.3 * inch, 0.4)
        else:
            self._letterhead(out)
            self._recipient(out)
        self._statement_facts(out)

    def _letterhead(self, out: Out) -> None:
        theme, context = self.theme, self.words.context
        x, top = RETURN_WINDOW[0], RETURN_WINDOW[1]
        logo = brand_logo(self.words.brand)
        if logo is not None:
            image, height = logo
            width = height * image.width / image.height
            out.image(image, x, PAGE_HEIGHT - top - height + 2, width, height,
                      alt=logo_alt(self.words))
            x += width + 9
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        name = context["short_name"]
        small = self.sizes.page_one
        size = fit_size(name, BOLD, width, max(18, small + 2), small + 1)
        out.begin("P")
        out.show(x, PAGE_HEIGHT - top - size, ellipsize(name, BOLD, size, width), BOLD, size,
                 theme.primary)
        lines = [*wrap_text(context["legal_name"], REGULAR, small, width),
                 *wrap_text(self.words("header.administered_by"), REGULAR, small, width)]
        _draw_lines(out, lines[:4], REGULAR, small, small * 1.2, x, top + size + 6, theme.muted)
        out.end()
        out.rule(theme.accent, x, PAGE_HEIGHT - top + 4, x + 0.9 * inch, 2)

    def _return_address(self, out: Out) -> None:
        x, top, width, height = RETURN_WINDOW
        inner = width - 2 * WINDOW_PADDING
        name = self.words.context["short_name"]
        out.begin("P")
        out.show(x + WINDOW_PADDING, PAGE_HEIGHT - top - WINDOW_PADDING - 10,
                 ellipsize(name, BOLD, 11, inner), BOLD, 11, self.theme.primary)
        # the envelope's window is as large as it is: 10 pt even in large print
        lines = [ellipsize(line, REGULAR, 10, inner)
                 for line in self.words.brand.strings("identity.return_address")[1:]]
        room = int((height - 2 * WINDOW_PADDING - 14) // 11)
        _draw_lines(out, lines[:room], REGULAR, 10, 11, x + WINDOW_PADDING,
                    top + WINDOW_PADDING + 13, self.theme.text)
        out.end()

    def _insurer_identity(self, out: Out) -> None:
        """The legal name and "administered by" under the return window (the email variant's
        letterhead carries them), between the two windows and clear of both: hidden by the
        envelope, never in the recipient window's keep-out."""
        x = RETURN_WINDOW[0] + WINDOW_PADDING
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        top = RETURN_WINDOW[1] + RETURN_WINDOW[3] + WINDOW_CLEARANCE
        size = self.sizes.page_one
        leading = size * 1.2
        room = int((RECIPIENT_KEEP_OUT[1] - top - size * line_depth()) // leading) + 1
        lines = [*wrap_text(self.words.context["legal_name"], REGULAR, size, width),
                 *wrap_text(self.words("header.administered_by"), REGULAR, size, width)]
        with out.tagged("P"):
            _draw_lines(out, lines[:room], REGULAR, size, leading, x, top, self.theme.muted)

    def _recipient_lines(self) -> tuple[float, list[str]]:
        """The member's name and address (email variant: no envelope, so the block may run
        below the window's place rather than shrink under the page-1 size)."""
        member = self.statement.member
        city = f"{member.city}, {member.state} {member.postal_code}".strip()
        lines = [f"{member.first_name} {member.last_name}", member.address_line1,
                 member.address_line2, city]
        size = self.sizes.page_one
        _, _, width, _ = RECIPIENT_WINDOW
        return fit_block([line for line in lines if line.strip()], REGULAR,
                         width - 2 * WINDOW_PADDING, 8 * size * 1.15, (size,))

    def _recipient(self, out: Out) -> None:
        x, top, _, _ = RECIPIENT_WINDOW
        size, wrapped = self._recipient_lines()
        with out.tagged("P"):
            _draw_lines(out, wrapped, REGULAR, size, size * 1.15, x + WINDOW_PADDING,
                        top + WINDOW_PADDING, self.theme.text)

    def first_page_top(self) -> float:
        """Where the flow starts on page 1 (from the top of the sheet): under the windows,
        and under the facts column and the address block when their size needs more room."""
        if not self._top:
            self._top = self._first_page_top()
        return self._top

    def _first_page_top(self) -> float:
        width = PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        bottom = self._facts_top() + facts_height(self._fact_rows(), width,
                                                  self.sizes.page_one)
        if self.variant != "print":
            size, lines = self._recipient_lines()
            bottom = max(bottom, RECIPIENT_WINDOW[1] + WINDOW_PADDING + len(lines) * size * 1.15)
            return max(FIRST_PAGE_TOP, bottom + 0.1 * inch)
        # print: the first line's ascenders stay clear of the recipient window's keep-out
        keep_out = RECIPIENT_KEEP_OUT[1] + RECIPIENT_KEEP_OUT[3]
        return max(FIRST_PAGE_TOP, keep_out + 4, bottom + 0.1 * inch)

    def _title(self) -> tuple[float, str]:
        width = PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        sizes = self.sizes
        title = self.words("header.title")
        size = fit_size(title, BOLD, width, sizes.title, sizes.page_one + 1)
        return size, ellipsize(title, BOLD, size, width)

    def _not_a_bill_height(self) -> float:
        return max(19.0, self.sizes.page_one + 9)

    def _facts_top(self) -> float:
        return MARGIN + self._title()[0] + 7 + self._not_a_bill_height() + 9

    def _fact_rows(self) -> list[tuple[str, str]]:
        words = self.words
        return [
            (words("header.statement_date"), words.context["statement_date"]),
            (words("header.period"), words.context["period"]),
            *member_facts(self.statement, words),
        ]

    def _not_a_bill(self, out: Out, x: float, top: float, width: float) -> None:
        """The "THIS IS NOT A BILL" bar (white on the brand colour)."""
        height = self._not_a_bill_height()
        out.round_rect(self.theme.primary, x, PAGE_HEIGHT - top - height, width, height, 3)
        text = self.words("header.not_a_bill")
        low = self.sizes.page_one
        size = fit_size(text, BOLD, width - 12, max(11.5, low), low)
        text = ellipsize(text, BOLD, size, width - 8)
        with out.tagged("P"):
            out.show(x + (width - text_width(text, BOLD, size)) / 2,
                     PAGE_HEIGHT - top - height / 2 - size * 0.35, text, BOLD, size, WHITE)

    def _statement_facts(self, out: Out) -> None:
        theme = self.theme
        x, width = RIGHT_COLUMN_X, PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        size, title = self._title()
        with out.tagged("H1"):
            out.show(x, PAGE_HEIGHT - MARGIN - size, title, BOLD, size, theme.primary)
        self._not_a_bill(out, x, MARGIN + size + 7, width)
        draw_facts(out, self._fact_rows(), x, self._facts_top(), width,
                   self.first_page_top() - 0.1 * inch, theme, self.sizes.page_one)


@cache
def line_depth() -> float:
    """How far below its top a `_draw_lines` line's ink may reach, as a multiple of the size:
    the baseline 0.8 size down, then the descender of the face that draws it (Noto Sans, read
    from the embedded font file's metrics, not a built-in font's)."""
    return 0.8 + -face(REGULAR).descent / 1000


on_change(line_depth.cache_clear)


def logo_alt(words: Words) -> str:
    """The logo's alternative text: the brand's `identity.logo_alt`, else "<name> logo"."""
    if words.brand.has("identity.logo_alt"):
        return words.brand.string("identity.logo_alt")
    return f"{words.context['short_name']} logo"


def _draw_lines(out: Out, lines: Sequence[str], font: str, size: float, leading: float,
                x: float, top: float, color: str) -> None:
    """Lines whose first line's top is `top` points below the top of the sheet."""
    y = PAGE_HEIGHT - top - size * 0.8
    for line in lines:
        out.show(x, y, line, font, size, color)
        y -= leading


def member_facts(statement: Statement, words: Words) -> list[tuple[str, str]]:
    """The right column's rows about the member, plan and service, under the document's own."""
    member = statement.member
    return [
        (words("header.member_id"), mask_member_id(member.member_id)),
        (words("header.plan"), statement.plan.plan_name),
        (words("header.group"), member.group_number),
        (words("header.customer_service"), words("header.service_line")),
        ("", words.context["hours"]),
        ("", words.context["website"]),
    ]


def _lay_facts(rows: Sequence[tuple[str, str]], width: float, size: float
               ) -> tuple[list[tuple[tuple[str, ...], tuple[str, ...]]], float, float]:
    """The rows wrapped at `size`: (label lines, value lines) per row, label width, height.

    Labels get the room the language needs (up to 40% of the column) and wrap beyond it. In
    large print (STACKED_FROM and up) each label is a line of its own above its value, both
    the column's width (label width 0)."""
    if size >= STACKED_FROM:
        laid = [(wrap_text(label, REGULAR, size, width) if label else (),
                 wrap_text(value, BOLD if label else REGULAR, size, width, remember=False))
                for label, value in rows]
        return laid, 0.0, sum(len(a) + len(b) for a, b in laid) * size * 1.3
    label_width = min(0.4 * width,
                      max(text_width(label, REGULAR, size) for label, _ in rows) + 6)
    # a row without a label (hours, website) continues the row above: when it does not fit
    # beside the labels it takes the whole column
    laid = [(wrap_text(label, REGULAR, size, label_width - 6) if label else (),
             wrap_text(value, BOLD if label else REGULAR, size,
                       width - label_width if label or text_width(value, REGULAR, size)
                       <= width - label_width else width, remember=False))
            for label, value in rows]
    return laid, label_width, sum(max(len(a), len(b)) for a, b in laid) * size * 1.3


STACKED_FROM = 12.0
"""From this size (large print) the facts column stacks each label above its value."""


def facts_height(rows: Sequence[tuple[str, str]], width: float, size: float) -> float:
    """How tall draw_facts draws the rows at `size` (the page-1 header grows to hold them)."""
    return _lay_facts(rows, width, size)[2]


def draw_facts(out: Out, rows: Sequence[tuple[str, str]], x: float, top: float,
               width: float, bottom: float, theme: Theme, size: float = 10.0) -> None:
    """Label/value rows in the right column at `size` (page 1: at least 10 pt; large print
    16 pt); the header zone is made tall enough for them (`PageFurniture.first_page_top`)."""
    label_size, leading = size, size * 1.3
    laid, label_width, _ = _lay_facts(rows, width, size)
    stacked = size >= STACKED_FROM
    y = top
    table = (Tag("Table"), "Table")  # tagged: a row header (TH) and its value (TD) per row
    for labels, values in laid:
        room = int((bottom - y + 0.01) // leading)
        if room <= 0:
            break
        row = (table, (Tag("TR"), "TR"))
        if labels:
            out.begin((*row, (Tag("TH", scope="Row"), "TH")))
        for index, line in enumerate(labels[:room]):
            out.show(x, PAGE_HEIGHT - y - size - index * leading, line, REGULAR, label_size,
                     theme.muted)
        out.begin((*row, (Tag("TD"), "TD")))
        font = BOLD if labels else REGULAR
        value_x = x + label_width if labels or all(
            text_width(line, font, size) <= width - label_width for line in values) else x
        below = len(labels) if stacked else 0  # stacked: the value under its label
        for index, line in enumerate(values[:max(0, room - below)]):
            out.show(value_x, PAGE_HEIGHT - y - size - (index + below) * leading, line, font,
                     size, theme.text)
        y += (len(labels) + len(values) if stacked else max(len(labels), len(values))) * leading
    out.end()
