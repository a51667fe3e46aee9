"""The fonts statements use: which files, which face draws a character, embedded subsets.

Every font is embedded, as a subset (see `pipeline.render.pdf.fontfile` for the PDF side):
Noto Sans Regular and Bold for Latin, Greek, Cyrillic and Vietnamese; Noto Sans CJK (the
TC, SC, JP and KR faces of the Debian .ttc) for Chinese, Japanese and Korean; the Noto Sans
script fonts for the language-assistance taglines that need shaping (`pipeline.render.shaping`).

A *font* (what callers pass: REGULAR, BOLD, CJK_TRADITIONAL, ...) is a stack of faces: the
first that has a character draws it, so a member name in Han characters set in REGULAR comes
out in Noto Sans CJK TC (kana in the JP face, hangul in the KR face). A character no face of
the stack has is folded (`text._fold`), never dropped into the PDF as a missing glyph.

Subsets are never made per statement. Each face has a *base* subset, made once per process
from a fixed repertoire: printable ASCII, the non-breaking space and hyphen, and every
character of the templates (statement wording, brands, reason and remark codes, taglines),
plus for script faces every glyph that shaping those templates produces. A glyph outside the
base (a Polish or Vietnamese letter in a member's name, an ideograph in an address) comes
from a *block* subset: the face's glyphs gid//128, also made once per process. A statement
embeds its faces' base subsets and only the blocks its text touches; each subset is its own
PDF resource (F1 the base of Noto Sans Regular, F1g3 its glyphs 384-511). The resource names
are fixed, so operators built once (template text) are valid in every document.

Files: looked up in the directory `Settings.font_dir` (EOB_FONT_DIR) names, else in Debian's
/usr/share/fonts/truetype/noto (fonts-noto-core) and /usr/share/fonts/opentype/noto
(fonts-noto-cjk). `check_font_files` (call it when a process starts) raises
`MissingFontFile` naming the file and the package; so does the first use of a missing face.

Note: a template edit that brings a new character changes the base subsets, so every
statement rendered afterwards has new bytes (a re-render is detected as a change).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.render.pdf.fontfile import Face, FontProgram, add_font_program
from pipeline.render.pdf.writer import PdfDocument, Ref
from pipeline.templates import DEFAULT_TEMPLATES_DIR

__all__ = ["BOLD", "CID_FONTS", "CJK_JAPANESE", "CJK_KOREAN", "CJK_SIMPLIFIED",
           "CJK_TRADITIONAL", "FONT_IDS", "REGULAR", "SCRIPT_FACES", "MissingFontFile",
           "add_font", "check_font_files", "face", "glyph", "glyph_resource", "stack",
           "use_font_dir"]

CORE, CJK = "fonts-noto-core", "fonts-noto-cjk"
DEBIAN_DIRS = {CORE: Path("/usr/share/fonts/truetype/noto"),
               CJK: Path("/usr/share/fonts/opentype/noto")}


@dataclass(frozen=True, slots=True)
class FaceSpec:
    """A face: its fixed resource prefix, file, index in a collection, Debian package."""

    prefix: str
    file: str
    index: int = 0
    package: str = CORE


REGULAR, BOLD = "NotoSans-Regular", "NotoSans-Bold"
CJK_TRADITIONAL, CJK_SIMPLIFIED = "NotoSansCJKtc-Regular", "NotoSansCJKsc-Regular"
CJK_JAPANESE, CJK_KOREAN = "NotoSansCJKjp-Regular", "NotoSansCJKkr-Regular"
_REGULAR_CJK, _BOLD_CJK = "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"

FACES: dict[str, FaceSpec] = {
    REGULAR: FaceSpec("F1", "NotoSans-Regular.ttf"),
    BOLD: FaceSpec("F2", "NotoSans-Bold.ttf"),
    CJK_TRADITIONAL: FaceSpec("F3", _REGULAR_CJK, 3, CJK),
    CJK_SIMPLIFIED: FaceSpec("F4", _REGULAR_CJK, 2, CJK),
    CJK_KOREAN: FaceSpec("F5", _REGULAR_CJK, 1, CJK),
    CJK_JAPANESE: FaceSpec("F6", _REGULAR_CJK, 0, CJK),
    "NotoSansCJKtc-Bold": FaceSpec("F7", _BOLD_CJK, 3, CJK),
    "NotoSansCJKkr-Bold": FaceSpec("F8", _BOLD_CJK, 1, CJK),
    "NotoSansCJKjp-Bold": FaceSpec("F9", _BOLD_CJK, 0, CJK),
}
SCRIPT_FACES: dict[str, str] = {}  # ISO 15924 script -> face, for shaped text
for _number, (_script, _file) in enumerate(sorted({
        "Arab": "Arabic", "Armn": "Armenian", "Beng": "Bengali", "Deva": "Devanagari",
        "Ethi": "Ethiopic", "Geor": "Georgian", "Gujr": "Gujarati", "Guru": "Gurmukhi",
        "Hebr": "Hebrew", "Khmr": "Khmer", "Knda": "Kannada", "Laoo": "Lao", "Mlym": "Malayalam",
        "Mymr": "Myanmar", "Orya": "Oriya", "Sinh": "Sinhala", "Taml": "Tamil", "Telu": "Telugu",
        "Thaa": "Thaana", "Thai": "Thai", "Cher": "Cherokee", "Cans": "CanadianAboriginal",
        "Syrc": "Syriac", "Tibt": "Tibetan"}.items()), start=20):
    if _script == "Tibt":  # Noto has Tibetan as a serif face only
        SCRIPT_FACES[_script] = "NotoSerifTibetan-Regular"
        FACES["NotoSerifTibetan-Regular"] = FaceSpec(f"F{_number}", "NotoSerifTibetan-Regular.ttf")
        continue
    SCRIPT_FACES[_script] = f"NotoSans{_file}-Regular"
    FACES[f"NotoSans{_file}-Regular"] = FaceSpec(f"F{_number}", f"NotoSans{_file}-Regular.ttf")
for _script, _face in (("Hant", CJK_TRADITIONAL), ("Hans", CJK_SIMPLIFIED), ("Jpan", CJK_JAPANESE),
                       ("Kore", CJK_KOREAN), ("Hani", CJK_TRADITIONAL), ("Latn", REGULAR),
                       ("Grek", REGULAR), ("Cyrl", REGULAR)):
    SCRIPT_FACES[_script] = _face

FONT_IDS = {name: spec.prefix for name, spec in FACES.items()}
"""Each font's resource name: the base subset of its first face."""
_BY_PREFIX = {spec.prefix: name for name, spec in FACES.items()}

