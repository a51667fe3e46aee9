"""Tables as blocks: pre-wrapped rows that split between rows and repeat their headers."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from reportlab.lib.units import inch

from pipeline.render.blocks import EPSILON, Block
from pipeline.render.canvas import CONTENT_WIDTH, Out, Theme
from pipeline.render.cells import CELL_PAD, Cell, Row
from pipeline.render.fonts import BOLD
from pipeline.render.pdf.structure import Cells, Tag, TagPath
from pipeline.render.text import wrap_text


def heading_rows(text: str, theme: Theme, width: float = CONTENT_WIDTH) -> list[Row]:
    """A section heading as grid rows, so a long table starts under it on the same page."""
    size = 10.5
    heading = Cell(wrap_text(text, BOLD, size, width), -CELL_PAD, width, BOLD, size,
                   theme.primary)
    rule = (("bottom", 0.0, min(width, 1.1 * inch), 1.2, theme.accent),)
    return [Row((heading,), pad_top=0, pad_bottom=3.5, rules=rule),
            Row((), pad_top=5, pad_bottom=0)]


_TEXT, _EMPTY = (True, 0, 1), (False, 0, 1)  # shared: most cells are one of these


def _geometry(row: Row, edges: Sequence[float]) -> tuple[tuple[bool, int, int], ...]:
    """(has text, empty cells before, column span) of each cell, against the header's
    left edges (none: one column each)."""
    if not edges or len(row.cells) == len(edges):  # one cell a column: the common case
        return tuple(_TEXT if any(cell.lines) else _EMPTY for cell in row.cells)
    found, column = [], 0
    for cell in row.cells:
        first = max(0, bisect_right(edges, cell.x + 0.5) - 1)
        last = max(first, bisect_right(edges, cell.x + cell.width - 0.5) - 1)
        found.append((any(cell.lines), max(0, first - column), last - first + 1))
        column = last + 1
    return tuple(found)


class Grid(Block):
    """A table of pre-wrapped rows: splits between rows, repeats its header rows on each page.

    Rows flagged keep_with_next never end a page; a row's `context` (e.g. its claim's banner)
    is repeated above it when a page starts with it.

    Tagged as a Table (one element for every part): lead rows are headings (`lead_role`,
    outside the table), the first `column_heads` rows after them (default: the header rows)
    and rows flagged `header` hold TH cells, the others TR > TD; header and context rows
    repeated on a later page are artifacts.
    """

    def __init__(self, rows: Sequence[Row], *, header_rows: int = 0, lead_rows: int = 0,
                 space_before: float = 0.0, space_after: float = 0.0,
                 column_heads: int | None = None, lead_role: str = "H2",
                 table: Tag | None = None, repeated: int = 0) -> None:
        self.rows = tuple(rows)
        self.lead_rows = lead_rows  # e.g. the section heading: first part only
        self.header_rows = header_rows  # column headings: repeated on every part
        self.space_before, self.space_after = space_before, space_after
        self._heights = [row.height for row in self.rows]
        self.column_heads = header_rows if column_heads is None else column_heads
        self.lead_role = lead_role
        self.table = table or Tag("Table")
        self.repeated = repeated  # rows at the top repeated from an earlier page

    def structure(self) -> TagPath | None:
        return None  # the cells are tagged as they are drawn

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
        heads, role, table = self.column_heads, self.lead_role, self.table
        return (Grid(self.rows[:cut], header_rows=self.header_rows, lead_rows=self.lead_rows,
                     space_before=self.space_before, column_heads=heads, lead_role=role,
                     table=table, repeated=self.repeated),
                Grid(head + self.rows[cut:], header_rows=self.header_rows,
                     space_after=self.space_after, column_heads=heads, lead_role=role,
                     table=table, repeated=len(head)))

    def tags(self) -> list[Cells | None]:
        """Each row's structure for `Out.text_rows`: lead rows are headings, then column
        headings (TH), body rows (TD); rows repeated from an earlier page are artifacts.

        A cell is placed under the header cell its left edge falls in, and spans those its
        right edge reaches (claim banners, totals), so it keeps its column's header.
        """
        table = (self.table, "Table")
        lead, repeated = self.lead_rows, self.repeated
        heads = lead + (0 if repeated else self.column_heads)
        header = lead if self.header_rows or self.column_heads else -1
        edges = [cell.x for cell in self.rows[header].cells] if 0 <= header < len(
            self.rows) else []
        tags: list[Cells | None] = []
        for index, row in enumerate(self.rows):
            if index < lead:
                tags.append(Cells((), self.lead_role, _geometry(row, [])))
            elif index < repeated or not row.cells:  # repeated, or a spacer
                tags.append(None)
            else:
                tags.append(Cells((table, (row, "TR")),
                                  "TH" if index < heads or row.header else "TD",
                                  _geometry(row, edges)))
        return tags

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
        out.text_rows(x, self.rows, tops, self.tags())
