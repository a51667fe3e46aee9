"""Shaped text: one line in a script that needs shaping (Arabic, Indic, Khmer, Thai, ...)
turned into PDF text operators with HarfBuzz's glyph ids and positions.

For the tagline block (`pipeline.render.eob.legal`), which sets one sentence per language:

    lines = wrap_shaped(text, language, size, width, script=script)   # cached per process
    for index, line in enumerate(lines):
        draw_shaped(out, x, baseline - index * leading, line, language, size, color,
                    script=script)
    shaped_width(line, language, size, script=script)                 # to align or measure

`language` is the BCP 47 code ("ar", "fa", "ur", "hi", "pa", "km", "zh-Hant", ...);
`script` (ISO 15924: "Arab", "Deva", ...; as in templates/taglines.toml) overrides the
script the language implies. Latin, Greek, Cyrillic and CJK text needs no shaping: it goes
through the plain fonts (`fonts.SCRIPT_FACES`: CJK in its Noto Sans CJK face), so every
tagline can be drawn through these three functions.

How: the line is split into runs by face (the script's Noto face; Latin letters and digits,
e.g. a phone number, in Noto Sans) and, for right-to-left scripts, by direction (a simple
bidi: strong left-to-right runs with the neutrals between them stay left to right, runs are
laid out right to left). Each run is shaped by HarfBuzz (contextual forms, ligatures,
reordering, marks, mirrored brackets). The glyphs are shown with their HarfBuzz positions,
inside a marked-content span whose /ActualText is the original line, so text extraction and
screen readers get the words, not the glyphs. Shaping and operators are cached per process
(taglines are template text); line breaking follows `text.wrap_text` (never inside a phone
number), and a word wider than the line breaks only between grapheme clusters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

import uharfbuzz as hb

from pipeline.render import fonts
from pipeline.render.canvas import Out
from pipeline.render.fonts import FONT_IDS, REGULAR, SCRIPT_FACES
from pipeline.render.text import line_pieces, text_ops, text_width

__all__ = ["SCRIPTS", "draw_shaped", "missing", "script_of", "shaped_ops", "shaped_width",
           "wrap_shaped"]

SCRIPTS = {  # a language's usual script when the caller names none
    "ar": "Arab", "fa": "Arab", "ur": "Arab", "ps": "Arab", "prs": "Arab", "ku": "Arab",
    "he": "Hebr", "yi": "Hebr", "hi": "Deva", "mr": "Deva", "ne": "Deva", "pa": "Guru",
    "gu": "Gujr", "bn": "Beng", "km": "Khmr", "lo": "Laoo", "th": "Thai", "am": "Ethi",
    "ti": "Ethi", "hy": "Armn", "my": "Mymr", "te": "Telu", "ta": "Taml", "ka": "Geor",
    "si": "Sinh", "kn": "Knda", "ml": "Mlym", "or": "Orya", "dv": "Thaa", "chr": "Cher",
    "zh-Hant": "Hant", "zh-TW": "Hant", "zh-HK": "Hant", "zh": "Hans", "zh-Hans": "Hans",
    "zh-CN": "Hans", "ja": "Jpan", "ko": "Kore", "ru": "Cyrl", "uk": "Cyrl", "el": "Grek",
}
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Syrc", "Thaa"})
_PLAIN = {fonts.CJK_TRADITIONAL, fonts.CJK_SIMPLIFIED, fonts.CJK_JAPANESE, fonts.CJK_KOREAN,
          REGULAR}


def script_of(language: str, script: str | None = None) -> str:
    """The ISO 15924 script a line of `language` is in."""
    if script:
        return script
    return SCRIPTS.get(language) or SCRIPTS.get(language.split("-")[0], "Latn")


def _plain_font(script: str) -> str | None:
    """The plain font (no shaping) for a script, or None when it needs shaping."""
    face = SCRIPT_FACES.get(script, REGULAR)
    return face if face in _PLAIN else None


@dataclass(frozen=True, slots=True)
class _Run:
    face: str
    # gid, advance, x offset, y offset (1/1000 em), and the text of the glyph's cluster when
    # its ToUnicode cannot give it (a ligature, a reordered or split cluster): the first
    # glyph of such a cluster carries the text, the others "" (None: ToUnicode suffices)
    glyphs: tuple[tuple[int, int, int, int, str | None], ...]


@dataclass(frozen=True, slots=True)
class _Shaped:
    width: float  # 1/1000 em
    runs: tuple[_Run, ...]  # in visual order, left to right


@cache
def _hb_font(face_name: str) -> hb.Font:
    face = fonts.face(face_name)
    return hb.Font(hb.Face(face.path.read_bytes(), face.index))


def _segments(text: str, script: str) -> list[tuple[int, str, str]]:
    """(level, face, text) in logical order: level 1 right to left, 0 or 2 left to right."""
    script_face = fonts.face(SCRIPT_FACES[script])
    regular = fonts.face(REGULAR)
    rtl = script in RTL_SCRIPTS
    kinds: list[str] = []  # S: the script's face, L: Noto Sans, N: neutral
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "ZPSC" or char in "\u00a0\u2011":
            kinds.append("N")
        elif char in script_face.glyphs and not char.isascii():
            kinds.append("S")
        else:
            kinds.append("L")
    levels = _levels(kinds, rtl)
    out: list[tuple[int, str, str]] = []
    own = SCRIPT_FACES[script]
    for index, char in enumerate(text):
        level, kind, in_script = levels[index], kinds[index], char in script_face.glyphs
        follows_script = bool(out) and out[-1][1] == own
        if kind == "S" or (kind == "N" and in_script and (level == 1 or follows_script)):
            face = own  # a neutral inside the script's text stays in its face
        elif char in regular.glyphs or not in_script:
            face = _fallback_face(char)  # digits, punctuation the script's face lacks
        else:
            face = own
        if out and out[-1][0] == level and out[-1][1] == face:
            out[-1] = (level, face, out[-1][2] + char)
        else:
            out.append((level, face, char))
    return out


def _fallback_face(char: str) -> str:
    """The face that draws a character the script's face lacks: Noto Sans, else the face of
    its stack that has it (an ideograph: Noto Sans CJK); Noto Sans (its .notdef) when none."""
    found = fonts.glyph(REGULAR, char)
    return found[0] if found is not None else REGULAR


def missing(text: str, language: str, *, script: str | None = None) -> str:
    """The characters of `text` no face can draw once shaped for its script ("" when every
    one has a glyph): what would print as an empty box. For start-up checks of templates."""
    script = script_of(language, script)
    if script not in SCRIPT_FACES:
        return text
    plain = _plain_font(script)
    if plain is not None:
        return "".join(sorted({char for char in text if fonts.glyph(plain, char) is None}))
    lacking = set()
    for _, face_name, run in _segments(text, script):
        glyphs = fonts.face(face_name).glyphs
        lacking |= {char for char in run if char not in glyphs and not _invisible(char)}
    return "".join(sorted(lacking))


def _invisible(char: str) -> bool:
    """Joiners and marks of direction, which shaping consumes without a glyph of their own."""
    return unicodedata.category(char) == "Cf"


def _levels(kinds: list[str], rtl: bool) -> list[int]:
    """Bidi levels, simplified: in a right-to-left line, Latin letters and digits are level 2
    and so are the neutrals between two of them; everything else is level 1."""
    if not rtl:
        return [0] * len(kinds)
    levels = [1 if kind == "S" else 2 if kind == "L" else 0 for kind in kinds]
    previous_strong = 1
    for index, kind in enumerate(kinds):
        if kind != "N":
            previous_strong = levels[index]
            continue
        following = next((levels[j] for j in range(index + 1, len(kinds)) if kinds[j] != "N"), 1)
        levels[index] = 2 if previous_strong == following == 2 else 1
    return levels


@lru_cache(maxsize=4096)
def _shape(text: str, language: str, script: str) -> _Shaped:
    segments = _segments(text, script)
    if script in RTL_SCRIPTS:  # rule L2: reverse the level-2 groups, then the whole line
        ordered: list[tuple[int, str, str]] = []
        group: list[tuple[int, str, str]] = []
        for segment in segments:
            if segment[0] == 2:
                group.append(segment)
                continue
            ordered += reversed(group)
            group = []
            ordered.append(segment)
        ordered += reversed(group)
        segments = ordered[::-1]
    runs: list[_Run] = []
    width = 0
    for level, face_name, run_text in segments:
        face = fonts.face(face_name)
        buffer = hb.Buffer()
        buffer.add_str(run_text)
        buffer.guess_segment_properties()
        buffer.direction = "rtl" if level == 1 else "ltr"
        if face_name == SCRIPT_FACES.get(script):
            buffer.script = script
            buffer.language = language
        hb.shape(_hb_font(face_name), buffer, {})
        scale = 1000 / face.upem
        fonts.base_glyphs(face_name)  # fixes the ToUnicode of the shaped forms first
        infos = buffer.glyph_infos
        spans = fonts.glyph_clusters([info.cluster for info in infos], len(run_text))
        seen: set[int] = set()
        glyphs = []
        for info, pos, (start, end, count) in zip(infos, buffer.glyph_positions, spans,
                                                  strict=True):
            actual: str | None = None
            if _needs_actual(face.unicode_of(info.codepoint), run_text, start, end, count):
                actual = "" if start in seen else run_text[start:end]
                seen.add(start)
            glyphs.append((info.codepoint, round(pos.x_advance * scale),
                           round(pos.x_offset * scale), round(pos.y_offset * scale), actual))
        width += sum(glyph[1] for glyph in glyphs)
        runs.append(_Run(face_name, tuple(glyphs)))
    return _Shaped(width, tuple(runs))


def _needs_actual(mapped: str | None, text: str, start: int, end: int, count: int) -> bool:
    """Whether a glyph needs /ActualText: its ToUnicode does not give its cluster's text.

    A ligature whose ToUnicode is a presentation form of its letters (Arabic lam-alef,
    U+FEFB) needs none: one character a glyph reads back in right-to-left order in every
    extractor (poppler, pdfminer and PyMuPDF reverse a multi-character mapping on a
    right-to-left line), and NFKC gives the letters.
    """
    cluster = text[start:end]
    if count == 1 and mapped is not None and len(mapped) == 1 and len(cluster) > 1:
        return unicodedata.normalize("NFKC", mapped) != cluster
    return count > 1 or end > start + 1 or mapped != text[start]


def shaped_width(text: str, language: str, size: float, *, script: str | None = None) -> float:
    """The width of one line of `text` once shaped, at `size`."""
    script = script_of(language, script)
    plain = _plain_font(script)
    if plain is not None:
        return text_width(text, plain, size)
    return _shape(text, language, script).width * size / 1000


@lru_cache(maxsize=2048)
def wrap_shaped(text: str, language: str, size: float, width: float, *,
                script: str | None = None) -> tuple[str, ...]:
    """`text` broken into lines no wider than `width` once shaped (cached: template text)."""
    script = script_of(language, script)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for spaced, piece in line_pieces(paragraph):
            candidate = current + (" " if spaced else "") + piece if current else piece
            if shaped_width(candidate, language, size, script=script) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while shaped_width(piece, language, size, script=script) > width and len(piece) > 1:
                head, piece = _break_cluster(piece, language, size, width, script)
                lines.append(head)
            current = piece
        lines.append(current)
    return tuple(lines)


def _break_cluster(word: str, language: str, size: float, width: float,
                   script: str) -> tuple[str, str]:
    """The longest head of `word` that fits, cut before a base character (not a mark)."""
    cut = 1
    for index in range(1, len(word)):
        if unicodedata.category(word[index])[0] == "M" or word[index] in "\u200c\u200d":
            continue
        if shaped_width(word[:index], language, size, script=script) > width:
            break
        cut = index
    return word[:cut], word[cut:]


@lru_cache(maxsize=4096)
def shaped_ops(text: str, language: str, size: float, color: str, *,
               script: str | None = None) -> tuple[str, frozenset[str]]:
    """Operators showing one line with its baseline at the origin, and the font resources
    they use; a text object of its own, its glyphs inside a /Span with /ActualText."""
    script = script_of(language, script)
    plain = _plain_font(script)
    used: set[str] = set()
    if plain is not None:
        used.add(FONT_IDS[plain])
        shown = text_ops(text, plain, size, used)
        return (f"BT {color} rg /{FONT_IDS[plain]} {size:g} Tf 1 0 0 1 0 0 Tm {shown} ET",
                frozenset(used))
    parts = [f"BT {color} rg"]
    in_span = False
    pen = 0
    resource = ""
    shown_glyphs: list[str] = []
    expected: float | None = None  # where the text position is after the last glyph

    def flush() -> None:
        if shown_glyphs:
            parts.append("[" + "".join(shown_glyphs) + "] TJ")
            shown_glyphs.clear()

    for run in _shape(text, language, script).runs:
        face = fonts.face(run.face)
        for gid, advance, x_offset, y_offset, actual in run.glyphs:
            if actual != "" and in_span:
                flush()
                parts.append("EMC")
                in_span = False
            if actual:
                flush()
                parts.append(f"/Span <</ActualText <FEFF{actual.encode('utf-16-be').hex()}>>> BDC")
                in_span = True
            glyph_resource = fonts.glyph_resource(run.face, gid)
            if glyph_resource != resource:
                flush()
                resource = glyph_resource
                used.add(resource)
                parts.append(f"/{resource} {size:g} Tf")
            x = pen + x_offset
            if y_offset or expected is None:
                flush()
                parts.append(f"1 0 0 1 {x * size / 1000:.2f} {y_offset * size / 1000:.2f} Tm")
            elif abs(expected - x) >= 1:
                shown_glyphs.append(f" {expected - x:.0f} ")
            shown_glyphs.append(f"<{gid:04x}>")
            expected = None if y_offset else x + round(face.advance(gid) * 1000)
            pen += advance
    flush()
    parts.append("EMC ET" if in_span else "ET")
    return " ".join(parts), frozenset(used)


def draw_shaped(out: Out, x: float, y: float, text: str, language: str, size: float,
                color: str, *, script: str | None = None) -> None:
    """One line of `text` with its baseline's left end at (x, y), shaped for its script."""
    ops, used = shaped_ops(text, language, size, color, script=script)
    out.place(x, y, ops, used)
