"""Text measured and encoded for the embedded fonts: widths, line breaking, fitting, operators.

Widths come from the embedded fonts themselves (hmtx advance / unitsPerEm of the face that
draws each character, `fonts.glyph`), cached per character. Strings are glyph ids (Identity-H),
four hex digits a character, looked up in a per-font table; a line whose characters are all
in the font's base subset is one `<...> Tj`, others switch to the subsets that hold them.

Line breaking: at spaces (U+0020; U+00A0 and U+2011 never break), between ideographs and kana
(no line starts with closing punctuation such as 、。）」, none ends with an opening one; Korean
breaks only at the spaces between its words), never inside a phone number ("1-800-555-0100", "(800) 555-0100",
"TTY 711"), and inside a word only when it is wider than the line. Wrapping of template
wording (the same on every statement) is cached, member data never is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache

from pipeline.render import fonts
from pipeline.render.fonts import FONT_IDS, REGULAR


def clear_caches() -> None:
    """Forget widths, codes and wraps (the faces changed: `fonts.use_font_dir`)."""
    for cached in (_widths, _codes, _base_codes, font_can_show):
        cached.cache_clear()
    _wrap_cached.cache_clear()


fonts.on_change(clear_caches)


@cache
def _widths(font: str) -> dict[str, float]:
    """Per-character advance widths at size 1, filled on demand."""
    return {}


@cache
def _codes(font: str) -> dict[str, tuple[str, str]]:
    """Per character: (resource of the subset holding its glyph, four hex digits)."""
    return {}


@cache
def _base_codes(font: str) -> dict[str, str]:
    """The characters of the font's own base subset: the fast path of encoding."""
    return {}


def _resolve(font: str, char: str) -> tuple[str, str, float]:
    """(resource, code, width at size 1) for a character, folded when no face has it."""
    found = fonts.glyph(font, char)
    if found is None:
        char = _fold(char, font)
        found = fonts.glyph(font, char) or fonts.glyph(font, "?")
        assert found is not None, "every font has '?'"
    face_name, gid = found
    return (fonts.glyph_resource(face_name, gid), f"{gid:04x}",
            fonts.face(face_name).advance(gid))


def _learn(font: str, chars: set[str]) -> None:
    widths, codes, base = _widths(font), _codes(font), _base_codes(font)
    own = FONT_IDS.get(font)
    for char in chars:
        resource, code, width = _resolve(font, char)
        widths[char] = width
        codes[char] = (resource, code)
        if resource == own:
            base[char] = code


def text_width(text: str, font: str, size: float) -> float:
    """The width of `text` set in `font` at `size` (no kerning: PDF advances by /W)."""
    table = _widths(font)
    try:
        return sum(map(table.__getitem__, text)) * size
    except KeyError:
        _learn(font, set(text).difference(table))
        return sum(map(table.__getitem__, text)) * size


def text_ops(text: str, font: str, size: float, used: set[str]) -> str:
    """Operators that show `text` at the current point, the font's resource being selected.

    A line whose glyphs are all in the font's base subset is one `<...> Tj`; otherwise the
    runs in other subsets are framed by Tf switches, and the font's own resource is selected
    again at the end (so the caller's tracked text state stays true). `used` receives the
    resource names of the subsets switched to.
    """
    table = _base_codes(font)
    try:
        return "<" + "".join(map(table.__getitem__, text)) + "> Tj"
    except KeyError:
        pass
    codes = _codes(font)
    missing = set(text).difference(codes)
    if missing:
        _learn(font, missing)
    own = FONT_IDS.get(font, "")
    parts: list[str] = []
    current, run = own, list[str]()
    for char in text:
        resource, code = codes[char]
        if resource != current:
            if run:
                parts.append("<" + "".join(run) + "> Tj")
            parts.append(f"/{resource} {size:g} Tf")
            used.add(resource)
            current, run = resource, []
        run.append(code)
    parts.append("<" + "".join(run) + "> Tj")
    if current != own:
        parts.append(f"/{own} {size:g} Tf")
    return " ".join(parts)


def pdf_string(text: str, font: str) -> str:
    """`text` as one string operand for the font's own resource (its base subset).

    For a single Tj in a known subset (the print address block: upper-case ASCII); a
    character outside the base subset is folded to one inside it, or to "?". Drawing code
    uses `text_ops`, which switches subsets instead.
    """
    table = _base_codes(font)
    try:
        return "<" + "".join(map(table.__getitem__, text)) + ">"
    except KeyError:
        _learn(font, set(text).difference(_codes(font)))
    out = []
    for char in text:
        code = table.get(char)
        if code is None:
            code = table.get(unicodedata.normalize("NFKD", char)[:1]) or table["?"]
        out.append(code)
    return "<" + "".join(out) + ">"


