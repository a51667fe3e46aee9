"""Embedded font programs: a font file's metrics, its subsets, and their PDF font objects.

Every font a statement uses travels inside it as a subset, written as a composite (Type0)
font with Identity-H encoding: a string's two-byte codes are glyph ids of the original font,
so encoding text is a dictionary lookup and operators built once stay valid in every file.

- TrueType outlines (Noto Sans and the script fonts) are subset keeping their glyph ids
  (fontTools' retain_gids: the gaps cost a few hundred bytes once compressed) and embedded as
  FontFile2 of a CIDFontType2 with /CIDToGIDMap /Identity.
- CFF outlines (Noto Sans CJK, CID-keyed with the Adobe-Identity-0 ordering, where a glyph's
  CID is its glyph id) are subset compactly, which keeps each glyph's CID, and embedded as
  FontFile3 /CIDFontType0C of a CIDFontType0: the CID in the string finds the glyph.

A subset carries /W (widths from the font's own hmtx) and a /ToUnicode CMap, so text
extraction and screen readers get the characters back. Subsets are built once per process
(`pipeline.render.fonts` caches them): the font program and the CMap are Flate-compressed
then, and each document only adds five small objects that point at those bytes.

Output is deterministic: no timestamp is recalculated, the subset tag is a digest of the
subset's glyph ids.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from fontTools import subset as ft_subset
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont

from pipeline.render.pdf.writer import Name, PdfDocument, Raw, Ref, Static, Stream

__all__ = ["Face", "FontProgram", "Ink", "add_font_program"]

_DROPPED_TABLES = ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern", "DSIG", "vhea", "vmtx",
                   "VORG", "name", "hdmx", "VDMX", "LTSH", "gasp", "STAT", "meta", "morx", "feat"]


class Ink(NamedTuple):
    """How far glyphs' ink reaches, in ems: above and below the baseline, left of a glyph's
    origin and right of its advance (all zero or positive)."""

    top: float
    bottom: float
    left: float
    right: float


class Face:
    """One face of a font file (a .ttf, or one face of a .ttc): cmap, advances, metrics."""

    def __init__(self, path: Path, index: int = 0) -> None:
        self.path, self.index = path, index
        font = TTFont(path, fontNumber=index, lazy=True)
        self.cff = "CFF " in font
        self.upem: int = font["head"].unitsPerEm
        self.name: str = _postscript_name(font, path)
        ids = font.getReverseGlyphMap()
        self.glyphs: dict[str, int] = {chr(cp): ids[name]
                                       for cp, name in font.getBestCmap().items()}
        metrics = font["hmtx"].metrics
        order = font.getGlyphOrder()
        self.advances: list[int] = [metrics[name][0] for name in order]
        head, hhea = font["head"], font["hhea"]
        os2 = font.get("OS/2")
        scale = 1000 / self.upem
        self.bbox = [round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)]
        self.ascent = round(hhea.ascent * scale)
        self.descent = round(hhea.descent * scale)
        cap = getattr(os2, "sCapHeight", 0) if os2 is not None else 0
        self.cap_height = round((cap or hhea.ascent * 0.7) * scale)
        self._unicode: dict[int, str] | None = None
        self.shaped_unicode: dict[int, str] = {}  # contextual forms: filled before subsetting

    def ink(self, chars: Iterable[str]) -> Ink:
        """How far the outlines of `chars` reach beyond a line of them set on a baseline, as
        fractions of the em (see `Ink`). Read from the font file's outlines: cache it."""
        font = TTFont(self.path, fontNumber=self.index, lazy=True)
        glyph_set, order = font.getGlyphSet(), font.getGlyphOrder()
        top = bottom = left = right = 0.0
        for char in chars:
            gid = self.glyphs.get(char)
            if gid is None:
                continue
            pen = BoundsPen(glyph_set)
            glyph_set[order[gid]].draw(pen)
            if pen.bounds is not None:
                x_min, y_min, x_max, y_max = pen.bounds
                top, bottom = max(top, y_max), min(bottom, y_min)
                left, right = min(left, x_min), max(right, x_max - self.advances[gid])
        font.close()
        scale = 1 / self.upem
        return Ink(top * scale, -bottom * scale, -left * scale, right * scale)

    def advance(self, gid: int) -> float:
        """The glyph's advance width as a fraction of the em."""
        return self.advances[gid] / self.upem

    def unicode_of(self, gid: int) -> str | None:
        """The character a glyph shows, for ToUnicode: of the code points mapped to it, the
        lowest that is neither a compatibility character nor a radical (用, not the Kangxi
        radical ⽤; 民, not ⺠)."""
        if self._unicode is None:
            reverse: dict[int, str] = {}  # a glyph for several characters: the canonical one
            for char, glyph in sorted(self.glyphs.items(), key=_canonical_first):
                reverse.setdefault(glyph, char)
            self._unicode = reverse
        return self._unicode.get(gid) or self.shaped_unicode.get(gid)

    def subset(self, gids: Iterable[int], tag_seed: str) -> FontProgram:
        """A font program holding `gids` (and .notdef), ready to embed."""
        wanted = sorted({0, *gids})
        options = ft_subset.Options()
        options.retain_gids = not self.cff  # CFF keeps CIDs; a compact subset is smaller
        options.notdef_outline = True
        options.hinting = False
        options.layout_features = []
        options.layout_closure = False
        options.name_IDs = []
        options.drop_tables += _DROPPED_TABLES
        options.font_number = self.index
        font = ft_subset.load_font(str(self.path), options, lazy=True)
        font.recalcTimestamp = False
        subsetter = ft_subset.Subsetter(options)
        kept = set(wanted)
        chars = [ord(char) for char, gid in self.glyphs.items() if gid in kept]
        subsetter.populate(gids=wanted, unicodes=chars)
        subsetter.subset(font)
        if self.cff:
            raw = font["CFF "].compile(font)
        else:
            buffer = io.BytesIO()
            font.save(buffer)
            raw = buffer.getvalue()
        font.close()
        digest = hashlib.sha256(f"{tag_seed}:{wanted}".encode()).digest()
        tag = "".join(chr(65 + byte % 26) for byte in digest[:6])
        return FontProgram(
            base_name=f"{tag}+{self.name}", cff=self.cff, data=zlib.compress(raw, 9),
            length1=len(raw), widths=Raw(_widths(self, wanted)),
            to_unicode=zlib.compress(_to_unicode(self, wanted), 9), gids=frozenset(wanted),
            bbox=tuple(self.bbox), ascent=self.ascent, descent=self.descent,
            cap_height=self.cap_height)