CID_FONTS = {  # the `font` of a template tagline -> the font that sets it
    "cjk-traditional": CJK_TRADITIONAL,
    "cjk-simplified": CJK_SIMPLIFIED,
    "korean": CJK_KOREAN,
    "japanese": CJK_JAPANESE,
}

_STACKS: dict[str, tuple[str, ...]] = {
    REGULAR: (REGULAR, CJK_TRADITIONAL),
    BOLD: (BOLD, "NotoSansCJKtc-Bold"),
    CJK_TRADITIONAL: (REGULAR, CJK_TRADITIONAL),  # Latin letters and digits in Noto Sans
    CJK_SIMPLIFIED: (REGULAR, CJK_SIMPLIFIED),
    CJK_KOREAN: (REGULAR, CJK_KOREAN),
    CJK_JAPANESE: (REGULAR, CJK_JAPANESE),
}
# A kana or hangul character falling back from a Latin face is drawn in the JP or KR face.
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_FALLBACK_BY_CLASS = {REGULAR: (CJK_JAPANESE, CJK_KOREAN),
                      BOLD: ("NotoSansCJKjp-Bold", "NotoSansCJKkr-Bold")}


class MissingFontFile(FileNotFoundError):
    """A font file statements need is not installed; names the file and what to install."""

    def __init__(self, path: Path, package: str) -> None:
        super().__init__(f"font file {path} is missing: install the Debian package {package} "
                         f"(apt-get install {package}) or set EOB_FONT_DIR to a directory "
                         f"holding {path.name}")
        self.path, self.package = path, package