_STROKED = str.maketrans("ŁłĐđĦħŦŧı", "LlDdHhTti")  # letters Unicode does not decompose


def _fold(char: str, font: str) -> str:
    """The closest character the font can show: "ễ" becomes "ê", not a blank glyph box."""
    if fonts.glyph(font, char) is not None:
        return char
    decomposed = unicodedata.normalize("NFKD", char.translate(_STROKED)) or "?"
    base, marks = decomposed[0], decomposed[1:]
    for keep in range(len(marks), -1, -1):
        candidate = unicodedata.normalize("NFC", base + marks[:keep])
        if len(candidate) == 1 and fonts.glyph(font, candidate) is not None:
            return candidate
    return "?"


@cache
def font_can_show(text: str, font: str = REGULAR) -> bool:
    """Whether some face of the font has every character (no shaping: see `shaping`)."""
    return all(fonts.glyph(font, char) is not None for char in set(text))


def standard_font_can_show(text: str) -> bool:
    """Whether the body font (REGULAR, with its CJK fallback) has every character."""
    return font_can_show(text, REGULAR)


# ---------------------------------------------------------------- line breaking

_PHONE = re.compile(
    r"(?:\b(?:TTY|TDD|TTD|ATS)[:：\s\u00a0]*)?"
    r"(?:\+?1[-.\s\u00a0\u2011])?(?:\(\d{3}\)[\s\u00a0]?|\d{3}[-.\s\u00a0\u2011])"
    r"\d{3}[-.\s\u00a0\u2011]\d{4}\b"
    r"|\b(?:TTY|TDD|TTD|ATS)[:：\s\u00a0]*\d{3}\b")
_SPACES = " \t"
_NO_START = set("、。，．,.:;：；！？!?）)」』】〕〉》〙〗｝]}ー〜～・ゝゞヽヾ々"
                "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
                "%％‰°℃¢￠’”\u2011\u00a0")
_NO_END = set("（(「『【〔〈《〘〖｛[{‘“$＄￡￥\u2011\u00a0")


def _cjk(char: str) -> bool:
    """Ideographs, kana and CJK punctuation: a line may break beside them. Not hangul (U+1100
    jamo, U+3130 compatibility jamo, U+AC00 syllables): Korean puts spaces between words and
    breaks at them, like English, never inside a word."""
    code = ord(char)
    if 0x3130 <= code <= 0x318F:
        return False
    return (0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF
            or 0x20000 <= code <= 0x3FFFF)


def line_pieces(paragraph: str) -> list[tuple[bool, str]]:
    """The paragraph cut at every break opportunity: (preceded by a space, piece)."""
    protected = bytearray(len(paragraph) + 1)
    for match in _PHONE.finditer(paragraph):
        protected[match.start() + 1:match.end()] = b"\x01" * (match.end() - match.start() - 1)
    pieces: list[tuple[bool, str]] = []
    current: list[str] = []
    spaced = False
    previous = ""
    for index, char in enumerate(paragraph):
        if char in _SPACES and not protected[index]:
            if current:
                pieces.append((spaced, "".join(current)))
                current = []
            spaced = bool(pieces)
            previous = char
            continue
        if (current and not protected[index] and (_cjk(previous) or _cjk(char))
                and char not in _NO_START and previous not in _NO_END):
            pieces.append((spaced, "".join(current)))
            current, spaced = [], False
        current.append(char)
        previous = char
    if current:
        pieces.append((spaced, "".join(current)))
    return pieces


def wrap_text(text: str, font: str, size: float, width: float, *,
              remember: bool = True) -> tuple[str, ...]:
    """Greedy line breaking (see the module docstring) that also breaks over-long words, so
    text never leaves its box.

    remember=False for member data (names, addresses, claims): only template wording,
    which repeats on every statement, is kept in the wrap cache.
    """
    wrap = _wrap_cached if remember else _wrap_cached.__wrapped__
    return wrap(text, font, size, round(width, 3))


@lru_cache(maxsize=8192)
def _wrap_cached(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    """Template wording repeats on every statement, so most wraps are cache hits."""
    if "\n" not in text and text_width(text, font, size) <= width:
        return (text,)
    lines: list[str] = []
    space = text_width(" ", font, size)
    for paragraph in text.split("\n"):
        current, current_width = "", 0.0
        for spaced, piece in line_pieces(paragraph):
            piece_width = text_width(piece, font, size)
            glue = space if spaced else 0.0
            if current and current_width + glue + piece_width <= width:
                current += (" " if spaced else "") + piece
                current_width += glue + piece_width
                continue
            if current:
                lines.append(current)
            while piece_width > width and len(piece) > 1:
                head, piece = _break_word(piece, font, size, width)
                lines.append(head)
                piece_width = text_width(piece, font, size)
            current, current_width = piece, piece_width
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
