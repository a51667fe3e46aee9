"""Render one Statement as a member Explanation of Benefits PDF (reportlab platypus).

Why it is built this way:
- Speed: millions of statements a month are CPU-bound here, so text is drawn by small
  plain-text flowables (no Paragraph markup parsing) and table cells are plain strings
  wrapped with cached font metrics. Templates, colours and fonts are loaded once per process.
- Determinism: reportlab invariant mode plus a creation date derived from the statement date,
  so re-rendering the same statement yields the same bytes (a content hash detects
  "already rendered").
- PHI: nothing here logs; exceptions name the statement_id and template key only.
- Wording comes from templates/ (see pipeline.templates); no member-facing text lives here.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache, partial
from itertools import groupby
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase._cidfontdata import CIDFontInfo
from reportlab.pdfbase.cidfonts import UnicodeCIDFont, structToPDF
from reportlab.pdfbase.pdfdoc import DummyDoc, PDFObject
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from pipeline.model import ClaimLine, Statement
from pipeline.periods import parse_period
from pipeline.templates import (
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    TemplateFile,
    brand,
    resolve_language,
    statement_text,
)

__all__ = [
    "RenderError",
    "RenderedPdf",
    "TemplateError",
    "format_money",
    "mask_member_id",
    "render_statement",
]

# ASCII85-wrapping compressed streams is pure Python without reportlab's optional C
# accelerator and only makes files bigger; binary Flate streams are standard PDF.
rl_config.useA85 = 0

VARIANTS = ("email", "print")
PAGE_WIDTH, PAGE_HEIGHT = letter
MARGIN = 0.5 * inch
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
BOTTOM = 0.7 * inch  # frame bottom; the footer sits below it
FIRST_PAGE_TOP = 3.4 * inch  # page 1 header zone (address windows, statement facts)
LATER_PAGE_TOP = 1.0 * inch
RIGHT_COLUMN_X = 4.75 * inch

# #10 double-window envelope, letter sheet tri-folded (positions from the sheet's top-left).
# Typical vendor stock; confirm against the print vendor's envelope spec before production.
RETURN_WINDOW = (0.75 * inch, 0.5 * inch, 3.25 * inch, 0.875 * inch)  # x, top, width, height
RECIPIENT_WINDOW = (0.75 * inch, 2.0 * inch, 3.75 * inch, 1.125 * inch)
WINDOW_PADDING = 0.12 * inch
FOLD_MARKS = (PAGE_HEIGHT / 3, 2 * PAGE_HEIGHT / 3)

REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
CID_FONTS = {  # template font names -> reportlab built-in CID fonts (not embedded)
    "cjk-traditional": "MSung-Light",
    "cjk-simplified": "STSong-Light",
    "korean": "HYSMyeongJo-Medium",
    "japanese": "HeiseiMin-W3",
}
MONEY_COLUMNS: tuple[tuple[str, str], ...] = (
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


class RenderError(RuntimeError):
    """Layout failed for a statement; the message names the statement_id only."""


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    pdf: bytes
    pages: int


# ---------------------------------------------------------------- formatting helpers


def format_money(cents: int) -> str:
    """Integer cents as "$1,234.56" (negative as "-$1,234.56"); no floats involved."""
    dollars, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${dollars:,}.{rest:02d}"


def mask_member_id(member_id: str) -> str:
    """Only the last 4 characters are shown (EOB_CONTENT row 6)."""
    return "\u2022" * 5 + member_id[-4:]


def _line_amount(line: ClaimLine, name: str) -> int:
    return int(getattr(line, name))


@cache
def _widths(font: str) -> dict[str, float]:
    """Per-character advance widths at size 1, filled on demand (reportlab has no kerning)."""
    return {}


def text_width(text: str, font: str, size: float) -> float:
    """Same as pdfmetrics.stringWidth, minus its per-call encoding work (hot path)."""
    table = _widths(font)
    try:
        return sum(map(table.__getitem__, text)) * size
    except KeyError:
        for char in set(text).difference(table):
            table[char] = pdfmetrics.stringWidth(char, font, 1.0)
        return sum(map(table.__getitem__, text)) * size


def wrap_text(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy word wrap that also breaks over-long words, so text never leaves its box."""
    return list(_wrap_cached(text, font, size, round(width, 3)))


@lru_cache(maxsize=8192)
def _wrap_cached(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """Template wording repeats on every statement, so most wraps are cache hits."""
    lines: list[str] = []
    space = text_width(" ", font, size)
    for paragraph in text.split("\n"):
        current, current_width = "", 0.0
        for word in paragraph.split():
            word_width = text_width(word, font, size)
            if current and current_width + space + word_width <= width:
                current, current_width = f"{current} {word}", current_width + space + word_width
                continue
            if current:
                lines.append(current)
            while word_width > width and len(word) > 1:
                head, word = _break_word(word, font, size, width)
                lines.append(head)
                word_width = text_width(word, font, size)
            current, current_width = word, word_width
        lines.append(current)
    return tuple(lines)


def _break_word(word: str, font: str, size: float, width: float) -> tuple[str, str]:
    used = 0.0
    for index, char in enumerate(word):
        used += text_width(char, font, size)
        if used > width:
            cut = max(1, index)
            return word[:cut], word[cut:]
    return word, ""


def _ellipsize(text: str, font: str, size: float, width: float) -> str:
    lines = wrap_text(text, font, size, width)
    if len(lines) <= 1:
        return text
    first = lines[0]
    while first and text_width(first + "\u2026", font, size) > width:
        first = first[:-1]
    return first + "\u2026"


# ---------------------------------------------------------------- fast text output


_ESCAPES = tuple(
    f"\\{code:03o}" if code < 32 or code > 126
    else ("\\" + chr(code) if chr(code) in "\\()" else chr(code))
    for code in range(256)
)


@cache
def _single_byte_encoding(font: str) -> str | None:
    """The codec of a standard (Type 1) font; None for CID fonts, which take the slow path."""
    face = pdfmetrics.getFont(font)
    if getattr(face, "_multiByte", False) or face._dynamicFont:
        return None
    # reportlab's WinAnsi codec writes the bullet as 0x7F, which text extraction and screen
    # readers do not map back; cp1252 uses the code the PDF standard assigns (0x95).
    return "cp1252" if face.encName == "WinAnsiEncoding" else face.encName


@lru_cache(maxsize=16384)
def _pdf_literal(text: str, font: str) -> str | None:
    """`text` as the inside of a PDF string for a standard font; None for CID fonts."""
    encoding = _single_byte_encoding(font)
    if encoding is None:
        return None
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = "".join(_fold(char, encoding) for char in text).encode(encoding)
    return "".join([_ESCAPES[byte] for byte in raw])


_STROKED = str.maketrans("ŁłĐđĦħŦŧı", "LlDdHhTti")  # letters Unicode does not decompose


def _fold(char: str, encoding: str) -> str:
    """The closest character the font can show: "ễ" becomes "ê", not a blank glyph box.

    Standard PDF fonts cover Western European letters only; names from other alphabets
    keep as many of their accents as the font has.
    """
    try:
        char.encode(encoding)
        return char
    except UnicodeEncodeError:
        pass
    decomposed = unicodedata.normalize("NFKD", char.translate(_STROKED)) or "?"
    base, marks = decomposed[0], decomposed[1:]
    for keep in range(len(marks), -1, -1):
        candidate = unicodedata.normalize("NFC", base + marks[:keep])
        try:
            candidate.encode(encoding)
            return candidate
        except UnicodeEncodeError:
            continue
    return "?"


def _rgb(color: colors.Color) -> str:
    return f"{color.red:.3f} {color.green:.3f} {color.blue:.3f}"


class FastText:
    """Positioned text written as literal BT..ET operators inside q..Q.

    reportlab formats every number and string of a text object in pure Python unless its
    optional C accelerator package is installed; writing the same operators directly halves
    render time. Text a standard font cannot encode goes through reportlab's own text object
    (character substitution), so output stays correct for any input.
    """

    __slots__ = ("canvas", "parts", "font", "color")

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.parts: list[str] = []
        self.font: tuple[str, float] | None = None
        self.color: colors.Color | None = None

    def show(self, x: float, y: float, text: str, font: str, size: float,
             color: colors.Color) -> None:
        literal = _pdf_literal(text, font)
        if literal is None:
            self.flush()
            self.canvas.saveState()
            self.canvas.setFillColor(color)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, y, text)
            self.canvas.restoreState()
            return
        parts = self.parts
        if not parts:
            parts.append("q BT")
        if (font, size) != self.font:
            self.font = (font, size)
            parts.append(f"{self.canvas._doc.getInternalFontName(font)} {size:g} Tf")
        if color is not self.color:
            self.color = color
            parts.append(f"{_rgb(color)} rg")
        parts.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm ({literal}) Tj")

    def flush(self) -> None:
        if self.parts:
            self.parts.append("ET Q")
            self.canvas.addLiteral("\n".join(self.parts))
        self.parts, self.font, self.color = [], None, None