_font_dir: list[Path | None] = [None]


def use_font_dir(font_dir: Path | None) -> None:
    """Read font files from `font_dir` (None: Debian's directories); checks every file.

    Call it when a process starts (`pipeline.stages.context.open_context`, `eob check`). A
    new directory forgets the faces, subsets and widths read so far; the same one keeps them.
    """
    check_font_files(font_dir)
    if font_dir != _font_dir[0]:
        _font_dir[0] = font_dir
        clear_caches()


_DEPENDENTS: list[Callable[[], None]] = []  # caches built on the faces (text's widths, ...)


def on_change(clear: Callable[[], None]) -> None:
    """Have `clear` called whenever the faces change (`use_font_dir`)."""
    _DEPENDENTS.append(clear)


def clear_caches() -> None:
    for cached in (face, program, _base_gids, _tier_gids, _sources, _repertoire):
        cached.cache_clear()
    for clear in _DEPENDENTS:
        clear()


def font_path(name: str, font_dir: Path | None = None) -> Path:
    spec = FACES[name]
    directory = font_dir or _font_dir[0] or DEBIAN_DIRS[spec.package]
    return directory / spec.file


def check_font_files(font_dir: Path | None = None) -> None:
    """Raise MissingFontFile for the first font file that is not there."""
    for name, spec in FACES.items():
        path = font_path(name, font_dir or _font_dir[0])
        if not path.is_file():
            raise MissingFontFile(path, spec.package)


@cache
def face(name: str) -> Face:
    """The face's cmap and metrics, read once per process."""
    path = font_path(name)
    if not path.is_file():
        raise MissingFontFile(path, FACES[name].package)
    return Face(path, FACES[name].index)


def stack(font: str) -> tuple[str, ...]:
    """The faces that draw `font`'s text, first choice first. A script face (Armenian has
    no digits, no "?") falls back to Noto Sans and its CJK face."""
    found = _STACKS.get(font)
    return found if found is not None else (font, *_STACKS[REGULAR])


def glyph(font: str, char: str) -> tuple[str, int] | None:
    """(face, glyph id) that draws `char` in `font`, or None when no face of it has one."""
    faces = stack(font)
    first = face(faces[0])
    gid = first.glyphs.get(char)
    if gid is not None:
        return faces[0], gid
    by_class = _FALLBACK_BY_CLASS.get(font)
    if by_class is not None and (_KANA.match(char) or _HANGUL.match(char)):
        name = by_class[0] if _KANA.match(char) else by_class[1]
        gid = face(name).glyphs.get(char)
        if gid is not None:
            return name, gid
    for name in faces[1:]:
        gid = face(name).glyphs.get(char)
        if gid is not None:
            return name, gid
    return None


def glyph_resource(face_name: str, gid: int) -> str:
    """The resource name of the subset holding the glyph: the base, a CJK face's subset for
    one statement template (F3tzhHant), or the glyph's block of 128 (F1g3)."""
    prefix = FACES[face_name].prefix
    if gid in _base_gids(face_name):
        return prefix
    for tier, gids in _tier_gids(face_name).items():
        if gid in gids:
            return f"{prefix}t{tier}"
    return f"{prefix}g{gid >> 7}"


_CODE_CHARACTERS = ("\u00a0\u00a7\u00b0\u00b7\u00d7\u2011\u2013\u2014\u2018\u2019\u201c\u201d"
                    "\u2020\u2021\u2022\u2026\u2192\u2713\u25a0\u25a1\u25cf")
"""Characters the renderer's code itself writes (separators, ellipsis, bound phone numbers)."""


