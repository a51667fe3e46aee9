"""Tables as blocks: pre-wrapped rows that split between rows and repeat their headers."""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.lib.units import inch

from pipeline.render.blocks import EPSILON, Block
from pipeline.render.canvas import CONTENT_WIDTH, Out, Theme
from pipeline.render.cells import CELL_PAD, Cell, Row
from pipeline.render.fonts import BOLD
from pipeline.render.text import wrap_text


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