# ---------------------------------------------------------------- theme and fonts


@dataclass(frozen=True, slots=True)
class Theme:
    primary: colors.Color
    accent: colors.Color
    tint: colors.Color
    accent_tint: colors.Color
    text: colors.Color
    muted: colors.Color
    alert: colors.Color
    rule: colors.Color


def _mix(color: colors.Color, share: float) -> colors.Color:
    """`share` of the colour over white: light tints that print well in grayscale too."""
    return colors.Color(*(1 - share + share * c for c in (color.red, color.green, color.blue)))


@cache
def _theme(brand_file: TemplateFile) -> Theme:
    def color(key: str) -> colors.Color:
        try:
            return colors.HexColor(brand_file.string(f"colors.{key}"))
        except ValueError as exc:
            if isinstance(exc, TemplateError):
                raise
            raise brand_file.error(f"colors.{key}", "not a #RRGGBB colour") from None

    accent = color("accent")
    return Theme(
        primary=color("primary"),
        accent=accent,
        tint=color("tint"),
        accent_tint=_mix(accent, 0.14),
        text=color("text"),
        muted=color("muted"),
        alert=color("alert"),
        rule=colors.Color(0.78, 0.81, 0.83),
    )


# reportlab pairs MSung-Light (Adobe-CNS1) with the GB CMap; viewers then show nothing.
_CMAP_FIXES = {"MSung-Light": "UniCNS-UCS2-H"}


