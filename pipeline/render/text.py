"""Text measured and encoded for the PDF fonts: widths, wrapping, fitting, string operands.

Widths come from reportlab's font metrics, cached per character; wrapping of template
wording (the same on every statement) is cached too, member data never is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache

from reportlab.pdfbase import pdfmetrics

from pipeline.render.fonts import CID_CMAPS


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


def ellipsize(text: str, font: str, size: float, width: float) -> str:
    """`text` cut to the width with an ellipsis, for one-line slots that must not wrap."""
    if text_width(text, font, size) <= width:
        return text
    while text and text_width(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text + "\u2026"


def fit_size(text: str, font: str, width: float, largest: float, smallest: float) -> float:
    """The largest size (in half points, not below `smallest`) at which `text` fits the width."""
    size = largest
    while size > smallest and text_width(text, font, size) > width:
        size -= 0.5
    return size


def fit_block(lines: Sequence[str], font: str, width: float, height: float,
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


@cache
def standard_font_can_show(text: str) -> bool:
    """Whether the WinAnsi standard fonts have every character (else a CID font is needed)."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