@cache
def _sources(templates: Path = DEFAULT_TEMPLATES_DIR) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The repertoire, as (tier, lines): "" for printable ASCII, the characters the code
    writes and the templates every statement may use (brands, code tables, taglines), then
    one tier per statement template (statement/zh-Hant.toml: "zhHant")."""
    shared = [" ".join(chr(code) for code in range(32, 127)) + _CODE_CHARACTERS]
    for pattern in ("brands/*.toml", "*.toml"):
        shared += [path.read_text(encoding="utf-8") for path in sorted(templates.glob(pattern))]
    languages = {path.stem: "".join(c for c in path.stem if c.isalnum())
                 for path in sorted(templates.glob("statement/*.toml"))}
    by_tier: dict[str, list[str]] = {tier: [] for tier in languages.values()}
    for path in sorted(templates.glob("*.csv")):  # code tables: a column per language
        for tier, texts in _csv_texts(path, languages).items():
            (by_tier[tier] if tier else shared).extend(texts)
    sources = [("", shared)]
    sources += [(tier, [(templates / "statement" / f"{stem}.toml").read_text(encoding="utf-8"),
                        *by_tier[tier]]) for stem, tier in languages.items()]
    return tuple((tier, tuple(sorted({unicodedata.normalize("NFC", line) for text in texts
                                      for line in text.splitlines()})))
                 for tier, texts in sources)


def _csv_texts(path: Path, languages: dict[str, str]) -> dict[str, list[str]]:
    """A code table's cells by the statement template tier their column belongs to
    ("text_zh_Hant" -> "zhHant"); columns of no language (or English and Spanish, whose
    letters the base subsets hold anyway) under "": a Chinese reason text then travels only
    with Chinese statements, not in every statement's tagline subset."""
    suffixes = {stem.replace("-", "_"): tier for stem, tier in languages.items()}
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            for column, value in row.items():
                suffix = next((s for s in suffixes if column.endswith("_" + s)), None)
                tier = suffixes[suffix] if suffix and suffix not in ("en", "es") else ""
                out.setdefault(tier, []).append(value or "")
    return out


@cache
def _repertoire() -> tuple[str, ...]:
    """Every template line, of every tier."""
    return tuple(sorted({line for _, lines in _sources() for line in lines}))


def _repertoire_chars() -> frozenset[str]:
    return frozenset("".join(_repertoire()))


@cache
def _base_gids(face_name: str) -> frozenset[int]:
    """The glyphs of a face's base subset (see the module docstring)."""
    this = face(face_name)
    gids = {0}
    if face_name in (REGULAR, BOLD):
        gids.update(filter(None, map(this.glyphs.get, _repertoire_chars())))
    elif face_name in _CJK_FACES:  # the shared templates only: the taglines, mostly
        gids |= _cjk_gids(this, face_name, _sources()[0][1])
    else:
        gids.update(filter(None, map(this.glyphs.get, _repertoire_chars())))
        gids |= _shaped_repertoire(this)
    return frozenset(gids)


def _cjk_gids(this: Face, face_name: str, lines: Iterable[str]) -> set[int]:
    regular = face(REGULAR).glyphs
    return {this.glyphs[char] for line in lines if face_name in _cjk_faces_of(line)
            for char in line if char not in regular and char in this.glyphs}


@cache
def _tier_gids(face_name: str) -> dict[str, frozenset[int]]:
    """A CJK face's glyphs for each statement template (not in the base or an earlier
    tier): a statement in Chinese embeds its template's ideographs as one subset, an
    English one with a Chinese tagline only the base."""
    if face_name not in _CJK_FACES:
        return {}
    this, taken = face(face_name), set(_base_gids(face_name))
    tiers: dict[str, frozenset[int]] = {}
    for tier, lines in _sources()[1:]:
        gids = _cjk_gids(this, face_name, lines) - taken
        if gids:
            tiers[tier] = frozenset(gids)
            taken |= gids
    return tiers