class _Preformatted(PDFObject):
    """A PDF object whose bytes were formatted once and are reused by every document."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def format(self, document: Any) -> bytes:
        return self.body


class CachedCIDFont(UnicodeCIDFont):
    """A non-embedded CJK font whose large, constant font dictionary is formatted only once.

    reportlab rebuilds and formats the dictionary (with its glyph-width array) for every
    document, which costs more than the rest of a statement; the bytes never change.
    """

    def __init__(self, face: str) -> None:
        super().__init__(face)
        if face in _CMAP_FIXES:
            self.encodingName = _CMAP_FIXES[face]
        self._formatted: dict[str, bytes] = {}

    def addObjects(self, doc: Any) -> None:  # noqa: N802  (reportlab's name)
        internal = f"F{len(doc.fontMapping) + 1}"
        body = self._formatted.get(internal)
        if body is None:
            info = dict(CIDFontInfo[self.face.name], Name=f"/{internal}",
                        Encoding=f"/{self.encodingName}")
            body = self._formatted[internal] = structToPDF(info).format(DummyDoc())
        ref = doc.Reference(_Preformatted(body), internal)
        doc.idToObject["BasicFonts"].dict[internal] = ref
        doc.fontMapping[self.name] = f"/{internal}"


@cache
def _font(name: str) -> str:
    """Register a CID font on first use (referenced, not embedded: viewers supply glyphs)."""
    pdfmetrics.registerFont(CachedCIDFont(name))
    return name


# ---------------------------------------------------------------- wording


class Words:
    """Template lookups for one statement: shared placeholders plus per-call extras."""

    __slots__ = ("file", "brand", "context")

    def __init__(self, file: TemplateFile, brand_file: TemplateFile,
                 context: Mapping[str, Any]) -> None:
        self.file = file
        self.brand = brand_file
        self.context = context

    def __call__(self, key: str, **extra: Any) -> str:
        if extra:  # per-claim values can be PHI: rendered fresh, never memoised
            return self.file.text(key, {**self.context, **extra})
        return self.file.text(key, self.context, memo=True)

    def paragraphs(self, key: str) -> tuple[str, ...]:
        return self.file.texts(key, self.context)


def _hours(brand_file: TemplateFile, language: str) -> str:
    hours = brand_file.value("identity.hours")
    if isinstance(hours, str):
        return hours
    key = f"identity.hours.{language}" if brand_file.has(f"identity.hours.{language}") else (
        "identity.hours.en"
    )
    return brand_file.string(key)


def _format_date(words: TemplateFile, day: date) -> str:
    return day.strftime(words.string("meta.date_format"))


def _period_label(words: TemplateFile, statement: Statement) -> str:
    first_day, _ = parse_period(statement.period)  # BadPeriod names the period only
    year, month = first_day.year, first_day.month
    months = words.strings("meta.months")
    if len(months) != 12:
        raise words.error("meta.months", "expected 12 month names")
    return words.text("meta.period", {"month": months[month - 1], "year": year})


def _context(statement: Statement, words: TemplateFile, brand_file: TemplateFile,
             language: str) -> dict[str, Any]:
    """Placeholders every string may use; appeal details only when the statement needs them."""
    context: dict[str, Any] = {
        "legal_name": brand_file.string("identity.legal_name"),
        "short_name": brand_file.string("identity.short_name"),
        "plan_administrator": brand_file.string("identity.plan_administrator"),
        "plan_name": statement.plan.plan_name,
        "phone": brand_file.string("identity.phone"),
        "tty": brand_file.string("identity.tty"),
        "hours": _hours(brand_file, language),
        "website": brand_file.string("identity.website"),
        "period": _period_label(words, statement),
        "statement_date": _format_date(words, statement.statement_date),
        "statement_id": statement.statement_id,
    }
    if statement.has_adverse_determination:
        lob = statement.member.line_of_business
        state = statement.member.state.upper()
        assist = (
            f"consumer_assistance.states.{state}"
            if brand_file.has(f"consumer_assistance.states.{state}")
            else "consumer_assistance"
        )
        context |= {
            "appeal_days": brand_file.integer(f"appeals.deadline_days.{lob}"),
            "appeal_address": ", ".join(brand_file.strings("appeals.address")),
            "appeal_fax": brand_file.string("appeals.fax"),
            "appeal_portal": brand_file.string("appeals.portal"),
            "external_review_name": brand_file.string("external_review.name"),
            "external_review_phone": brand_file.string("external_review.phone"),
            "external_review_website": brand_file.string("external_review.website"),
            "consumer_name": brand_file.string(f"{assist}.name"),
            "consumer_phone": brand_file.string(f"{assist}.phone"),
            "consumer_website": brand_file.string(f"{assist}.website"),
        }
    return context


# ---------------------------------------------------------------- flowables


class TextBlock(Flowable):
    """Plain text in one font, wrapped to the frame and split across pages by lines.

    Template text is plain (no markup), so nothing needs escaping and no Paragraph parser
    runs: "&", "<" and "(" print as written.
    """

    def __init__(self, text: str, font: str, size: float, color: colors.Color, *,
                 leading: float | None = None, space_before: float = 0, space_after: float = 0,
                 indent: float = 0, lines: list[str] | None = None) -> None:
        super().__init__()
        self.text = text
        self.font, self.size, self.color = font, size, color
        self.leading = leading or round(size * 1.28, 2)
        self.spaceBefore, self.spaceAfter = space_before, space_after
        self.indent = indent
        self._fixed = lines is not None  # a part produced by split keeps its lines
        self._lines: list[str] = lines or []
        self._wrapped_at: float | None = None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        if not self._fixed and self._wrapped_at != availWidth:
            self._lines = wrap_text(self.text, self.font, self.size, availWidth - self.indent)
            self._wrapped_at = availWidth
        self.width, self.height = availWidth, len(self._lines) * self.leading
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        self.wrap(availWidth, availHeight)
        fits = int((availHeight + 1e-6) // self.leading)
        if fits < 2 or len(self._lines) - fits < 2:  # no orphan or widow lines
            return []
        return [self._part(self._lines[:fits], self.spaceBefore, 0),
                self._part(self._lines[fits:], 0, self.spaceAfter)]

    def _part(self, lines: list[str], before: float, after: float) -> TextBlock:
        return TextBlock("", self.font, self.size, self.color, leading=self.leading,
                         space_before=before, space_after=after, indent=self.indent, lines=lines)

    def draw(self) -> None:
        self._draw_lines(self.height)

    def _draw_lines(self, top: float) -> None:
        out = FastText(self.canv)
        baseline = top - self.leading + (self.leading - self.size) / 2 + self.size * 0.22
        for line in self._lines:
            if line:
                out.show(self.indent, baseline, line, self.font, self.size, self.color)
            baseline -= self.leading
        out.flush()


class Heading(TextBlock):
    """A section heading over a short brand-coloured rule; kept with what follows it."""

    RULE_GAP = 3.0

    def __init__(self, text: str, theme: Theme, *, size: float = 10.5) -> None:
        super().__init__(text, BOLD, size, theme.primary, space_before=10, space_after=5)
        self.rule_color = theme.accent
        self.keepWithNext = True

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        width, height = super().wrap(availWidth, availHeight)
        self.height = height + self.RULE_GAP
        return width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        return []

    def draw(self) -> None:
        self._draw_lines(self.height)
        _rule(self.canv, 0, 0.5, min(self.width, 1.1 * inch), 1.2, self.rule_color)


class ProgressBars(Flowable):
    """Year-to-date accumulators as labelled bars: how far the member is toward each limit."""

    ROW = 17.0

    def __init__(self, rows: Sequence[tuple[str, float, str, str]], theme: Theme) -> None:
        super().__init__()
        self.rows = rows  # (label, fraction 0..1, amounts text, remaining text)
        self.theme = theme
        self.spaceAfter = 4

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        self.width, self.height = availWidth, len(self.rows) * self.ROW
        return self.width, self.height

    def draw(self) -> None:
        canvas, theme = self.canv, self.theme
        label_width, bar_width = 1.75 * inch, 2.6 * inch
        text_x = label_width + bar_width + 10
        out = FastText(canvas)
        for index, (label, fraction, amounts, remaining) in enumerate(self.rows):
            y = self.height - (index + 1) * self.ROW + 4
            canvas.setFillColor(theme.tint)
            canvas.roundRect(label_width, y - 1, bar_width, 9, 3, stroke=0, fill=1)
            if fraction > 0:
                canvas.setFillColor(theme.accent)
                canvas.roundRect(label_width, y - 1, max(6.0, bar_width * fraction), 9, 3,
                                 stroke=0, fill=1)
            out.show(0, y + 1, _ellipsize(label, BOLD, 8, label_width - 6), BOLD, 8, theme.text)
            line = _ellipsize(f"{amounts}  \u00b7  {remaining}", REGULAR, 8, self.width - text_x)
            out.show(text_x, y + 1, line, REGULAR, 8, theme.text)
            out.flush()


CELL_PAD = 2.5
MAX_CELL_LINES = 12  # a pathological value is cut (with an ellipsis) rather than overflowing


@dataclass(frozen=True, slots=True)
class Cell:
    lines: tuple[str, ...]
    x: float
    width: float
    font: str
    size: float
    color: colors.Color
    align: str = "left"  # "left" or "right"

    @property
    def leading(self) -> float:
        return self.size * 1.22


@dataclass(frozen=True, slots=True)
class Row:
    cells: tuple[Cell, ...]
    pad_top: float = 2.0
    pad_bottom: float = 2.0
    fills: tuple[tuple[float, float, colors.Color], ...] = ()  # x, width, colour
    rules: tuple[tuple[str, float, float, float, colors.Color], ...] = ()  # edge, x, w, pt, colour
    keep_with_next: bool = False
    context: tuple[Row, ...] = ()  # rows repeated above this one when a page starts here

    @property
    def height(self) -> float:
        text = max((len(cell.lines) * cell.leading for cell in self.cells), default=0.0)
        return text + self.pad_top + self.pad_bottom


def heading_rows(text: str, theme: Theme, width: float = CONTENT_WIDTH) -> list[Row]:
    """A section heading as grid rows, so a long table starts under it on the same page.

    (A Heading flowable kept with a table taller than the page forces a page break.)
    """
    size = 10.5
    lines = wrap_text(text, BOLD, size, width)
    heading = Cell(tuple(lines), -CELL_PAD, width, BOLD, size, theme.primary)
    rule = (("bottom", 0.0, min(width, 1.1 * inch), 1.2, theme.accent),)
    return [Row((heading,), pad_top=0, pad_bottom=3.5, rules=rule), Row((), pad_top=5,
                                                                          pad_bottom=0)]


def cell_lines(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    lines = wrap_text(text, font, size, width - 2 * CELL_PAD)
    if len(lines) > MAX_CELL_LINES:
        lines = [*lines[: MAX_CELL_LINES - 1],
                 _ellipsize(" ".join(lines[MAX_CELL_LINES - 1:]), font, size,
                            width - 2 * CELL_PAD)]
    return tuple(lines)


class Grid(Flowable):
    """A table of pre-wrapped rows: splits between rows, repeats its header rows on each page.

    Used instead of platypus Table because Table's per-cell style resolution and drawing
    dominated render time (about 45% of a typical statement); this draws all text of a
    page's part in one text object. Rows flagged keep_with_next never end a page.
    """

    def __init__(self, rows: Sequence[Row], *, header_rows: int = 0, lead_rows: int = 0,
                 space_before: float = 0, space_after: float = 0) -> None:
        super().__init__()
        self.spaceBefore = space_before
        self.rows = tuple(rows)
        self.lead_rows = lead_rows  # e.g. the section heading: first part only
        self.header_rows = header_rows  # column headings: repeated on every part
        self.spaceAfter = space_after
        self._heights = [row.height for row in self.rows]

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        self.width = max((c.x + c.width for row in self.rows for c in row.cells), default=0.0)
        self.height = sum(self._heights)
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        body = self.lead_rows + self.header_rows
        used = sum(self._heights[:body])
        cut = 0
        for index in range(body, len(self.rows)):
            used += self._heights[index]
            if used > availHeight + 1e-6:
                break
            if not self.rows[index].keep_with_next:
                cut = index + 1
        if cut <= body or cut >= len(self.rows):
            return []
        head = self.rows[self.lead_rows: body] + self.rows[cut].context
        return [Grid(self.rows[:cut], header_rows=self.header_rows, lead_rows=self.lead_rows,
                     space_before=self.spaceBefore),
                Grid(head + self.rows[cut:], header_rows=self.header_rows,
                     space_after=self.spaceAfter)]

    def draw(self) -> None:
        tops, y = [], self.height
        for height in self._heights:
            tops.append(y)
            y -= height
        ops = ["q"]
        for row, height, top in zip(self.rows, self._heights, tops, strict=True):
            for x, width, color in row.fills:
                ops.append(f"{_rgb(color)} rg {x:.2f} {top - height:.2f} {width:.2f} "
                           f"{height:.2f} re f")
        for row, height, top in zip(self.rows, self._heights, tops, strict=True):
            for edge, x, width, thickness, color in row.rules:
                edge_y = top if edge == "top" else top - height
                ops.append(f"{_rgb(color)} RG {thickness:.2f} w {x:.2f} {edge_y:.2f} m "
                           f"{x + width:.2f} {edge_y:.2f} l S")
        ops.append("Q")
        if len(ops) > 2:
            self.canv.addLiteral("\n".join(ops))
        self._draw_text(tops)

    def _draw_text(self, tops: list[float]) -> None:
        out = FastText(self.canv)
        for row, top in zip(self.rows, tops, strict=True):
            for cell in row.cells:
                baseline = top - row.pad_top - cell.size * 0.82
                for line in cell.lines:
                    if line:
                        x = cell.x + CELL_PAD
                        if cell.align == "right":
                            x = cell.x + cell.width - CELL_PAD - text_width(line, cell.font,
                                                                            cell.size)
                        out.show(x, baseline, line, cell.font, cell.size, cell.color)
                    baseline -= cell.leading
        out.flush()


# ---------------------------------------------------------------- page furniture


class PagedCanvas(Canvas):
    """Holds pages until save() so each footer can say "Page x of y" (one layout pass)."""

    def __init__(self, *args: Any, footer: Callable[[Canvas, int, int], None],
                 created: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._held: list[dict[str, Any]] = []
        self.setDateFormatter(lambda *_: created)

    def showPage(self) -> None:  # noqa: N802
        self._held.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held)
        for state in self._held:
            self.__dict__.update(state)
            self._footer(self, self._pageNumber, total)
            Canvas.showPage(self)
        Canvas.save(self)


@dataclass(slots=True)
class PageFurniture:
    """Everything drawn outside the flow: page-1 header, running header, footer."""

    statement: Statement
    words: Words
    theme: Theme
    variant: str
    pages: int = 0

    def footer(self, canvas: Canvas, page: int, pages: int) -> None:
        self.pages = pages
        theme, words = self.theme, self.words
        y = BOTTOM - 0.3 * inch
        _rule(canvas, MARGIN, y + 11, PAGE_WIDTH - MARGIN, 0.5, theme.rule)
        out = FastText(canvas)
        label = words("footer.page", page=page, pages=pages)
        label_width = text_width(label, BOLD, 7.5)
        out.show(PAGE_WIDTH - MARGIN - label_width, y, label, BOLD, 7.5, theme.text)
        left = f"{words.context['legal_name']}  \u00b7  {words('footer.statement_ref')}"
        out.show(MARGIN, y, _ellipsize(left, REGULAR, 7, CONTENT_WIDTH - label_width - 12),
                 REGULAR, 7, theme.muted)
        out.flush()

    def later_page(self, canvas: Canvas, _doc: BaseDocTemplate) -> None:
        theme, words, member = self.theme, self.words, self.statement.member
        top = PAGE_HEIGHT - MARGIN
        right = PAGE_WIDTH - MARGIN
        out = FastText(canvas)
        name = _ellipsize(words.context["short_name"], BOLD, 11, CONTENT_WIDTH * 0.3)
        out.show(MARGIN, top - 11, name, BOLD, 11, theme.primary)
        title = _ellipsize(f"{words('header.continued')}  \u00b7  {words('header.not_a_bill')}",
                           BOLD, 8.5, CONTENT_WIDTH * 0.68)
        out.show(right - text_width(title, BOLD, 8.5), top - 10, title, BOLD, 8.5,
                 theme.primary)
        who = _ellipsize(
            f"{words('header.member')}: {member.first_name} {member.last_name}  \u00b7  "
            f"{words('header.member_id')}: {mask_member_id(member.member_id)}",
            REGULAR, 7.5, CONTENT_WIDTH * 0.68)
        out.show(right - text_width(who, REGULAR, 7.5), top - 21, who, REGULAR, 7.5,
                 theme.muted)
        out.flush()
        _rule(canvas, MARGIN, top - 28, right, 1.5, theme.primary)

    def first_page(self, canvas: Canvas, _doc: BaseDocTemplate) -> None:
        out = FastText(canvas)
        if self.variant == "print":
            self._return_address(out)
            for from_top in FOLD_MARKS:
                y = PAGE_HEIGHT - from_top
                _rule(canvas, 0.12 * inch, y, 0.3 * inch, 0.4, self.theme.muted)
        else:
            self._letterhead(out)
        self._recipient(out)
        self._statement_facts(out)
        out.flush()

    def _letterhead(self, out: FastText) -> None:
        theme, context = self.theme, self.words.context
        x, top = RETURN_WINDOW[0], RETURN_WINDOW[1]
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        name = context["short_name"]
        size = _fit_size(name, BOLD, width, 18, 11)
        out.show(x, PAGE_HEIGHT - top - size, _ellipsize(name, BOLD, size, width), BOLD, size,
                 theme.primary)
        lines = [*wrap_text(context["legal_name"], REGULAR, 7.5, width),
                 *wrap_text(self.words("header.administered_by"), REGULAR, 7.5, width)]
        _draw_lines(out, lines[:4], REGULAR, 7.5, 9, x, top + size + 6, theme.muted)
        _rule(out.canvas, x, PAGE_HEIGHT - top + 4, x + 0.9 * inch, 2, theme.accent)

    def _return_address(self, out: FastText) -> None:
        x, top, width, height = RETURN_WINDOW
        inner = width - 2 * WINDOW_PADDING
        name = self.words.context["short_name"]
        out.show(x + WINDOW_PADDING, PAGE_HEIGHT - top - WINDOW_PADDING - 10,
                 _ellipsize(name, BOLD, 11, inner), BOLD, 11, self.theme.primary)
        lines = [_ellipsize(line, REGULAR, 8, inner)
                 for line in self.words.brand.strings("identity.return_address")[1:]]
        room = int((height - 2 * WINDOW_PADDING - 14) // 9.5)
        _draw_lines(out, lines[:room], REGULAR, 8, 9.5, x + WINDOW_PADDING,
                    top + WINDOW_PADDING + 14, self.theme.text)

    def _recipient(self, out: FastText) -> None:
        member = self.statement.member
        city = f"{member.city}, {member.state} {member.postal_code}".strip()
        lines = [f"{member.first_name} {member.last_name}", member.address_line1,
                 member.address_line2, city]
        x, top, width, height = RECIPIENT_WINDOW
        inner_w, inner_h = width - 2 * WINDOW_PADDING, height - 2 * WINDOW_PADDING
        font, size, wrapped = _fit_block([line for line in lines if line.strip()], REGULAR,
                                         inner_w, inner_h, (10, 9, 8, 7, 6.5))
        _draw_lines(out, wrapped, font, size, size * 1.15, x + WINDOW_PADDING,
                    top + WINDOW_PADDING, self.theme.text)

    def _statement_facts(self, out: FastText) -> None:
        theme, words, statement = self.theme, self.words, self.statement
        x, width = RIGHT_COLUMN_X, PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        top = MARGIN
        title = words("header.title")
        size = _fit_size(title, BOLD, width, 17, 11)
        out.show(x, PAGE_HEIGHT - top - size, _ellipsize(title, BOLD, size, width), BOLD, size,
                 theme.primary)
        box_top = top + size + 7
        out.flush()
        canvas = out.canvas
        canvas.setFillColor(theme.primary)
        canvas.roundRect(x, PAGE_HEIGHT - box_top - 19, width, 19, 3, stroke=0, fill=1)
        not_a_bill = words("header.not_a_bill")
        box_size = _fit_size(not_a_bill, BOLD, width - 12, 11.5, 7)
        not_a_bill = _ellipsize(not_a_bill, BOLD, box_size, width - 8)
        out.show(x + (width - text_width(not_a_bill, BOLD, box_size)) / 2,
                 PAGE_HEIGHT - box_top - 13.5, not_a_bill, BOLD, box_size, colors.white)
        member, plan = statement.member, statement.plan
        rows = [
            (words("header.statement_date"), words.context["statement_date"]),
            (words("header.period"), words.context["period"]),
            (words("header.member_id"), mask_member_id(member.member_id)),
            (words("header.plan"), plan.plan_name),
            (words("header.group"), member.group_number),
            (words("header.customer_service"), words("header.service_line")),
            ("", words.context["hours"]),
            ("", words.context["website"]),
        ]
        _draw_facts(out, rows, x, box_top + 28, width, FIRST_PAGE_TOP - 0.1 * inch, theme)


def _rule(canvas: Canvas, x1: float, y: float, x2: float, thickness: float,
          color: colors.Color) -> None:
    canvas.addLiteral(f"q {_rgb(color)} RG {thickness:.2f} w {x1:.2f} {y:.2f} m {x2:.2f} "
                      f"{y:.2f} l S Q")


def _fit_size(text: str, font: str, width: float, largest: float, smallest: float) -> float:
    size = largest
    while size > smallest and text_width(text, font, size) > width:
        size -= 0.5
    return size


def _fit_block(lines: Sequence[str], font: str, width: float, height: float,
               sizes: Sequence[float]) -> tuple[str, float, list[str]]:
    """The largest size at which the wrapped lines fit; at the smallest, cut what is left."""
    wrapped: list[str] = []
    for size in sizes:
        wrapped = [part for line in lines for part in wrap_text(line, font, size, width)]
        if len(wrapped) * size * 1.15 <= height:
            return font, size, wrapped
    size = sizes[-1]
    return font, size, wrapped[: max(1, int(height // (size * 1.15)))]


def _draw_lines(out: FastText, lines: Sequence[str], font: str, size: float, leading: float,
                x: float, top: float, color: colors.Color) -> None:
    """Lines whose first line's top is `top` points below the top of the sheet."""
    y = PAGE_HEIGHT - top - size * 0.8
    for line in lines:
        out.show(x, y, line, font, size, color)
        y -= leading


