"""The flow engine: blocks onto pages, and columns that continue over pages."""

from __future__ import annotations

import zlib

from reportlab.lib.units import inch

from pipeline.render.blocks import TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN
from pipeline.render.flow import ColumnSection, Region, layout
from pipeline.render.fonts import REGULAR
from pipeline.render.text import pdf_string

BOTTOM = 0.7 * inch  # where a statement's flow ends, above its footer


def _glyphs(text: str) -> str:
    """The text's glyph codes as they appear in a content stream (hex, Identity-H)."""
    return pdf_string(text, REGULAR)[1:-1]


def test_legal_columns_flow_over_pages_when_they_do_not_fit() -> None:
    words = [f"word{index:04d}" for index in range(3000)]
    paragraphs = [" ".join(words[i:i + 60]) for i in range(0, len(words), 60)]
    blocks = [TextBlock(text, REGULAR, 7, "0 0 0", space_after=3, remember=False)
              for text in paragraphs]
    first = Region(MARGIN, 500.0, BOTTOM, CONTENT_WIDTH)
    later = Region(MARGIN, 700.0, BOTTOM, CONTENT_WIDTH)
    section = ColumnSection(blocks)
    pages = layout([TextBlock("intro", REGULAR, 9, "0 0 0"), section],
                   first, later, lambda out, number: None)
    assert len(pages) >= 3
    # each page's part of the columns is a cached form, placed in page order
    forms = [form for out in pages for form in out.forms.values()]
    assert [form.name for form in forms] == [f"Legal{n}" for n in range(1, len(pages) + 1)]
    drawn = "\n".join(zlib.decompress(form.data).decode("latin-1") for form in forms)
    space = _glyphs(" ")
    for word in words:  # every word exactly once, in order
        assert drawn.count(_glyphs(word) + space) + drawn.count(_glyphs(word) + ">") == 1
    positions = [drawn.index(_glyphs(word)) for word in words[::97]]
    assert positions == sorted(positions)


def test_columns_over_pages_are_laid_out_once_per_room_they_start_in() -> None:
    """A second document whose text ends a few points lower (within the room step) places
    the same cached forms; one starting a line lower gets its own."""
    blocks = [TextBlock(" ".join(f"w{index}" for index in range(i, i + 80)), REGULAR, 8,
                        "0 0 0", space_after=3) for i in range(0, 4000, 80)]
    section = ColumnSection(blocks)
    later = Region(MARGIN, 700.0, BOTTOM, CONTENT_WIDTH)

    def forms(top: float) -> list[object]:
        pages = layout([section], Region(MARGIN, top, BOTTOM, CONTENT_WIDTH), later,
                       lambda out, number: None)
        return [form for out in pages for form in out.forms.values()]

    first = forms(500.0)
    assert len(first) >= 2
    assert all(a is b for a, b in zip(forms(498.0), first, strict=True))
    assert forms(480.0)[0] is not first[0]
