"""Render one Statement as a member Explanation of Benefits PDF.

Why it is built this way:
- Speed: millions of statements a month are CPU-bound here, so the statement is laid out by
  a small flow engine of our own (blocks that wrap, split and draw; frames; two-column legal
  pages) and written by `pipeline.render.pdf.writer`, not by reportlab's platypus and canvas, whose
  generic machinery cost about three times as much. reportlab still supplies font metrics.
  Wording that is the same on every statement of a language and brand (appeal rights,
  No Surprises text, taglines, headings) is wrapped and turned into PDF operators once per
  process and reused. Members' names, addresses, ids, dates and amounts are never cached
  (provider names and service descriptions, directory and plan wording, are).
- Determinism: no clock, no randomness; the creation date is the statement date and the file
  /ID a digest of the body, so the same statement always yields the same bytes (a content
  hash detects "already rendered").
- Encryption: the result keeps its object list, so `pipeline.render.pdf.encrypt` writes the encrypted
  copy directly (AES-256, R6) instead of parsing this file again.
- PHI: nothing here logs; exceptions name the statement_id and template key only; PDF
  metadata carries the title, insurer and statement_id, never member data.
- Wording comes from templates/ (see pipeline.templates); no member-facing text lives here.
"""

from __future__ import annotations

import hashlib
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase._cidfontdata import CIDFontInfo
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

from pipeline.model import ClaimLine, Statement
from pipeline.periods import parse_period
from pipeline.render.pdf.writer import Name, PdfDocument, Raw, Ref, Static, Stream
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

VARIANTS = ("email", "print")
PAGE_WIDTH, PAGE_HEIGHT = letter
MARGIN = 0.5 * inch
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
BOTTOM = 0.7 * inch  # flow bottom; the footer sits below it
FIRST_PAGE_TOP = 3.25 * inch  # page 1 header zone (address windows, statement facts)
LATER_PAGE_TOP = 0.95 * inch
RIGHT_COLUMN_X = 4.75 * inch
COLUMN_GAP = 0.3 * inch  # between the two columns of the legal pages
# Per-statement content streams: level 1 is ~4x smaller than raw and twice as fast as the
# default 6 (whose streams are only ~10% smaller). Cached forms are compressed once, at 9.
ZLIB_LEVEL = 1

# #10 double-window envelope, letter sheet tri-folded (positions from the sheet's top-left).
# Typical vendor stock; confirm against the print vendor's envelope spec before production.
RETURN_WINDOW = (0.75 * inch, 0.5 * inch, 3.25 * inch, 0.875 * inch)  # x, top, width, height
RECIPIENT_WINDOW = (0.75 * inch, 2.0 * inch, 3.75 * inch, 1.125 * inch)
WINDOW_PADDING = 0.12 * inch
FOLD_MARKS = (PAGE_HEIGHT / 3, 2 * PAGE_HEIGHT / 3)

REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
CID_FONTS = {  # template font names -> reportlab's CID font data (referenced, not embedded)
    "cjk-traditional": "MSung-Light",
    "cjk-simplified": "STSong-Light",
    "korean": "HYSMyeongJo-Medium",
    "japanese": "HeiseiMin-W3",
}
# Fixed resource names, so operators built once can be reused in every document.
FONT_IDS = {REGULAR: "F1", BOLD: "F2", "MSung-Light": "F3", "STSong-Light": "F4",
            "HYSMyeongJo-Medium": "F5", "HeiseiMin-W3": "F6"}
# reportlab pairs MSung-Light (Adobe-CNS1) with the GB CMap; viewers then show nothing.
CID_CMAPS = {"MSung-Light": "UniCNS-UCS2-H", "STSong-Light": "UniGB-UCS2-H",
             "HYSMyeongJo-Medium": "UniKS-UCS2-H", "HeiseiMin-W3": "UniJIS-UCS2-H"}
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
EPSILON = 1e-6
OVERFLOW = float("-inf")


class RenderError(RuntimeError):
    """Layout failed for a statement; the message names the statement_id only."""


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    """A rendered statement: the plain PDF bytes, its page count, and its objects.

    `pdf` is deterministic; `content_sha256` is its digest (the "already rendered" key).
    `document` lets pdfcrypt write the encrypted copy without parsing `pdf` again.
    """

    pdf: bytes
    pages: int
    document: PdfDocument | None = field(default=None, repr=False, compare=False)

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


# ---------------------------------------------------------------- formatting helpers


def format_money(cents: int) -> str:
    """Integer cents as "$1,234.56" (negative as "-$1,234.56"); no floats involved."""
    dollars, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${dollars:,}.{rest:02d}"


def mask_member_id(member_id: str) -> str:
    """Only the last 4 characters are shown (EOB_CONTENT row 6)."""
    return "\u2022" * 5 + member_id[-4:]


_DATE_PARTS = {"%d": "{0.day:02d}", "%m": "{0.month:02d}", "%Y": "{0.year:04d}"}


@lru_cache(maxsize=32)
def date_formatter(pattern: str) -> Callable[[date], str]:
    """A fast formatter for a template's date pattern.

    Patterns of %d, %m and %Y (all our languages) become a str.format template, about
    ten times cheaper than strftime; anything else falls back to strftime.
    """
    rest = pattern
    for code in _DATE_PARTS:
        rest = rest.replace(code, "")
    if "%" in rest or "{" in rest or "}" in rest:
        return lambda day: day.strftime(pattern)
    template = pattern
    for code, field_format in _DATE_PARTS.items():
        template = template.replace(code, field_format)
    return template.format


@cache
def _widths(font: str) -> dict[str, float]:
    """Per-character advance widths at size 1, filled on demand (no kerning in PDF base fonts)."""
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


def wrap_text(text: str, font: str, size: float, width: float, *,
              remember: bool = True) -> tuple[str, ...]:
    """Greedy word wrap that also breaks over-long words, so text never leaves its box.

    remember=False for member data (names, addresses, claims): only template wording,
    which repeats on every statement, is kept in the wrap cache.
    """
    wrap = _wrap_cached if remember else _wrap_cached.__wrapped__
    return wrap(text, font, size, round(width, 3))