def _draw_facts(out: FastText, rows: Sequence[tuple[str, str]], x: float, top: float,
                width: float, bottom: float, theme: Theme) -> None:
    """Label/value rows in the right column, shrunk until they fit above the flow.

    Labels get the room the language needs (up to 40% of the column) and wrap beyond it.
    """
    for size in (8.0, 7.5, 7.0, 6.5, 6.0):
        leading, label_size = size * 1.3, size - 0.5
        label_width = min(0.4 * width,
                          max(text_width(label, REGULAR, label_size) for label, _ in rows) + 6)
        laid = [(wrap_text(label, REGULAR, label_size, label_width - 6) if label else [],
                 wrap_text(value, BOLD if label else REGULAR, size, width - label_width))
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


# ---------------------------------------------------------------- statement sections


def _claim_status(lines: Sequence[ClaimLine]) -> str:
    statuses = {line.status for line in lines}
    if statuses == {"paid"}:
        return "paid"
    if statuses == {"denied"}:
        return "denied"
    return "partial"


def _amounts(lines: Sequence[ClaimLine]) -> list[str]:
    return [format_money(sum(_line_amount(line, name) for line in lines))
            for name, _ in MONEY_COLUMNS]


@dataclass(frozen=True, slots=True)
class Columns:
    """Claim-table geometry: font size and column edges chosen for this statement's values."""

    size: float
    edges: tuple[float, ...]  # x of each column's left edge, plus the right edge

    def span(self, first: int, last: int) -> tuple[float, float]:
        return self.edges[first], self.edges[last + 1] - self.edges[first]


def _claims_columns(headers: Sequence[str], rows: Sequence[Sequence[str]],
                    totals: Sequence[str]) -> Columns:
    """Column widths from the widest value; shrink the font until the service column has room.

    Amounts never wrap: money columns are as wide as their widest figure, including the
    statement totals, which print half a point larger.
    """
    pad = 2 * CELL_PAD + 0.5
    for size in (7.0, 6.5, 6.0, 5.5):
        head_size = size - 0.5

        def widest(column: int, font: str = REGULAR, size: float = size,
                   head_size: float = head_size) -> float:
            values = max((text_width(row[column], font, size) for row in rows), default=0.0)
            words = max(text_width(w, BOLD, head_size) for w in headers[column].split())
            return max(values, words) + pad

        date_w = max(widest(0), text_width("00/00/0000", REGULAR, size) + pad)
        money = [max(widest(2 + i, BOLD), text_width(totals[i], BOLD, size + 0.5) + pad)
                 for i in range(len(MONEY_COLUMNS))]
        code_w = widest(len(headers) - 1)
        service_w = CONTENT_WIDTH - date_w - sum(money) - code_w
        if service_w >= 78 or size == 5.5:
            widths = (date_w, max(service_w, 40.0), *money, code_w)
            edges = [0.0]
            for width in widths:
                edges.append(edges[-1] + width)
            return Columns(size, tuple(edges))
    raise AssertionError("unreachable")


class ClaimsGridBuilder:
    """Builds the claim detail rows: header, then per claim a banner, its lines, a total."""

    def __init__(self, words: Words, theme: Theme, columns: Columns, n: int) -> None:
        self.words, self.theme, self.columns, self.n = words, theme, columns, n
        self.size = columns.size
        owes_x, owes_w = columns.span(n - 2, n - 2)
        self.owes_fill = (owes_x, owes_w, theme.accent_tint)
        self.full = (0.0, columns.edges[-1])

    def cell(self, text: str, first: int, last: int | None = None, *, font: str = REGULAR,
             size: float | None = None, color: colors.Color | None = None,
             align: str = "left") -> Cell:
        x, width = self.columns.span(first, first if last is None else last)
        size = size or self.size
        return Cell(cell_lines(text, font, size, width), x, width, font, size,
                    color or self.theme.text, align)

    def header(self, headers: Sequence[str]) -> Row:
        size = self.size - 0.5
        cells = [self.cell(h, i, font=BOLD, size=size, color=colors.white,
                           align="right" if 2 <= i < self.n - 1 else "left")
                 for i, h in enumerate(headers)]
        depth = max(len(c.lines) for c in cells)  # bottom-align header labels
        cells = [Cell(("",) * (depth - len(c.lines)) + c.lines, c.x, c.width, c.font, c.size,
                      c.color, c.align) for c in cells]
        return Row(tuple(cells), pad_top=3, pad_bottom=3,
                   fills=((*self.full, self.theme.primary),))

    def banner(self, provider: str, status: str, status_color: colors.Color,
               detail: str) -> list[Row]:
        theme, span = self.theme, self.n - 4
        fill = ((*self.full, theme.tint),)
        first = Row((self.cell(provider, 0, span - 1, font=BOLD),
                     self.cell(status, span, self.n - 1, font=BOLD, color=status_color,
                               align="right")),
                    pad_top=3.5, pad_bottom=0.5, fills=fill, keep_with_next=True,
                    rules=(("top", *self.full, 0.75, theme.primary),))
        second = Row((self.cell(detail, 0, span - 1, color=theme.muted),),
                     pad_top=0.5, pad_bottom=2.5, fills=fill, keep_with_next=True)
        return [first, second]

    def line(self, values: Sequence[str], code_color: colors.Color, keep_with_next: bool,
             context: tuple[Row, ...]) -> Row:
        n = self.n
        cells = [self.cell(values[0], 0), self.cell(values[1], 1)]
        cells += [self.cell(values[i], i, font=BOLD if i == n - 2 else REGULAR, align="right")
                  for i in range(2, n - 1)]
        cells.append(self.cell(values[-1], n - 1, color=code_color))
        return Row(tuple(cells), fills=(self.owes_fill,), keep_with_next=keep_with_next,
                   context=context)

    def claim_total(self, label: str, amounts: Sequence[str], context: tuple[Row, ...]) -> Row:
        n = self.n
        cells = [self.cell(label, 1, font=BOLD)]
        cells += [self.cell(a, 2 + i, font=BOLD, align="right") for i, a in enumerate(amounts)]
        x, _ = self.columns.span(1, 1)
        return Row(tuple(cells), fills=(self.owes_fill,), context=context,
                   rules=(("top", x, self.columns.edges[n - 1] - x, 0.4, self.theme.rule),))

    def statement_total(self, label: str, amounts: Sequence[str]) -> Row:
        size, theme = self.size + 0.5, self.theme
        cells = [self.cell(label, 0, 1, font=BOLD, size=size)]
        cells += [self.cell(a, 2 + i, font=BOLD, size=size, align="right")
                  for i, a in enumerate(amounts)]
        rules = (("top", *self.full, 1.2, theme.primary), ("bottom", *self.full, 1.2,
                                                             theme.primary))
        return Row(tuple(cells), pad_top=4, pad_bottom=4,
                   fills=((*self.full, theme.tint), self.owes_fill), rules=rules)


def _claims_grid(statement: Statement, words: Words, theme: Theme) -> Grid:
    """Claim detail grouped by claim: a claim banner, its lines, a claim total, then totals."""
    headers = [words(f"claims.{key}") for key in ("col_date", "col_service")]
    headers += [words(f"claims.{key}") for _, key in MONEY_COLUMNS] + [words("claims.col_code")]
    date_format = words.file.string("meta.date_format")
    values = {
        id(line): [line.service_date.strftime(date_format),
                   f"{line.service_description} ({line.service_code})", *_amounts([line]),
                   line.reason_code]
        for line in statement.lines
    }
    totals = _amounts(statement.lines)
    columns = _claims_columns(headers, list(values.values()), totals)
    build = ClaimsGridBuilder(words, theme, columns, len(headers))
    status_colors = {"paid": theme.primary, "denied": theme.alert, "partial": theme.accent}
    rows = [*heading_rows(words("claims.heading"), theme), build.header(headers)]
    for claim_id, group in groupby(statement.lines, key=lambda line: line.claim_id):
        lines = list(group)
        first, status = lines[0], _claim_status(lines)
        network = words("claims.network_in" if first.network == "in" else "claims.network_out")
        relationship = f"claims.relationships.{first.patient_relationship}"
        if not words.file.has(relationship):
            relationship = "claims.relationships.other"
        detail = "  \u00b7  ".join((
            f"{words('claims.claim', claim_id=claim_id)}, "
            f"{words('claims.received', date=first.received_date.strftime(date_format))}",
            words("claims.patient", name=first.patient_name, relationship=words(relationship)),
        ))
        provider = f"{words('claims.provider', name=first.provider_name)}  \u00b7  {network}"
        status_text = words("claims.status", status=words(f"claims.status_names.{status}"))
        rows += build.banner(provider, status_text, status_colors[status], detail)
        continued = tuple(build.banner(f"{provider}  {words('claims.continued')}", status_text,
                                       status_colors[status], detail))
        for index, line in enumerate(lines):
            code_color = theme.alert if line.status == "denied" else theme.text
            keep = len(lines) > 1 and index == len(lines) - 1  # last line stays with its total
            rows.append(build.line(values[id(line)], code_color, keep,
                                   continued if index else ()))
        if len(lines) > 1:
            rows.append(build.claim_total(words("claims.claim_total"), _amounts(lines),
                                          continued))
    rows.append(build.statement_total(words("claims.statement_total"), totals))
    return Grid(rows, lead_rows=2, header_rows=1, space_before=10, space_after=4)


def _summary(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    boxes = [
        (words("summary.billed"), statement.total("billed")),
        (words("summary.discount"), statement.total("discount")),
        (words("summary.plan_paid"), statement.total("plan_paid")),
    ]
    if statement.total("other_payer_paid"):
        boxes.append((words("summary.other_paid"), statement.total("other_payer_paid")))
    boxes.append((words("summary.you_may_owe"), statement.total_member_owes))
    gap = 4.0
    width = (CONTENT_WIDTH - gap * (len(boxes) - 1)) / len(boxes)
    amounts = [format_money(cents) for _, cents in boxes]
    amount_size = min(_fit_size(a, BOLD, width - 12, 16, 8) for a in amounts)
    labels, figures, fills, rules = [], [], [], []
    for index, ((label, _), amount) in enumerate(zip(boxes, amounts, strict=True)):
        x = index * (width + gap)
        owes = index == len(boxes) - 1
        ink = colors.white if owes else theme.text
        labels.append(Cell(cell_lines(label, REGULAR, 8, width - 6), x + 3, width - 6, REGULAR,
                           8, ink))
        figures.append(Cell((amount,), x + 3, width - 6, BOLD, amount_size, ink))
        fills.append((x, width, theme.primary if owes else theme.tint))
        rules.append(("bottom", x, width, 2.0, theme.accent if owes else theme.primary))
    grid = Grid([Row(tuple(labels), pad_top=6, pad_bottom=1, fills=tuple(fills)),
                 Row(tuple(figures), pad_top=2, pad_bottom=7, fills=tuple(fills),
                     rules=tuple(rules))], space_after=5)
    claims = len({line.claim_id for line in statement.lines})
    count = (words("summary.claims_count_one") if claims == 1
             else words("summary.claims_count", count=claims))
    return [
        Heading(words("summary.heading"), theme, size=12),
        TextBlock(count, REGULAR, 8, theme.muted, space_after=5),
        grid,
        TextBlock(words("summary.note"), REGULAR, 7.5, theme.text, space_after=2),
    ]


def _claims(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    if not statement.lines:
        return [Heading(words("claims.heading"), theme),
                TextBlock(words("claims.none"), REGULAR, 8.5, theme.text)]
    return [_claims_grid(statement, words, theme),
            TextBlock(words("claims.codes_hint"), REGULAR, 7, theme.muted)]


def _reasons(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    if not statement.reasons:
        return []
    size = 7.5
    edges = (0.0, 0.7 * inch, CONTENT_WIDTH - 2.2 * inch, CONTENT_WIDTH)

    def row(texts: Sequence[str], fonts: Sequence[str], color: colors.Color,
            **kwargs: Any) -> Row:
        return Row(tuple(
            Cell(cell_lines(text, font, size, edges[i + 1] - edges[i]), edges[i],
                 edges[i + 1] - edges[i], font, size, color)
            for i, (text, font) in enumerate(zip(texts, fonts, strict=True))
        ), pad_top=2.5, pad_bottom=2.5, **kwargs)

    owe, write_off = words("reasons.member_may_owe"), words("reasons.provider_write_off")
    rows = [*heading_rows(words("reasons.heading"), theme)]
    rows += [row([words("reasons.col_code"), words("reasons.col_meaning"),
                 words("reasons.col_who_pays")], [BOLD] * 3, colors.white,
                fills=((0.0, CONTENT_WIDTH, theme.primary),))]
    rule = (("bottom", 0.0, CONTENT_WIDTH, 0.4, theme.rule),)
    rows += [row([reason.code, reason.text, owe if reason.member_may_owe else write_off],
                 [BOLD, REGULAR, REGULAR], theme.text, rules=rule)
             for reason in statement.reasons]
    return [Grid(rows, lead_rows=2, header_rows=1, space_before=10)]


def _accumulators(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    if not statement.accumulators:
        return []
    date_format = words.file.string("meta.date_format")
    as_of = max(acc.as_of for acc in statement.accumulators)
    rows = []
    for acc in statement.accumulators:
        fraction = min(1.0, max(0.0, acc.used / acc.limit)) if acc.limit > 0 else 0.0
        remaining = max(0, acc.limit - acc.used)
        amounts = words("accumulators.progress", used=format_money(acc.used),
                        limit=format_money(acc.limit))
        left = (words("accumulators.met") if remaining == 0 and acc.limit > 0
                else words("accumulators.remaining", remaining=format_money(remaining)))
        if acc.as_of != as_of:
            left += f" ({words('accumulators.as_of', date=acc.as_of.strftime(date_format))})"
        rows.append((words(f"accumulators.{acc.name}"), fraction, amounts, left))
    return [
        Heading(words("accumulators.heading"), theme),
        TextBlock(words("accumulators.as_of", date=as_of.strftime(date_format)), REGULAR, 7.5,
                  theme.muted, space_after=4),
        ProgressBars(rows, theme),
    ]


def _body(text: str, theme: Theme, *, size: float = 8, after: float = 4) -> TextBlock:
    return TextBlock(text, REGULAR, size, theme.text, space_after=after)


def _subheading(text: str, theme: Theme) -> TextBlock:
    block = TextBlock(text, BOLD, 8.5, theme.primary, space_before=4, space_after=2)
    block.keepWithNext = True
    return block


def _adverse(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    if not statement.has_adverse_determination:
        return []
    out: list[Flowable] = [Heading(words("adverse.heading"), theme), _body(words("adverse.intro"),
                                                                           theme)]
    provisions = [reason for reason in statement.reasons if reason.plan_provision]
    out.append(_subheading(words("adverse.provisions_heading"), theme))
    out += [TextBlock(words("adverse.provision", code=r.code, provision=r.plan_provision),
                      REGULAR, 8, theme.text, indent=8, space_after=1) for r in provisions]
    out += [_body(words("adverse.guideline"), theme), _body(words("adverse.more_info"), theme),
            _body(words("adverse.codes_available"), theme),
            _subheading(words("adverse.appeal_heading"), theme),
            _body(words("adverse.appeal"), theme), _body(words("adverse.appeal_how"), theme),
            _body(words("adverse.expedited"), theme),
            _body(words("adverse.external_review"), theme)]
    if statement.member.line_of_business in words.brand.strings(
            "appeals.erisa_lines_of_business"):
        out.append(_body(words("adverse.erisa"), theme))
    out.append(_body(words("adverse.consumer_assistance"), theme))
    return out


def _no_surprises(statement: Statement, words: Words, theme: Theme) -> list[Flowable]:
    if not statement.has_no_surprises_protection:
        return []
    return [Heading(words("no_surprises.heading"), theme),
            *(_body(text, theme) for text in words.paragraphs("no_surprises.body"))]


def _contact(words: Words, theme: Theme, variant: str) -> list[Flowable]:
    note = words("contact.print_copy" if variant == "print" else "contact.paper_copy")
    return [Heading(words("contact.heading"), theme), _body(words("contact.body"), theme),
            _body(note, theme)]


def _language_assistance(words: Words, theme: Theme) -> list[Flowable]:
    out: list[Flowable] = [Heading(words("language_assistance.heading"), theme),
                           _body(words("language_assistance.intro"), theme, size=7.5)]
    taglines = words.file.value("language_assistance.taglines")
    if not isinstance(taglines, list):
        raise words.file.error("language_assistance.taglines", "expected a list of tables")
    for index, entry in enumerate(taglines):
        key = f"language_assistance.taglines[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise words.file.error(f"{key}.text", "missing")
        text = words.file.render(f"{key}.text", entry["text"], words.context)
        font = REGULAR
        if "font" in entry:
            if entry["font"] not in CID_FONTS:
                raise words.file.error(f"{key}.font", f"unknown font (known: {sorted(CID_FONTS)})")
            font = _font(CID_FONTS[entry["font"]])
        elif not _standard_font_can_show(text):
            raise words.file.error(f"{key}.text", "needs a `font` for its script")
        out.append(TextBlock(text, font, 7, theme.text, space_after=2.5))
    out += [_subheading(words("nondiscrimination.heading"), theme),
            _body(words("nondiscrimination.body"), theme, size=7)]
    return out


@cache
def _standard_font_can_show(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------- document


def _frames() -> tuple[Frame, Frame]:
    first = Frame(MARGIN, BOTTOM, CONTENT_WIDTH, PAGE_HEIGHT - FIRST_PAGE_TOP - BOTTOM,
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id="first")
    later = Frame(MARGIN, BOTTOM, CONTENT_WIDTH, PAGE_HEIGHT - LATER_PAGE_TOP - BOTTOM,
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id="later")
    return first, later


def _creation_date(day: date) -> str:
    return f"D:{day:%Y%m%d}000000+00'00'"


def _flowables(statement: Statement, words: Words, theme: Theme, variant: str) -> Iterator[
        Flowable]:
    yield from _summary(statement, words, theme)
    yield from _claims(statement, words, theme)
    yield from _reasons(statement, words, theme)
    yield from _accumulators(statement, words, theme)
    yield from _adverse(statement, words, theme)
    yield from _no_surprises(statement, words, theme)
    yield from _contact(words, theme, variant)
    yield from _language_assistance(words, theme)


def render_statement(
    statement: Statement, *, variant: str = "email", templates_dir: Path | None = None
) -> RenderedPdf:
    """The statement as PDF bytes; the same statement always gives the same bytes.

    variant "email" is the normal statement; "print" is the paper fallback, with the return
    address and the recipient positioned for a #10 double-window envelope and fold marks.
    """
    if variant not in VARIANTS:
        raise ValueError(f"statement {statement.statement_id}: unknown variant {variant!r}")
    root = templates_dir or DEFAULT_TEMPLATES_DIR
    try:
        return _render(statement, variant, root)
    except TemplateError as exc:
        raise TemplateError(f"statement {statement.statement_id}: {exc}") from None


def _render(statement: Statement, variant: str, root: Path) -> RenderedPdf:
    language = resolve_language(statement.member.language, root)
    text_file = statement_text(language, root)
    brand_file = brand(statement.plan.brand, root)
    theme = _theme(brand_file)
    words = Words(text_file, brand_file, _context(statement, text_file, brand_file, language))
    furniture = PageFurniture(statement, words, theme, variant)
    flowables = list(_flowables(statement, words, theme, variant))
    first_frame, later_frame = _frames()
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=letter,
        leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=BOTTOM,
        pageTemplates=[
            PageTemplate("first", [first_frame], onPage=furniture.first_page,
                         autoNextPageTemplate="later"),
            PageTemplate("later", [later_frame], onPage=furniture.later_page),
        ],
        title=text_file.text("header.title"),
        author=words.context["legal_name"],
        subject=f"{statement.statement_id} v{statement.version}",
        creator="eob-pipeline",
        lang=text_file.string("meta.lang_tag"),
        invariant=1,
    )
    canvasmaker = partial(PagedCanvas, footer=furniture.footer,
                          created=_creation_date(statement.statement_date))
    try:
        doc.build(flowables, canvasmaker=canvasmaker)
    except TemplateError:
        raise
    except Exception as exc:  # reportlab messages can quote cell text (PHI): name the id only
        raise RenderError(
            f"statement {statement.statement_id}: layout failed ({type(exc).__name__})"
        ) from None
    return RenderedPdf(pdf=buffer.getvalue(), pages=furniture.pages)
