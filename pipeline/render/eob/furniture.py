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

from reportlab.lib.units import inch

from pipeline.model import Statement
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN, PAGE_HEIGHT, PAGE_WIDTH, WHITE, Out, Theme
from pipeline.render.eob.brand import brand_logo
from pipeline.render.eob.words import Words, mask_member_id
from pipeline.render.fonts import BOLD, REGULAR
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

    def footer(self, out: Out, page: int, pages: int) -> None:
        theme, words = self.theme, self.words
        y = BOTTOM - 0.3 * inch
        out.rule(theme.rule, MARGIN, y + 11, PAGE_WIDTH - MARGIN, 0.5)
        label = words("footer.page", page=page, pages=pages)
        label_width = text_width(label, BOLD, 7.5)
        out.show(PAGE_WIDTH - MARGIN - label_width, y, label, BOLD, 7.5, theme.text)
        left = f"{words.context['legal_name']}  \u00b7  {self.reference()}"
        out.show(MARGIN, y, ellipsize(left, REGULAR, 7, CONTENT_WIDTH - label_width - 12),
                 REGULAR, 7, theme.muted)

    def reference(self) -> str:
        """The footer's name for the document (a notice names its claim)."""
        return self.words("footer.statement_ref")

    def continued(self) -> str:
        """The running title of the later pages."""
        return self.words("header.continued")

    def header(self, out: Out, page: int) -> None:
        if page == 1:
            self.first_page(out)
        else:
            self.later_page(out)

    def later_page(self, out: Out) -> None:
        theme, words, member = self.theme, self.words, self.statement.member
        top = PAGE_HEIGHT - MARGIN
        right = PAGE_WIDTH - MARGIN
        name = ellipsize(words.context["short_name"], BOLD, 11, CONTENT_WIDTH * 0.3)
        out.show(MARGIN, top - 11, name, BOLD, 11, theme.primary)
        title = ellipsize(f"{self.continued()}  \u00b7  {words('header.not_a_bill')}",
                          BOLD, 8.5, CONTENT_WIDTH * 0.68)
        out.show(right - text_width(title, BOLD, 8.5), top - 10, title, BOLD, 8.5,
                 theme.primary)
        who = ellipsize(
            f"{words('header.member')}: {member.first_name} {member.last_name}  \u00b7  "
            f"{words('header.member_id')}: {mask_member_id(member.member_id)}",
            REGULAR, 7.5, CONTENT_WIDTH * 0.68)
        out.show(right - text_width(who, REGULAR, 7.5), top - 21, who, REGULAR, 7.5,
                 theme.muted)
        out.rule(theme.primary, MARGIN, top - 28, right, 1.5)

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
            out.image(image, x, PAGE_HEIGHT - top - height + 2, width, height)
            x += width + 9
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        name = context["short_name"]
        size = fit_size(name, BOLD, width, 18, 11)
        out.show(x, PAGE_HEIGHT - top - size, ellipsize(name, BOLD, size, width), BOLD, size,
                 theme.primary)
        lines = [*wrap_text(context["legal_name"], REGULAR, 7.5, width),
                 *wrap_text(self.words("header.administered_by"), REGULAR, 7.5, width)]
        _draw_lines(out, lines[:4], REGULAR, 7.5, 9, x, top + size + 6, theme.muted)
        out.rule(theme.accent, x, PAGE_HEIGHT - top + 4, x + 0.9 * inch, 2)

    def _return_address(self, out: Out) -> None:
        x, top, width, height = RETURN_WINDOW
        inner = width - 2 * WINDOW_PADDING
        name = self.words.context["short_name"]
        out.show(x + WINDOW_PADDING, PAGE_HEIGHT - top - WINDOW_PADDING - 10,
                 ellipsize(name, BOLD, 11, inner), BOLD, 11, self.theme.primary)
        lines = [ellipsize(line, REGULAR, 8, inner)
                 for line in self.words.brand.strings("identity.return_address")[1:]]
        room = int((height - 2 * WINDOW_PADDING - 14) // 9.5)
        _draw_lines(out, lines[:room], REGULAR, 8, 9.5, x + WINDOW_PADDING,
                    top + WINDOW_PADDING + 14, self.theme.text)

    def _insurer_identity(self, out: Out) -> None:
        """The legal name and "administered by" under the return window (the email variant's
        letterhead carries them), between the two windows and clear of both: hidden by the
        envelope, never in the recipient window's keep-out."""
        x = RETURN_WINDOW[0] + WINDOW_PADDING
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        top = RETURN_WINDOW[1] + RETURN_WINDOW[3] + WINDOW_CLEARANCE
        size, leading = 7.5, 9.0
        room = int((RECIPIENT_KEEP_OUT[1] - top - size * _LINE_DEPTH) // leading) + 1
        lines = [*wrap_text(self.words.context["legal_name"], REGULAR, size, width),
                 *wrap_text(self.words("header.administered_by"), REGULAR, size, width)]
        _draw_lines(out, lines[:room], REGULAR, size, leading, x, top, self.theme.muted)

    def _recipient(self, out: Out) -> None:
        member = self.statement.member
        city = f"{member.city}, {member.state} {member.postal_code}".strip()
        lines = [f"{member.first_name} {member.last_name}", member.address_line1,
                 member.address_line2, city]
        x, top, width, height = RECIPIENT_WINDOW
        inner_w, inner_h = width - 2 * WINDOW_PADDING, height - 2 * WINDOW_PADDING
        size, wrapped = fit_block([line for line in lines if line.strip()], REGULAR,
                                  inner_w, inner_h, (10, 9, 8, 7, 6.5))
        _draw_lines(out, wrapped, REGULAR, size, size * 1.15, x + WINDOW_PADDING,
                    top + WINDOW_PADDING, self.theme.text)

    def _statement_facts(self, out: Out) -> None:
        theme, words, statement = self.theme, self.words, self.statement
        x, width = RIGHT_COLUMN_X, PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        top = MARGIN
        title = words("header.title")
        size = fit_size(title, BOLD, width, 17, 11)
        out.show(x, PAGE_HEIGHT - top - size, ellipsize(title, BOLD, size, width), BOLD, size,
                 theme.primary)
        box_top = top + size + 7
        out.round_rect(theme.primary, x, PAGE_HEIGHT - box_top - 19, width, 19, 3)
        not_a_bill = words("header.not_a_bill")
        box_size = fit_size(not_a_bill, BOLD, width - 12, 11.5, 7)
        not_a_bill = ellipsize(not_a_bill, BOLD, box_size, width - 8)
        out.show(x + (width - text_width(not_a_bill, BOLD, box_size)) / 2,
                 PAGE_HEIGHT - box_top - 13.5, not_a_bill, BOLD, box_size, WHITE)
        rows = [
            (words("header.statement_date"), words.context["statement_date"]),
            (words("header.period"), words.context["period"]),
            *member_facts(statement, words),
        ]
        draw_facts(out, rows, x, box_top + 28, width, FIRST_PAGE_TOP - 0.1 * inch, theme)


_LINE_DEPTH = 0.8 + 0.207  # a _draw_lines line: baseline 0.8 size down, Helvetica's descender below


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


def draw_facts(out: Out, rows: Sequence[tuple[str, str]], x: float, top: float,
                width: float, bottom: float, theme: Theme) -> None:
    """Label/value rows in the right column, shrunk until they fit above the flow.

    Labels get the room the language needs (up to 40% of the column) and wrap beyond it.
    """
    for size in (8.0, 7.5, 7.0, 6.5, 6.0):
        leading, label_size = size * 1.3, size - 0.5
        label_width = min(0.4 * width,
                          max(text_width(label, REGULAR, label_size) for label, _ in rows) + 6)
        laid = [(wrap_text(label, REGULAR, label_size, label_width - 6) if label else (),
                 wrap_text(value, BOLD if label else REGULAR, size, width - label_width,
                           remember=False))
                for label, value in rows]
        needed = sum(max(len(labels), len(values)) for labels, values in laid) * leading
        if top + needed <= bottom:
            break
    y = top
    for labels, values in laid:
        room = int((bottom - y) // leading)  # only absurd values at 6 pt get cut
        if room <= 0:
            return
        for index, line in enumerate(labels[:room]):
            out.show(x, PAGE_HEIGHT - y - size - index * leading, line, REGULAR, label_size,
                     theme.muted)
        font = BOLD if labels else REGULAR
        for index, line in enumerate(values[:room]):
            out.show(x + label_width, PAGE_HEIGHT - y - size - index * leading, line, font,
                     size, theme.text)
        y += max(len(labels), len(values)) * leading
