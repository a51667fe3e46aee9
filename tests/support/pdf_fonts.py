"""Reading text back from our embedded Type0 fonts in tests: codes through the font's
ToUnicode CMap, widths from its /W array (what a viewer and an extractor see)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pikepdf

_BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>")

Decoder = Callable[[bytes, float], tuple[str, float]]
_DECODERS: dict[tuple[str, bytes], Decoder] = {}  # by subset: same in every file


def font_decoder(font: pikepdf.Dictionary) -> Decoder:
    """bytes of a Tj string, size -> (text, advance width in points)."""
    if str(font.Subtype) != "/Type0":
        raise AssertionError(f"font {font.get('/BaseFont')} is not an embedded Type0 font")
    key = (str(font.BaseFont), font.ToUnicode.read_raw_bytes())
    found = _DECODERS.get(key)
    if found is not None:
        return found
    unicode: dict[int, str] = {}
    for code, text in _BFCHAR.findall(font.ToUnicode.read_bytes()):
        if len(code) == 4:
            unicode[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    descendant = font.DescendantFonts[0]
    widths: dict[int, float] = {}
    array = list(descendant.get("/W", []))
    index = 0
    while index < len(array):
        first = int(array[index])
        if isinstance(array[index + 1], pikepdf.Array):
            for offset, width in enumerate(array[index + 1]):
                widths[first + offset] = float(width)
            index += 2
        else:
            for code in range(first, int(array[index + 1]) + 1):
                widths[code] = float(array[index + 2])
            index += 3
    default = float(descendant.get("/DW", 1000))

    def decode(raw: bytes, size: float) -> tuple[str, float]:
        codes = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw) - 1, 2)]
        text = "".join(unicode.get(code, "\ufffd") for code in codes)
        return text, sum(widths.get(code, default) for code in codes) * size / 1000

    _DECODERS[key] = decode
    return decode


def base_font(font: pikepdf.Dictionary) -> str:
    """The font's name without its subset tag: NotoSans-Regular."""
    return str(font.BaseFont).lstrip("/").partition("+")[2] or str(font.BaseFont).lstrip("/")
