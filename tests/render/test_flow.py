"""The flow engine: blocks onto pages, and columns that continue over pages."""

from __future__ import annotations

from reportlab.lib.units import inch

from pipeline.render.blocks import TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN
from pipeline.render.flow import ColumnSection, Region, layout

BOTTOM = 0.7 * inch  # where a statement's flow ends, above its footer


def test_legal_columns_flow_over_pages_when_they_do_not_fit() -> None:
    words = [f"word{index:04d}" for index in range(3000)]
    paragraphs = [" ".join(words[i:i + 60]) for i in range(0, len(words), 60)]
    blocks = [TextBlock(text, "Helvetica", 7, "0 0 0", space_after=3, remember=False)
              for text in paragraphs]
    first = Region(MARGIN, 500.0, BOTTOM, CONTENT_WIDTH)
    later = Region(MARGIN, 700.0, BOTTOM, CONTENT_WIDTH)
    pages = layout([TextBlock("intro", "Helvetica", 9, "0 0 0"), ColumnSection(blocks)],
                   first, later, lambda out, number: None)
    assert len(pages) >= 3
    drawn = "\n".join(op for out in pages for op in out.ops)
    for word in words:  # every word exactly once, in order
        assert drawn.count(f"{word} ") + drawn.count(f"{word})") == 1
    positions = [drawn.index(word) for word in words[::97]]
    assert positions == sorted(positions)