_CJK_FACES = {CJK_TRADITIONAL: "TC", CJK_SIMPLIFIED: "SC", CJK_JAPANESE: "JP", CJK_KOREAN: "KR",
              "NotoSansCJKtc-Bold": "TC", "NotoSansCJKjp-Bold": "JP", "NotoSansCJKkr-Bold": "KR"}
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _cjk_faces_of(line: str) -> set[str]:
    """The CJK faces whose base subsets take a template line's CJK characters: kana makes it
    Japanese, hangul Korean; Han alone is simplified or traditional by the legacy charsets
    (GB 2312, Big5) its ideographs fit."""
    if _KANA.search(line):
        kind = {"JP"}
    elif _HANGUL.search(line):
        kind = {"KR"}
    elif _HAN.search(line) or re.search("[\u3000-\u303f\uff00-\uffef]", line):
        han = "".join(_HAN.findall(line))
        kind = {name for name, charset in (("SC", "gb2312"), ("TC", "big5"))
                if _encodes(han, charset)} or {"TC"}
    else:
        return set()
    return {name for name, code in _CJK_FACES.items() if code in kind}


def _encodes(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def _shaped_repertoire(this: Face) -> set[int]:
    """Every glyph shaping the template lines in this face produces (contextual forms,
    ligatures, marks), so shaped taglines find them in the base subset."""
    import uharfbuzz as hb

    hb_font = hb.Font(hb.Face(this.path.read_bytes(), this.index))
    gids: set[int] = set()
    for run in sorted(set(_runs_of(_repertoire(), this))):
        buffer = hb.Buffer()
        buffer.add_str(run)
        buffer.guess_segment_properties()
        hb.shape(hb_font, buffer, {})
        infos = buffer.glyph_infos
        spans = glyph_clusters([info.cluster for info in infos], len(run))
        for info, (start, end, count) in zip(infos, spans, strict=True):
            gids.add(info.codepoint)
            if count == 1 and end == start + 1:  # one glyph for one character: its ToUnicode
                this.shaped_unicode.setdefault(info.codepoint, run[start])
    return gids


def glyph_clusters(clusters: list[int], length: int) -> list[tuple[int, int, int]]:
    """Per shaped glyph: its cluster's first and end character index, and how many glyphs
    the cluster has (HarfBuzz clusters, `length` characters shaped)."""
    starts = sorted(set(clusters))
    ends = dict(zip(starts, [*starts[1:], length], strict=False))
    counts = Counter(clusters)
    return [(cluster, ends[cluster], counts[cluster]) for cluster in clusters]


def base_glyphs(face_name: str) -> frozenset[int]:
    """The glyphs of the face's base subset (for a script face: after learning which
    character each shaped form shows, so its ToUnicode is fixed from then on)."""
    return _base_gids(face_name)


def _runs_of(lines: Iterable[str], this: Face) -> Iterator[str]:
    """Maximal runs of the lines' characters that the face has, with the spaces inside."""
    for line in lines:
        run: list[str] = []
        for char in line:
            if char in this.glyphs and (not char.isascii() or run):
                run.append(char)
            elif run:
                yield "".join(run).strip()
                run = []
        if run:
            yield "".join(run).strip()


_RESOURCE = re.compile(r"(F\d+)(?:([gt])(\w+))?")


@cache
def program(resource: str) -> FontProgram:
    """The embedded subset behind a resource name, made and compressed once per process."""
    match = _RESOURCE.fullmatch(resource)
    if match is None:
        raise KeyError(f"no font resource {resource}")
    prefix, kind, part = match.groups()
    name = _BY_PREFIX[prefix]
    this = face(name)
    gids: Iterable[int]
    if kind == "g":
        start = int(part) * 128
        gids = range(start, min(start + 128, len(this.advances)))
    elif kind == "t":
        gids = _tier_gids(name)[part]
    else:
        gids = _base_gids(name)
    return this.subset(gids, f"{resource}:{name}")


def add_font(document: PdfDocument, resource: str) -> Ref:
    """Add one subset's objects to the document; returns its font dictionary's reference."""
    return add_font_program(document, program(resource))


def cid_font(name: str) -> str:
    """Kept for callers of the referenced CID fonts: the font, its face read (or refused)."""
    face(stack(name)[0])
    return name