_RADICALS = ((0x2E80, 0x2FDF), (0x31C0, 0x31EF))
"""CJK Radicals Supplement, Kangxi Radicals, CJK Strokes: Noto Sans CJK draws 民 and its
radical ⺠ (U+2EA0, which has no decomposition) with one glyph."""


def _canonical_first(item: tuple[str, int]) -> tuple[bool, int]:
    """Ordinary characters first: not a compatibility character (the Kangxi radical ⽇ is
    NFKC 日), not a radical or stroke; then the lowest code point."""
    char = item[0]
    code = ord(char)
    radical = any(low <= code <= high for low, high in _RADICALS)
    return radical or unicodedata.normalize("NFKC", char) != char, code


def _postscript_name(font: TTFont, path: Path) -> str:
    try:
        name = font["name"].getDebugName(6)
    except KeyError:
        name = None
    return "".join(c for c in (name or path.stem) if c.isalnum() or c in "-_") or "Font"


def _widths(face: Face, gids: list[int]) -> bytes:
    """The /W array: runs of consecutive glyph ids with their widths in 1000ths of the em."""
    parts: list[str] = []
    run: list[str] = []
    start = previous = -2
    for gid in gids:
        width = str(round(face.advances[gid] * 1000 / face.upem))
        if gid != previous + 1:
            if run:
                parts.append(f"{start} [{' '.join(run)}]")
            start, run = gid, []
        run.append(width)
        previous = gid
    if run:
        parts.append(f"{start} [{' '.join(run)}]")
    return ("[" + " ".join(parts) + "]").encode("ascii")


def _to_unicode(face: Face, gids: list[int]) -> bytes:
    """A ToUnicode CMap from two-byte codes (glyph ids) to the characters they show."""
    pairs = [(gid, face.unicode_of(gid)) for gid in gids]
    mapped = [(gid, char) for gid, char in pairs if char is not None]
    lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
             "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
             "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
    for start in range(0, len(mapped), 100):
        block = mapped[start:start + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines += [f"<{gid:04X}> <{char.encode('utf-16-be').hex().upper()}>" for gid, char in block]
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


@dataclass(frozen=True, slots=True)
class FontProgram:
    """One subset, compressed once: what every document embedding it writes."""

    base_name: str
    cff: bool
    data: bytes  # Flate-compressed font program (TrueType file, or bare CFF)
    length1: int
    widths: Raw
    to_unicode: bytes  # Flate-compressed CMap
    gids: frozenset[int]
    bbox: tuple[int, ...]
    ascent: int
    descent: int
    cap_height: int


_CID_SYSTEM_INFO = Static({"Registry": b"Adobe", "Ordering": b"Identity", "Supplement": 0})


@cache
def _descriptor(program: FontProgram) -> bytes:
    """The font descriptor up to its font file's reference (names and numbers only)."""
    bbox = " ".join(str(value) for value in program.bbox)
    file_key = "FontFile3" if program.cff else "FontFile2"
    return (f"<< /Type /FontDescriptor /FontName /{program.base_name} /Flags 4 /FontBBox "
            f"[{bbox}] /ItalicAngle 0 /Ascent {program.ascent} /Descent {program.descent} "
            f"/CapHeight {program.cap_height} /StemV 80 /{file_key} ").encode("ascii")


def add_font_program(document: PdfDocument, program: FontProgram) -> Ref:
    """The five objects of one embedded subset; returns the Type0 font's reference.

    Everything but the references is formatted once per process (`_descriptor`, the /W
    array); the CIDSystemInfo strings stay values, so an encrypted file encrypts them.
    """
    if program.cff:
        file_stream = Stream({"Subtype": Name("CIDFontType0C"), "Filter": Name("FlateDecode")},
                             program.data)
    else:
        file_stream = Stream({"Length1": program.length1, "Filter": Name("FlateDecode")},
                             program.data)
    file_ref = document.add(file_stream)
    descriptor = document.add(Raw(_descriptor(program) + b"%d 0 R >>" % file_ref))
    cid_font: dict[str, Any] = {
        "Type": Name("Font"), "Subtype": Name("CIDFontType0" if program.cff else "CIDFontType2"),
        "BaseFont": Name(program.base_name), "CIDSystemInfo": _CID_SYSTEM_INFO,
        "FontDescriptor": descriptor, "DW": 1000, "W": program.widths}
    if not program.cff:
        cid_font["CIDToGIDMap"] = Name("Identity")
    descendant = document.add(cid_font)
    to_unicode = document.add(Stream({"Filter": Name("FlateDecode")}, program.to_unicode))
    return document.add(Raw(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H "
        b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>"
        % (program.base_name.encode("ascii"), descendant, to_unicode)))
