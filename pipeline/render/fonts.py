"""The fonts statements use: names, PDF resource ids, metrics registration, font objects.

The standard fonts (Helvetica) are WinAnsi-encoded and need no embedding; the CJK fonts of
the language-assistance taglines are CID fonts referenced by name with a UCS-2 CMap, so no
font file travels with a statement.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase._cidfontdata import CIDFontInfo
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

from pipeline.render.pdf.writer import Name, Raw, Static

REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
CID_FONTS = {  # script names -> reportlab's CID fonts (referenced, not embedded)
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


@cache
def cid_font(name: str) -> str:
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
def font_object(font: str) -> Static:
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