@lru_cache(maxsize=8192)
def _wrap_cached(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """Template wording repeats on every statement, so most wraps are cache hits."""
    lines: list[str] = []
    if text_width(text, font, size) <= width and "\n" not in text:
        return (text,)
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
    if text_width(text, font, size) <= width:
        return text
    while text and text_width(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text + "\u2026"


# ---------------------------------------------------------------- PDF text operators


_ESCAPES = {  # PDF literal-string escapes, applied to the font's single-byte code points
    **{code: f"\\{code:03o}" for code in (*range(32), *range(127, 256))},
    **{ord(char): "\\" + char for char in "\\()"},
}
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


def pdf_string(text: str, font: str) -> str:
    """`text` as a PDF string operand for `font`.

    Standard fonts use WinAnsi (cp1252: the bullet is 0x95, which text extraction and screen
    readers map back); CID fonts use UCS-2 CMaps, so their strings are UTF-16BE.
    """
    if font in CID_CMAPS:
        return "<" + "".join(c if ord(c) < 0x10000 else "?" for c in text).encode(
            "utf-16-be").hex() + ">"
    if text.isascii() and text.isprintable():  # amounts, dates, codes: the common case
        if "(" in text or ")" in text or "\\" in text:
            text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"({text})"
    try:
        raw = text.encode("cp1252")
    except UnicodeEncodeError:
        raw = "".join(_fold(char, "cp1252") for char in text).encode("cp1252")
    return "(" + raw.decode("latin-1").translate(_ESCAPES) + ")"


def _rgb(color: colors.Color) -> str:
    return f"{color.red:.3f} {color.green:.3f} {color.blue:.3f}"


WHITE = "1.000 1.000 1.000"


class Out:
    """One content stream under construction: operator strings plus the fonts they use.

    Text is batched into BT..ET objects; font and colour operators are written only when
    they change. Graphics go between text objects, wrapped in q..Q so the tracked text
    state stays true.
    """

    __slots__ = ("ops", "fonts", "forms", "images", "_in_text", "_font", "_color")

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.fonts: set[str] = set()
        self.forms: dict[str, Form] = {}
        self.images: dict[str, Image] = {}
        self._in_text = False
        self._font: tuple[str, float] | None = None
        self._color: str | None = None

    def show(self, x: float, y: float, text: str, font: str, size: float, color: str) -> None:
        ops = self.ops
        if not self._in_text:
            ops.append("BT")
            self._in_text = True
        if (font, size) != self._font:
            self._font = (font, size)
            self.fonts.add(font)
            ops.append(f"/{FONT_IDS[font]} {size:g} Tf")
        if color != self._color:
            self._color = color
            ops.append(f"{color} rg")
        ops.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm {pdf_string(text, font)} Tj")

    def text_rows(self, x: float, rows: Sequence[Row], tops: Sequence[float]) -> None:
        """Every cell of grid rows: show() unrolled for the hottest loop of a statement."""
        ops = self.ops
        if not self._in_text:
            ops.append("BT")
            self._in_text = True
        current_font, current_color = self._font, self._color
        for row, row_top in zip(rows, tops, strict=True):
            for cell in row.cells:
                font, size, color = cell.font, cell.size, cell.color
                if (font, size) != current_font:
                    current_font = (font, size)
                    self.fonts.add(font)
                    ops.append(f"/{FONT_IDS[font]} {size:g} Tf")
                if color != current_color:
                    current_color = color
                    ops.append(f"{color} rg")
                baseline = row_top - row.pad_top - size * 0.82
                starts = cell.starts  # relative to the grid's left edge
                if starts is None:
                    left = cell.x + CELL_PAD
                    if cell.align == "right":
                        edge = left + cell.width - 2 * CELL_PAD
                        starts = tuple(edge - text_width(line, font, size)
                                       for line in cell.lines)
                    else:
                        starts = (left,) * len(cell.lines)
                for line, start in zip(cell.lines, starts, strict=True):
                    if line:
                        if font in CID_CMAPS or not (line.isascii() and line.isprintable()) or (
                                "(" in line or ")" in line or "\\" in line):
                            literal = pdf_string(line, font)
                        else:  # amounts, dates, codes: nothing to escape
                            literal = f"({line})"
                        ops.append(f"1 0 0 1 {x + start:.2f} {baseline:.2f} Tm {literal} Tj")
                    baseline -= cell.leading
        self._font, self._color = current_font, current_color

    def graphics(self, op: str) -> None:
        """Path or colour operators, isolated so they change no tracked state."""
        self.end_text()
        self.ops.append(f"q {op} Q")

    def place(self, x: float, y: float, ops: str, fonts: frozenset[str]) -> None:
        """Operators built for the origin (e.g. cached template text), moved to (x, y)."""
        self.end_text()
        self.ops.append(f"q 1 0 0 1 {x:.2f} {y:.2f} cm\n{ops}\nQ")
        self.fonts |= fonts

    def form(self, form: Form, x: float, y: float) -> None:
        """A Form XObject with its bottom-left corner at (x, y)."""
        self.end_text()
        self.ops.append(f"q 1 0 0 1 {x:.2f} {y:.2f} cm /{form.name} Do Q")
        self.forms[form.name] = form
        self.fonts |= form.fonts

    def image(self, image: Image, x: float, y: float, width: float, height: float) -> None:
        """An image XObject scaled into the box with its bottom-left corner at (x, y)."""
        self.end_text()
        self.ops.append(f"q {width:.2f} 0 0 {height:.2f} {x:.2f} {y:.2f} cm /{image.name} Do Q")
        self.images[image.name] = image

    def end_text(self) -> None:
        if self._in_text:
            self.ops.append("ET")
            self._in_text = False
            self._font = self._color = None

    def finish(self) -> bytes:
        self.end_text()
        return "\n".join(self.ops).encode("latin-1")

    def rect(self, color: str, x: float, y: float, width: float, height: float) -> None:
        self.graphics(f"{color} rg {x:.2f} {y:.2f} {width:.2f} {height:.2f} re f")

    def rule(self, color: str, x1: float, y: float, x2: float, thickness: float) -> None:
        self.graphics(f"{color} RG {thickness:.2f} w {x1:.2f} {y:.2f} m {x2:.2f} {y:.2f} l S")

    def round_rect(self, color: str, x: float, y: float, width: float, height: float,
                   radius: float) -> None:
        """A filled rectangle with rounded corners (Bezier arcs, k = 0.5523)."""
        r = min(radius, width / 2, height / 2)
        c = r * 0.4477  # distance from the corner to the Bezier control points
        x2, y2 = x + width, y + height
        self.graphics(
            f"{color} rg {x + r:.2f} {y:.2f} m {x2 - r:.2f} {y:.2f} l "
            f"{x2 - c:.2f} {y:.2f} {x2:.2f} {y + c:.2f} {x2:.2f} {y + r:.2f} c "
            f"{x2:.2f} {y2 - r:.2f} l {x2:.2f} {y2 - c:.2f} {x2 - c:.2f} {y2:.2f} "
            f"{x2 - r:.2f} {y2:.2f} c {x + r:.2f} {y2:.2f} l {x + c:.2f} {y2:.2f} "
            f"{x:.2f} {y2 - c:.2f} {x:.2f} {y2 - r:.2f} c {x:.2f} {y + r:.2f} l "
            f"{x:.2f} {y + c:.2f} {x + c:.2f} {y:.2f} {x + r:.2f} {y:.2f} c f")


# ---------------------------------------------------------------- theme and fonts


@dataclass(frozen=True, slots=True)
class Theme:
    """Brand colours as PDF colour operands ("r g b")."""

    primary: str
    accent: str
    tint: str
    accent_tint: str
    text: str
    muted: str
    alert: str
    rule: str


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
        primary=_rgb(color("primary")),
        accent=_rgb(accent),
        tint=_rgb(color("tint")),
        accent_tint=_rgb(_mix(accent, 0.14)),
        text=_rgb(color("text")),
        muted=_rgb(color("muted")),
        alert=_rgb(color("alert")),
        rule=_rgb(colors.Color(0.78, 0.81, 0.83)),
    )


@cache
def _font(name: str) -> str:
    """Register a CID font's metrics on first use (the font is referenced, not embedded)."""
    pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name


def _pdf_value(value: Any) -> Any:
    """reportlab's CID font description (strings such as '/Font' and '(Adobe)') as values."""
    if isinstance(value, str):
        if value.startswith("/"):
            return Name(value[1:])
        if value.startswith("(") and value.endswith(")"):
            return value[1:-1].encode("latin-1")
        return Raw(value.encode("latin-1"))
    if isinstance(value, dict):
        return {key: _pdf_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_pdf_value(item) for item in value]
    return value


@cache
def _font_object(font: str) -> Static:
    """The font dictionary for one of our fonts, formatted once per process."""
    return Static(_font_dictionary(font))


def _font_dictionary(font: str) -> dict[str, Any]:
    if font not in CID_CMAPS:
        return {"Type": Name("Font"), "Subtype": Name("Type1"), "BaseFont": Name(font),
                "Encoding": Name("WinAnsiEncoding")}
    info = CIDFontInfo[font]
    descendant = dict(info["DescendantFonts"][0])
    widths = descendant.pop("W")
    described = _pdf_value(descendant)
    described["W"] = Raw(_format_widths(widths))
    return {"Type": Name("Font"), "Subtype": Name("Type0"), "BaseFont": Name(font),
            "Encoding": Name(CID_CMAPS[font]), "DescendantFonts": [described]}


def _format_widths(value: Any) -> bytes:
    if isinstance(value, list | tuple):
        return b"[" + b" ".join(_format_widths(item) for item in value) + b"]"
    return str(value).encode("ascii")


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


@lru_cache(maxsize=256)
def _period_label(words: TemplateFile, period: str) -> str:
    first_day, _ = parse_period(period)  # BadPeriod names the period only
    months = words.strings("meta.months")
    if len(months) != 12:
        raise words.error("meta.months", "expected 12 month names")
    return words.text("meta.period", {"month": months[first_day.month - 1],
                                      "year": first_day.year})


@lru_cache(maxsize=64)
def _brand_context(words: TemplateFile, brand_file: TemplateFile,
                   language: str) -> dict[str, Any]:
    return {
        "legal_name": brand_file.string("identity.legal_name"),
        "short_name": brand_file.string("identity.short_name"),
        "plan_administrator": brand_file.string("identity.plan_administrator"),
        "phone": brand_file.string("identity.phone"),
        "tty": brand_file.string("identity.tty"),
        "hours": _hours(brand_file, language),
        "website": brand_file.string("identity.website"),
    }


@lru_cache(maxsize=256)
def _appeal_context(brand_file: TemplateFile, lob: str, state: str) -> dict[str, Any]:
    assist = (f"consumer_assistance.states.{state}"
              if brand_file.has(f"consumer_assistance.states.{state}") else "consumer_assistance")
    return {
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


def _context(statement: Statement, words: TemplateFile, brand_file: TemplateFile,
             language: str) -> dict[str, Any]:
    """Placeholders every string may use; appeal details only when the statement needs them."""
    context = {
        **_brand_context(words, brand_file, language),
        "plan_name": statement.plan.plan_name,
        "period": _period_label(words, statement.period),
        "statement_date": date_formatter(words.string("meta.date_format"))(
            statement.statement_date),
        "statement_id": statement.statement_id,
    }
    if statement.has_adverse_determination:
        context |= _appeal_context(brand_file, statement.member.line_of_business,
                                   statement.member.state.upper())
    return context


# ---------------------------------------------------------------- blocks


class Block:
    """Something the flow places top to bottom: it wraps to a width, may split, draws.

    draw(out, x, top) draws with the block's top-left corner at (x, top) in PDF space.
    """

    space_before: float = 0.0
    space_after: float = 0.0
    keep_with_next: bool = False
    optional: bool = False  # a helpful extra: dropped rather than moved to the next page

    def wrap(self, width: float) -> float:
        raise NotImplementedError

    def min_height(self, width: float) -> float:
        """The least height of a first part (what keep_with_next must leave room for)."""
        return self.wrap(width)

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        return None

    def draw(self, out: Out, x: float, top: float) -> None:
        raise NotImplementedError


@lru_cache(maxsize=4096)
def _text_ops(lines: tuple[str, ...], font: str, size: float, color: str, leading: float,
              indent: float) -> tuple[str, frozenset[str]]:
    """Operators for template text at the origin (top-left), built once per process."""
    out = Out()
    _lines_ops(out, lines, font, size, color, leading, indent, 0.0)
    out.end_text()
    return "\n".join(out.ops), frozenset(out.fonts)


def _lines_ops(out: Out, lines: Sequence[str], font: str, size: float, color: str,
               leading: float, x: float, top: float) -> None:
    baseline = top - leading + (leading - size) / 2 + size * 0.22
    for line in lines:
        if line:
            out.show(x, baseline, line, font, size, color)
        baseline -= leading


class TextBlock(Block):
    """Plain text in one font, wrapped to the width and split across pages by lines.

    Template text is plain (no markup), so nothing needs escaping: "&", "<" and "(" print as
    written. remember=True (template wording) caches its wrapping and its operators.
    """

    __slots__ = ("text", "font", "size", "color", "leading", "space_before", "space_after",
                 "indent", "remember", "keep_with_next", "optional", "_lines", "_width")

    def __init__(self, text: str, font: str, size: float, color: str, *,
                 leading: float | None = None, space_before: float = 0.0,
                 space_after: float = 0.0, indent: float = 0.0, remember: bool = True,
                 keep_with_next: bool = False, optional: bool = False,
                 lines: tuple[str, ...] | None = None) -> None:
        self.text = text
        self.optional = optional
        self.font, self.size, self.color = font, size, color
        self.leading = leading or round(size * 1.25, 2)
        self.space_before, self.space_after = space_before, space_after
        self.indent = indent
        self.remember = remember
        self.keep_with_next = keep_with_next
        self._lines = lines
        self._width: float | None = None if lines is None else -1.0

    def lines(self, width: float) -> tuple[str, ...]:
        if self._width != width and self._width != -1.0:
            self._lines = wrap_text(self.text, self.font, self.size, width - self.indent,
                                    remember=self.remember)
            self._width = width
        return self._lines or ()

    def wrap(self, width: float) -> float:
        return len(self.lines(width)) * self.leading

    def min_height(self, width: float) -> float:
        return min(2, len(self.lines(width))) * self.leading

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        lines = self.lines(width)
        fits = int((height + EPSILON) // self.leading)
        if fits < 2 or len(lines) - fits < 2:  # no orphan or widow lines
            return None
        return (self._part(lines[:fits], self.space_before, 0.0),
                self._part(lines[fits:], 0.0, self.space_after))

    def _part(self, lines: tuple[str, ...], before: float, after: float) -> TextBlock:
        return TextBlock("", self.font, self.size, self.color, leading=self.leading,
                         space_before=before, space_after=after, indent=self.indent,
                         remember=self.remember, lines=lines)

    def draw(self, out: Out, x: float, top: float) -> None:
        lines = self._lines or ()
        if self.remember:
            ops, fonts = _text_ops(lines, self.font, self.size, self.color, self.leading,
                                   self.indent)
            out.place(x, top, ops, fonts)
        else:
            _lines_ops(out, lines, self.font, self.size, self.color, self.leading,
                       x + self.indent, top)


class Heading(TextBlock):
    """A section heading over a short brand-coloured rule; kept with what follows it."""

    __slots__ = ("rule_color",)
    RULE_GAP = 3.0

    def __init__(self, text: str, theme: Theme, *, size: float = 10.5,
                 space_before: float = 10.0, space_after: float = 5.0) -> None:
        super().__init__(text, BOLD, size, theme.primary, space_before=space_before,
                         space_after=space_after, keep_with_next=True)
        self.rule_color = theme.accent

    def wrap(self, width: float) -> float:
        return super().wrap(width) + self.RULE_GAP

    def min_height(self, width: float) -> float:
        return self.wrap(width)

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        return None

    def draw(self, out: Out, x: float, top: float) -> None:
        super().draw(out, x, top)
        bottom = top - self.wrap(self._width or 0.0)
        out.rule(self.rule_color, x, bottom + 0.5, x + 1.1 * inch, 1.2)


class ProgressBars(Block):
    """Year-to-date accumulators as labelled bars: how far the member is toward each limit."""

    ROW = 17.0

    def __init__(self, rows: Sequence[tuple[str, float, str, str]], theme: Theme) -> None:
        self.rows = rows  # (label, fraction 0..1, amounts text, remaining text)
        self.theme = theme
        self.space_after = 4.0

    def wrap(self, width: float) -> float:
        self.width = width
        return len(self.rows) * self.ROW

    def draw(self, out: Out, x: float, top: float) -> None:
        theme = self.theme
        label_width, bar_width = 1.75 * inch, 2.6 * inch
        text_x = x + label_width + bar_width + 10
        for index, (label, fraction, amounts, remaining) in enumerate(self.rows):
            y = top - (index + 1) * self.ROW + 4
            out.round_rect(theme.tint, x + label_width, y - 1, bar_width, 9, 3)
            if fraction > 0:
                out.round_rect(theme.accent, x + label_width, y - 1,
                               max(6.0, bar_width * fraction), 9, 3)
            out.show(x, y + 1, _ellipsize(label, BOLD, 8, label_width - 6), BOLD, 8,
                     theme.text)
            line = _ellipsize(f"{amounts}  \u00b7  {remaining}", REGULAR, 8,
                              x + self.width - text_x)
            out.show(text_x, y + 1, line, REGULAR, 8, theme.text)


@dataclass(frozen=True, slots=True)
class Form:
    """A Form XObject: operators drawn and compressed once, placed by many statements."""

    name: str
    data: bytes  # Flate-compressed content
    width: float
    height: float
    fonts: frozenset[str]


@dataclass(frozen=True, slots=True)
class Image:
    """A JPEG placed as an image XObject (DCTDecode: the file's bytes are the stream)."""

    name: str
    data: bytes
    width: int
    height: int
    color_space: str  # DeviceRGB or DeviceGray


_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def read_jpeg(path: Path, name: str) -> Image:
    """Size and colour space from the JPEG's frame header; ValueError if it is not usable."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            raise ValueError("malformed JPEG marker")
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2:index + 4], "big")
        if marker in _JPEG_FRAMES:
            height = int.from_bytes(data[index + 5:index + 7], "big")
            width = int.from_bytes(data[index + 7:index + 9], "big")
            components = data[index + 9]
            spaces = {1: "DeviceGray", 3: "DeviceRGB"}
            if components not in spaces or not width or not height:
                raise ValueError("JPEG must be RGB or grayscale")
            return Image(name, data, width, height, spaces[components])
        index += 2 + length
    raise ValueError("no JPEG frame header")


@lru_cache(maxsize=64)
def _logo(brand_file: TemplateFile) -> tuple[Image, float] | None:
    """The brand's letterhead logo and its height in points, read once; None if it has none."""
    if not brand_file.has("identity.logo"):
        return None
    path = brand_file.path.parent / brand_file.string("identity.logo")
    if path.parent != brand_file.path.parent:
        raise brand_file.error("identity.logo", "must be a file name next to the brand file")
    try:
        image = read_jpeg(path, "Logo")
    except (OSError, ValueError) as exc:
        raise brand_file.error("identity.logo", f"unusable logo ({exc})") from None
    height = brand_file.integer("identity.logo_height") if brand_file.has(
        "identity.logo_height") else 40
    return image, float(height)


class ColumnSection(Block):
    """Blocks set in columns to the end of the document: the statement's legal pages.

    Built once per LegalKey (see _legal_section). When the whole section fits on the page
    where it starts, it is one Form XObject, laid out, balanced and compressed once per
    process and reused by every statement with the same key; otherwise its blocks flow
    column by column over the pages, balanced on the last one.
    """

    def __init__(self, blocks: Sequence[Block], *, count: int = 2, gap: float = COLUMN_GAP,
                 name: str = "Legal") -> None:
        self.blocks = tuple(blocks)
        self.count, self.gap, self.name = count, gap, name
        self._heights: dict[float, float] = {}
        self._forms: dict[float, Form] = {}

    def column_width(self, width: float) -> float:
        return (width - self.gap * (self.count - 1)) / self.count

    def wrap(self, width: float) -> float:
        return self.balanced_height(width)

    def balanced_height(self, width: float) -> float:
        """The least column height (in 6 pt steps) that holds the whole section."""
        found = self._heights.get(width)
        if found is None:
            column = self.column_width(width)
            total = sum(block.wrap(column) + max(block.space_before, block.space_after)
                        for block in self.blocks)
            found = max(total / self.count - 12.0, 0.0)
            while not _fits(deque(self.blocks), column, found, self.count):
                found += 6.0
            self._heights[width] = found
        return found

    def form(self, width: float) -> Form:
        found = self._forms.get(width)
        if found is None:
            height, column = self.balanced_height(width), self.column_width(width)
            out, queue = Out(), deque(self.blocks)
            for index in range(self.count):
                region = Region(index * (column + self.gap), height, 0.0, column)
                if _fill(queue, region, out)[0]:
                    break
            found = Form(self.name, zlib.compress(out.finish(), 9), width, height,
                         frozenset(out.fonts))
            self._forms[width] = found
        return found

    def draw(self, out: Out, x: float, top: float) -> None:
        """Unused by layout(), which places the form or flows the blocks itself."""
        form = self.form(CONTENT_WIDTH)
        out.form(form, x, top - form.height)


CELL_PAD = 2.5
MAX_CELL_LINES = 12  # a pathological value is cut (with an ellipsis) rather than overflowing


class Cell:
    """Pre-wrapped text in a grid column (a plain slots class: built ~150 times a statement)."""

    __slots__ = ("lines", "x", "width", "font", "size", "color", "align", "leading", "starts")

    def __init__(self, lines: tuple[str, ...], x: float, width: float, font: str, size: float,
                 color: str, align: str = "left", starts: tuple[float, ...] | None = None) -> None:
        self.lines, self.x, self.width = lines, x, width
        self.font, self.size, self.color = font, size, color
        self.align = align  # "left" or "right"
        self.leading = size * 1.22
        self.starts = starts  # x where each line starts, when already known (amounts)


class Row:
    """One grid row: cells, background fills, rules; its height is fixed when built."""

    __slots__ = ("cells", "pad_top", "pad_bottom", "fills", "rules", "keep_with_next",
                 "context", "height")

    def __init__(self, cells: tuple[Cell, ...], *, pad_top: float = 2.0,
                 pad_bottom: float = 2.0, fills: tuple[tuple[float, float, str], ...] = (),
                 rules: tuple[tuple[str, float, float, float, str], ...] = (),
                 keep_with_next: bool = False, context: tuple[Row, ...] = ()) -> None:
        self.cells, self.pad_top, self.pad_bottom = cells, pad_top, pad_bottom
        self.fills = fills  # (x, width, colour)
        self.rules = rules  # (edge, x, width, thickness, colour)
        self.keep_with_next = keep_with_next  # never end a page after this row
        self.context = context  # rows repeated above this one when a page starts here
        text = max((len(cell.lines) * cell.leading for cell in cells), default=0.0)
        self.height = text + pad_top + pad_bottom


def cell_lines(text: str, font: str, size: float, width: float, *,
               remember: bool = True) -> tuple[str, ...]:
    lines = wrap_text(text, font, size, width - 2 * CELL_PAD, remember=remember)
    if len(lines) > MAX_CELL_LINES:
        lines = (*lines[: MAX_CELL_LINES - 1],
                 _ellipsize(" ".join(lines[MAX_CELL_LINES - 1:]), font, size,
                            width - 2 * CELL_PAD))
    return lines


def heading_rows(text: str, theme: Theme, width: float = CONTENT_WIDTH) -> list[Row]:
    """A section heading as grid rows, so a long table starts under it on the same page."""
    size = 10.5
    heading = Cell(wrap_text(text, BOLD, size, width), -CELL_PAD, width, BOLD, size,
                   theme.primary)
    rule = (("bottom", 0.0, min(width, 1.1 * inch), 1.2, theme.accent),)
    return [Row((heading,), pad_top=0, pad_bottom=3.5, rules=rule),
            Row((), pad_top=5, pad_bottom=0)]


class Grid(Block):
    """A table of pre-wrapped rows: splits between rows, repeats its header rows on each page.

    Rows flagged keep_with_next never end a page; a row's `context` (e.g. its claim's banner)
    is repeated above it when a page starts with it.
    """

    def __init__(self, rows: Sequence[Row], *, header_rows: int = 0, lead_rows: int = 0,
                 space_before: float = 0.0, space_after: float = 0.0) -> None:
        self.rows = tuple(rows)
        self.lead_rows = lead_rows  # e.g. the section heading: first part only
        self.header_rows = header_rows  # column headings: repeated on every part
        self.space_before, self.space_after = space_before, space_after
        self._heights = [row.height for row in self.rows]

    def wrap(self, width: float) -> float:
        return sum(self._heights)

    def min_height(self, width: float) -> float:
        body = self.lead_rows + self.header_rows
        used = sum(self._heights[:body])
        for index in range(body, len(self.rows)):
            used += self._heights[index]
            if not self.rows[index].keep_with_next:
                break
        return used

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        body = self.lead_rows + self.header_rows
        used = sum(self._heights[:body])
        cut = 0
        for index in range(body, len(self.rows)):
            used += self._heights[index]
            if used > height + EPSILON:
                break
            if not self.rows[index].keep_with_next:
                cut = index + 1
        if cut <= body or cut >= len(self.rows):
            return None
        head = self.rows[self.lead_rows: body] + self.rows[cut].context
        return (Grid(self.rows[:cut], header_rows=self.header_rows, lead_rows=self.lead_rows,
                     space_before=self.space_before),
                Grid(head + self.rows[cut:], header_rows=self.header_rows,
                     space_after=self.space_after))

    def draw(self, out: Out, x: float, top: float) -> None:
        tops, y = [], top
        for height in self._heights:
            tops.append(y)
            y -= height
        ops = []
        for row, height, row_top in zip(self.rows, self._heights, tops, strict=True):
            for fx, width, color in row.fills:
                ops.append(f"{color} rg {x + fx:.2f} {row_top - height:.2f} {width:.2f} "
                           f"{height:.2f} re f")
        for row, height, row_top in zip(self.rows, self._heights, tops, strict=True):
            for edge, rx, width, thickness, color in row.rules:
                edge_y = row_top if edge == "top" else row_top - height
                ops.append(f"{color} RG {thickness:.2f} w {x + rx:.2f} {edge_y:.2f} m "
                           f"{x + rx + width:.2f} {edge_y:.2f} l S")
        if ops:
            out.graphics("\n".join(ops))
        out.text_rows(x, self.rows, tops)


# ---------------------------------------------------------------- the flow


@dataclass(slots=True)
class Region:
    x: float
    top: float
    bottom: float
    width: float


def _fill(queue: deque[Block], region: Region, out: Out | None) -> tuple[bool, float]:
    """Place blocks from the queue into one region (a page frame or a column).

    Returns (done, y): done when the queue is empty or reaches a ColumnSection; y is where the
    placed blocks end. With out=None it only measures (column balancing): placing a block
    never changes it, splitting makes new parts.
    """
    y, at_top, pending = region.top, True, 0.0
    width, bottom = region.width, region.bottom
    while queue:
        block = queue[0]
        if isinstance(block, ColumnSection):
            return True, y
        height = block.wrap(width)
        gap = 0.0 if at_top else max(pending, block.space_before)
        need = gap + height
        if block.keep_with_next and len(queue) > 1 and not isinstance(queue[1], ColumnSection):
            following = queue[1]
            need += max(block.space_after, following.space_before) + following.min_height(width)
        if y - need >= bottom - EPSILON or (at_top and y - gap - height >= bottom - EPSILON):
            queue.popleft()
            if out is not None:
                block.draw(out, region.x, y - gap)
            y -= gap + height
            pending, at_top = block.space_after, False
            continue
        if block.optional:
            queue.popleft()
            continue
        parts = None if block.keep_with_next else block.split(width, y - gap - bottom)
        if parts is not None:
            queue.popleft()
            queue.appendleft(parts[1])
            if out is not None:
                parts[0].draw(out, region.x, y - gap)
            return False, bottom
        if at_top:  # taller than an empty region and cannot split: place it, never loop
            if out is None:
                return False, OVERFLOW  # measuring: this height is too small
            queue.popleft()
            block.draw(out, region.x, y - gap)
            return False, bottom
        return False, y
    return True, y


def _column_regions(frame: Region, top: float, count: int, gap: float,
                    queue: deque[Block]) -> list[Region]:
    """`count` columns from `top` down, shortened to balance the text when it all fits."""
    column_width = (frame.width - gap * (count - 1)) / count
    available = top - frame.bottom
    total = sum(block.wrap(column_width) + max(block.space_before, block.space_after)
                for block in queue)
    height = available
    if total <= count * available:
        trial = max(total / count - 12.0, 0.0)
        while trial < available:
            if _fits(queue, column_width, trial, count):
                height = trial
                break
            trial += 6.0
    return [Region(frame.x + index * (column_width + gap), top, top - height, column_width)
            for index in range(count)]


def _fits(queue: deque[Block], width: float, height: float, count: int) -> bool:
    trial = deque(queue)
    for _ in range(count):
        done, y = _fill(trial, Region(0.0, height, 0.0, width), None)
        if done or y == OVERFLOW:
            break
    return not trial


def layout(blocks: Sequence[Block], first: Region, later: Region,
           start_page: Callable[[Out, int], None]) -> list[Out]:
    """Blocks onto pages: page 1's frame, then later pages; a ColumnSection ends the flow.

    The columns start under the single-column text of the same page when there is room.
    start_page draws a new page's header first, so the content stream reads in order.
    """
    queue: deque[Block] = deque(blocks)
    pages = [Out()]
    start_page(pages[0], 1)
    frame, section = first, None
    untouched = True  # the section's blocks are all still to place
    while True:
        out = pages[-1]
        top = frame.top
        if section is None:
            done, y = _fill(queue, frame, out)
            if done and queue:
                head = queue.popleft()
                assert isinstance(head, ColumnSection) and not queue, "columns end the flow"
                section = head
                queue.extend(section.blocks)
                top = y - 6.0 if y < frame.top - EPSILON else frame.top
        if section is not None and queue:
            room = top - frame.bottom
            if untouched and section.balanced_height(frame.width) <= room + EPSILON:
                form = section.form(frame.width)
                out.form(form, frame.x, top - form.height)
                return pages
            if room >= 60.0 or top == frame.top:  # a few lines' room: start on this page
                untouched = False
                for region in _column_regions(frame, top, section.count, section.gap, queue):
                    if _fill(queue, region, out)[0]:
                        break
        if not queue:
            return pages
        pages.append(Out())
        start_page(pages[-1], len(pages))
        frame = later


# ---------------------------------------------------------------- page furniture


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
        left = f"{words.context['legal_name']}  \u00b7  {words('footer.statement_ref')}"
        out.show(MARGIN, y, _ellipsize(left, REGULAR, 7, CONTENT_WIDTH - label_width - 12),
                 REGULAR, 7, theme.muted)

    def header(self, out: Out, page: int) -> None:
        if page == 1:
            self.first_page(out)
        else:
            self.later_page(out)

    def later_page(self, out: Out) -> None:
        theme, words, member = self.theme, self.words, self.statement.member
        top = PAGE_HEIGHT - MARGIN
        right = PAGE_WIDTH - MARGIN
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
        out.rule(theme.primary, MARGIN, top - 28, right, 1.5)

    def first_page(self, out: Out) -> None:
        if self.variant == "print":
            self._return_address(out)
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
        logo = _logo(self.words.brand)
        if logo is not None:
            image, height = logo
            width = height * image.width / image.height
            out.image(image, x, PAGE_HEIGHT - top - height + 2, width, height)
            x += width + 9
        width = RIGHT_COLUMN_X - x - 0.25 * inch
        name = context["short_name"]
        size = _fit_size(name, BOLD, width, 18, 11)
        out.show(x, PAGE_HEIGHT - top - size, _ellipsize(name, BOLD, size, width), BOLD, size,
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
                 _ellipsize(name, BOLD, 11, inner), BOLD, 11, self.theme.primary)
        lines = [_ellipsize(line, REGULAR, 8, inner)
                 for line in self.words.brand.strings("identity.return_address")[1:]]
        room = int((height - 2 * WINDOW_PADDING - 14) // 9.5)
        _draw_lines(out, lines[:room], REGULAR, 8, 9.5, x + WINDOW_PADDING,
                    top + WINDOW_PADDING + 14, self.theme.text)

    def _recipient(self, out: Out) -> None:
        member = self.statement.member
        city = f"{member.city}, {member.state} {member.postal_code}".strip()
        lines = [f"{member.first_name} {member.last_name}", member.address_line1,
                 member.address_line2, city]
        x, top, width, height = RECIPIENT_WINDOW
        inner_w, inner_h = width - 2 * WINDOW_PADDING, height - 2 * WINDOW_PADDING
        size, wrapped = _fit_block([line for line in lines if line.strip()], REGULAR,
                                   inner_w, inner_h, (10, 9, 8, 7, 6.5))
        _draw_lines(out, wrapped, REGULAR, size, size * 1.15, x + WINDOW_PADDING,
                    top + WINDOW_PADDING, self.theme.text)

    def _statement_facts(self, out: Out) -> None:
        theme, words, statement = self.theme, self.words, self.statement
        x, width = RIGHT_COLUMN_X, PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        top = MARGIN
        title = words("header.title")
        size = _fit_size(title, BOLD, width, 17, 11)
        out.show(x, PAGE_HEIGHT - top - size, _ellipsize(title, BOLD, size, width), BOLD, size,
                 theme.primary)
        box_top = top + size + 7
        out.round_rect(theme.primary, x, PAGE_HEIGHT - box_top - 19, width, 19, 3)
        not_a_bill = words("header.not_a_bill")
        box_size = _fit_size(not_a_bill, BOLD, width - 12, 11.5, 7)
        not_a_bill = _ellipsize(not_a_bill, BOLD, box_size, width - 8)
        out.show(x + (width - text_width(not_a_bill, BOLD, box_size)) / 2,
                 PAGE_HEIGHT - box_top - 13.5, not_a_bill, BOLD, box_size, WHITE)
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


def _fit_size(text: str, font: str, width: float, largest: float, smallest: float) -> float:
    size = largest
    while size > smallest and text_width(text, font, size) > width:
        size -= 0.5
    return size


def _fit_block(lines: Sequence[str], font: str, width: float, height: float,
               sizes: Sequence[float]) -> tuple[float, list[str]]:
    """The largest size at which the wrapped lines fit; at the smallest, cut what is left."""
    wrapped: list[str] = []
    for size in sizes:
        wrapped = [part for line in lines
                   for part in wrap_text(line, font, size, width, remember=False)]
        if len(wrapped) * size * 1.15 <= height:
            return size, wrapped
    size = sizes[-1]
    return size, wrapped[: max(1, int(height // (size * 1.15)))]


def _draw_lines(out: Out, lines: Sequence[str], font: str, size: float, leading: float,
                x: float, top: float, color: str) -> None:
    """Lines whose first line's top is `top` points below the top of the sheet."""
    y = PAGE_HEIGHT - top - size * 0.8
    for line in lines:
        out.show(x, y, line, font, size, color)
        y -= leading


def _draw_facts(out: Out, rows: Sequence[tuple[str, str]], x: float, top: float,
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


# ---------------------------------------------------------------- statement sections


def _claim_status(lines: Sequence[ClaimLine]) -> str:
    statuses = {line.status for line in lines}
    if statuses == {"paid"}:
        return "paid"
    if statuses == {"denied"}:
        return "denied"
    return "partial"


def _amounts(lines: Sequence[ClaimLine]) -> list[str]:
    if len(lines) == 1:
        line = lines[0]
        return [format_money(getattr(line, name)) for name, _ in MONEY_COLUMNS]
    return [format_money(sum(getattr(line, name) for line in lines))
            for name, _ in MONEY_COLUMNS]


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


def _claims_columns(headers: Sequence[str], units: Sequence[Sequence[float]],
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
                 for i in range(len(MONEY_COLUMNS))]
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
def _claims_headers(words_file: TemplateFile) -> tuple[str, ...]:
    keys = ("col_date", "col_service", *(key for _, key in MONEY_COLUMNS), "col_code")
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


def _claims_grid(statement: Statement, words: Words, theme: Theme) -> Grid:
    """Claim detail grouped by claim: a claim banner, its lines, a claim total, then totals.

    Amount widths are measured once, at size 1 (Helvetica's digits, "$", "," and "." are
    as wide in bold as in regular), and serve both column sizing and right alignment.
    """
    headers = _claims_headers(words.file)
    date_format = date_formatter(words.file.string("meta.date_format"))
    values, units = [], []
    for line in statement.lines:
        row = [date_format(line.service_date), f"{line.service_description} ({line.service_code})",
               *_amounts([line]), line.reason_code]
        values.append(row)
        units.append([text_width(row[0], REGULAR, 1.0), 0.0,
                      *(text_width(value, BOLD, 1.0) for value in row[2:-1]),
                      text_width(row[-1], REGULAR, 1.0)])
    totals = _amounts(statement.lines)
    total_units = [text_width(value, BOLD, 1.0) for value in totals]
    columns = _claims_columns(headers, units, total_units)
    build = ClaimsGridBuilder(theme, columns, len(headers))
    status_colors = {"paid": theme.primary, "denied": theme.alert, "partial": theme.accent}
    rows = [*heading_rows(words("claims.heading"), theme), build.header(headers)]
    network_words = {"in": words("claims.network_in"), "out": words("claims.network_out")}
    index = 0
    for claim_id, group in groupby(statement.lines, key=lambda line: line.claim_id):
        lines = list(group)
        first, status = lines[0], _claim_status(lines)
        network = network_words["in" if first.network == "in" else "out"]
        relationship = f"claims.relationships.{first.patient_relationship}"
        if not words.file.has(relationship):
            relationship = "claims.relationships.other"
        detail = "  \u00b7  ".join((
            f"{words('claims.claim', claim_id=claim_id)}, "
            f"{words('claims.received', date=date_format(first.received_date))}",
            words("claims.patient", name=first.patient_name, relationship=words(relationship)),
        ))
        provider = f"{words('claims.provider', name=first.provider_name)}  \u00b7  {network}"
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
            rows.append(build.claim_total(words("claims.claim_total"), _amounts(lines),
                                          continued))
    rows.append(build.statement_total(words("claims.statement_total"), totals, total_units))
    return Grid(rows, lead_rows=2, header_rows=1, space_before=10, space_after=4)


def _summary(statement: Statement, words: Words, theme: Theme) -> list[Block]:
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
        ink = WHITE if owes else theme.text
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
             else words.file.text("summary.claims_count", {"count": claims}, memo=True))
    heading = Heading(words("summary.heading"), theme, size=12, space_before=0, space_after=5)
    return [
        heading,
        _Beside(heading, count, theme.muted),
        grid,
        TextBlock(words("summary.note"), REGULAR, 7.5, theme.text, space_after=2),
    ]


class _Beside(Block):
    """A short note right-aligned on the line of the heading above it (takes no height)."""

    def __init__(self, heading: Heading, text: str, color: str) -> None:
        self.heading, self.text, self.color = heading, text, color
        self.space_before = -heading.space_after  # sits on the heading's own line

    def wrap(self, width: float) -> float:
        self.width = width
        return 0.0

    def draw(self, out: Out, x: float, top: float) -> None:
        size = 8.0
        text = _ellipsize(self.text, REGULAR, size, self.width * 0.45)
        heading = self.heading
        baseline = (top + heading.space_after + heading.RULE_GAP
                    + (heading.leading - heading.size) / 2 + heading.size * 0.22)
        out.show(x + self.width - text_width(text, REGULAR, size), baseline, text, REGULAR,
                 size, self.color)


def _claims(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    if not statement.lines:
        return [Heading(words("claims.heading"), theme),
                TextBlock(words("claims.none"), REGULAR, 8.5, theme.text)]
    return [_claims_grid(statement, words, theme),
            TextBlock(words("claims.codes_hint"), REGULAR, 7, theme.muted, optional=True)]


def _reasons(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    if not statement.reasons:
        return []
    size = 7.5
    edges = (0.0, 0.7 * inch, CONTENT_WIDTH - 2.2 * inch, CONTENT_WIDTH)

    def row(texts: Sequence[str], fonts: Sequence[str], color: str, **kwargs: Any) -> Row:
        return Row(tuple(
            Cell(cell_lines(text, font, size, edges[i + 1] - edges[i]), edges[i],
                 edges[i + 1] - edges[i], font, size, color)
            for i, (text, font) in enumerate(zip(texts, fonts, strict=True))
        ), pad_top=2.5, pad_bottom=2.5, **kwargs)

    owe, write_off = words("reasons.member_may_owe"), words("reasons.provider_write_off")
    rows = [*heading_rows(words("reasons.heading"), theme)]
    rows += [row([words("reasons.col_code"), words("reasons.col_meaning"),
                 words("reasons.col_who_pays")], [BOLD] * 3, WHITE,
                fills=((0.0, CONTENT_WIDTH, theme.primary),))]
    rule = (("bottom", 0.0, CONTENT_WIDTH, 0.4, theme.rule),)
    rows += [row([reason.code, reason.text, owe if reason.member_may_owe else write_off],
                 [BOLD, REGULAR, REGULAR], theme.text, rules=rule)
             for reason in statement.reasons]
    return [Grid(rows, lead_rows=2, header_rows=1, space_before=4)]


def _accumulators(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    if not statement.accumulators:
        return []
    date_format = date_formatter(words.file.string("meta.date_format"))
    as_of = max(acc.as_of for acc in statement.accumulators)
    rows = []
    for acc in statement.accumulators:
        fraction = min(1.0, max(0.0, acc.used / acc.limit)) if acc.limit > 0 else 0.0
        remaining = max(0, acc.limit - acc.used)
        amounts = words.file.text("accumulators.progress", {
            "used": format_money(acc.used), "limit": format_money(acc.limit)})
        left = (words("accumulators.met") if remaining == 0 and acc.limit > 0
                else words.file.text("accumulators.remaining",
                                     {"remaining": format_money(remaining)}))
        if acc.as_of != as_of:
            as_of_text = words.file.text("accumulators.as_of", {"date": date_format(acc.as_of)},
                                         memo=True)
            left += f" ({as_of_text})"
        rows.append((words(f"accumulators.{acc.name}"), fraction, amounts, left))
    return [
        Heading(words("accumulators.heading"), theme),
        TextBlock(words.file.text("accumulators.as_of", {"date": date_format(as_of)},
                                  memo=True), REGULAR, 7.5, theme.muted, space_after=4),
        ProgressBars(rows, theme),
    ]


# ---------------------------------------------------------------- legal pages (two columns)

LEGAL_BODY = 7.0
LEGAL_LEADING = 8.5


@dataclass(frozen=True, slots=True)
class LegalKey:
    """What the legal text of a statement depends on; statements sharing it share the blocks.

    No member data: language, brand, line of business, state (consumer-assistance office),
    which sections apply, the plan provisions relied on, the variant.
    """

    text_file: TemplateFile
    brand_file: TemplateFile
    line_of_business: str
    state: str
    adverse: bool
    no_surprises: bool
    provisions: tuple[tuple[str, str], ...]
    variant: str


def _legal_key(statement: Statement, text_file: TemplateFile, brand_file: TemplateFile,
               variant: str) -> LegalKey:
    adverse = statement.has_adverse_determination
    return LegalKey(
        text_file, brand_file,
        statement.member.line_of_business if adverse else "",
        statement.member.state.upper() if adverse else "",
        adverse, statement.has_no_surprises_protection,
        tuple((r.code, r.plan_provision) for r in statement.reasons if r.plan_provision)
        if adverse else (),
        variant,
    )


def _heading(text: str, theme: Theme) -> Heading:
    return Heading(text, theme, size=9.5, space_before=7, space_after=3.5)


def _body(text: str, theme: Theme, *, size: float = LEGAL_BODY, after: float = 2.5,
          indent: float = 0.0) -> TextBlock:
    return TextBlock(text, REGULAR, size, theme.text, leading=LEGAL_LEADING * size / LEGAL_BODY,
                     space_after=after, indent=indent)


def _subheading(text: str, theme: Theme) -> TextBlock:
    return TextBlock(text, BOLD, 7.5, theme.primary, space_before=3, space_after=1.5,
                     keep_with_next=True)


@lru_cache(maxsize=256)
def _legal_section(key: LegalKey, context_items: tuple[tuple[str, Any], ...],
                   theme: Theme) -> ColumnSection:
    """Appeal rights, No Surprises text, contact, taglines: built once per LegalKey.

    The section caches its layout and compressed operators, so every later statement with
    the same key only places it.
    """
    words = Words(key.text_file, key.brand_file, dict(context_items))
    blocks: list[Block] = []
    if key.adverse:
        blocks += [_heading(words("adverse.heading"), theme), _body(words("adverse.intro"),
                                                                    theme)]
        blocks.append(_subheading(words("adverse.provisions_heading"), theme))
        blocks += [_body(key.text_file.text("adverse.provision",
                                            {"code": code, "provision": provision}),
                         theme, indent=6, after=1) for code, provision in key.provisions]
        blocks += [_body(words("adverse.guideline"), theme),
                   _body(words("adverse.more_info"), theme),
                   _body(words("adverse.codes_available"), theme),
                   _subheading(words("adverse.appeal_heading"), theme),
                   _body(words("adverse.appeal"), theme), _body(words("adverse.appeal_how"), theme),
                   _body(words("adverse.expedited"), theme),
                   _body(words("adverse.external_review"), theme)]
        if key.line_of_business in key.brand_file.strings("appeals.erisa_lines_of_business"):
            blocks.append(_body(words("adverse.erisa"), theme))
        blocks.append(_body(words("adverse.consumer_assistance"), theme))
    if key.no_surprises:
        blocks.append(_heading(words("no_surprises.heading"), theme))
        blocks += [_body(text, theme) for text in words.paragraphs("no_surprises.body")]
    note = words("contact.print_copy" if key.variant == "print" else "contact.paper_copy")
    blocks += [_heading(words("contact.heading"), theme), _body(words("contact.body"), theme),
               _body(note, theme)]
    blocks += _language_assistance(words, theme)
    return ColumnSection(blocks)


def _language_assistance(words: Words, theme: Theme) -> list[Block]:
    out: list[Block] = [_heading(words("language_assistance.heading"), theme),
                        _body(words("language_assistance.intro"), theme)]
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
        out.append(TextBlock(text, font, 6.5, theme.text, leading=8.0, space_after=2.0))
    out += [_subheading(words("nondiscrimination.heading"), theme),
            _body(words("nondiscrimination.body"), theme, size=6.5)]
    return out


@cache
def _standard_font_can_show(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


_LEGAL_CONTEXT = ("legal_name", "short_name", "plan_administrator", "phone", "tty", "hours",
                  "website", "appeal_days", "appeal_address", "appeal_fax", "appeal_portal",
                  "external_review_name", "external_review_phone", "external_review_website",
                  "consumer_name", "consumer_phone", "consumer_website")


def _legal(statement: Statement, words: Words, theme: Theme, variant: str) -> ColumnSection:
    key = _legal_key(statement, words.file, words.brand, variant)
    context = tuple((name, words.context[name]) for name in _LEGAL_CONTEXT
                    if name in words.context)
    return _legal_section(key, context, theme)


# ---------------------------------------------------------------- document


def _creation_date(day: date) -> str:
    return f"D:{day:%Y%m%d}000000+00'00'"


def _blocks(statement: Statement, words: Words, theme: Theme, variant: str) -> Iterator[Block]:
    yield from _summary(statement, words, theme)
    yield from _claims(statement, words, theme)
    yield from _reasons(statement, words, theme)
    yield from _accumulators(statement, words, theme)
    yield _legal(statement, words, theme, variant)


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
    except RenderError:
        raise
    except Exception as exc:  # messages can quote cell text (PHI): name the id only
        raise RenderError(
            f"statement {statement.statement_id}: layout failed ({type(exc).__name__})"
        ) from None


def _render(statement: Statement, variant: str, root: Path) -> RenderedPdf:
    language = resolve_language(statement.member.language, root)
    text_file = statement_text(language, root)
    brand_file = brand(statement.plan.brand, root)
    theme = _theme(brand_file)
    words = Words(text_file, brand_file, _context(statement, text_file, brand_file, language))
    furniture = PageFurniture(statement, words, theme, variant)
    first = Region(MARGIN, PAGE_HEIGHT - FIRST_PAGE_TOP, BOTTOM, CONTENT_WIDTH)
    later = Region(MARGIN, PAGE_HEIGHT - LATER_PAGE_TOP, BOTTOM, CONTENT_WIDTH)
    pages = layout(list(_blocks(statement, words, theme, variant)), first, later,
                   furniture.header)
    for number, out in enumerate(pages, start=1):
        furniture.footer(out, number, len(pages))
    document = _document(pages, statement, words)
    return RenderedPdf(pdf=document.write(), pages=len(pages), document=document)


def _document(pages: Sequence[Out], statement: Statement, words: Words) -> PdfDocument:
    """The statement's objects: catalog, page tree, shared resources, pages, info."""
    document = PdfDocument()
    tree = document.reserve()
    fonts = sorted(set().union(*(out.fonts for out in pages)), key=FONT_IDS.__getitem__)
    font_refs = [(FONT_IDS[font], document.add(_font_object(font))) for font in fonts]
    font_dictionary = document.add(Raw(b"<< " + b" ".join(  # names and references only
        b"/%s %d 0 R" % (name.encode(), ref) for name, ref in font_refs) + b" >>"))
    resources = document.add(Raw(b"<< /Font %d 0 R >>" % font_dictionary))
    forms = {name: form for out in pages for name, form in out.forms.items()}
    images = {name: image for out in pages for name, image in out.images.items()}
    if forms or images:  # the cached legal columns use the fonts as their resources
        form_resources = resources
        xobjects = {name: document.add(Stream({
            "Type": Name("XObject"), "Subtype": Name("Form"),
            "BBox": [-2, -4, round(form.width + 2, 2), round(form.height + 2, 2)],
            "Resources": form_resources, "Filter": Name("FlateDecode")}, form.data))
            for name, form in sorted(forms.items())}
        xobjects |= {name: document.add(Stream({
            "Type": Name("XObject"), "Subtype": Name("Image"), "Width": image.width,
            "Height": image.height, "ColorSpace": Name(image.color_space),
            "BitsPerComponent": 8, "Filter": Name("DCTDecode")}, image.data))
            for name, image in sorted(images.items())}
        resources = document.add(Raw(b"<< /Font %d 0 R /XObject << %s >> >>" % (
            font_dictionary, b" ".join(b"/%s %d 0 R" % (name.encode(), ref)
                                       for name, ref in xobjects.items()))))
    kids: list[Ref] = []
    for out in pages:
        content = document.add(Stream({"Filter": Name("FlateDecode")},
                                      zlib.compress(out.finish(), ZLIB_LEVEL)))
        kids.append(document.add(Raw(  # no strings inside: preformatted
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources %d 0 R"
            b" /Contents %d 0 R >>" % (tree, resources, content))))
    document.set(tree, Raw(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))))
    document.root = document.add({
        "Type": Name("Catalog"), "Pages": tree, "Lang": words.file.string("meta.lang_tag"),
        "ViewerPreferences": {"DisplayDocTitle": True},
    })
    created = _creation_date(statement.statement_date)
    document.info = document.add({
        "Title": words("header.title"),
        "Author": words.context["legal_name"],
        "Subject": f"{statement.statement_id} v{statement.version}",
        "Creator": "eob-pipeline",
        "Producer": "eob-pipeline",
        "CreationDate": created,
        "ModDate": created,
    })
    return document
