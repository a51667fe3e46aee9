"""Grid cells and rows: pre-wrapped text placed in columns, drawn by `Out.text_rows`."""

from __future__ import annotations

from pipeline.render.text import ellipsize, wrap_text

CELL_PAD = 2.5
MAX_CELL_LINES = 12  # a pathological value is cut (with an ellipsis) rather than overflowing


class Cell:
    """Pre-wrapped text in a grid column (a plain slots class: built ~150 times a statement)."""

    __slots__ = ("lines", "x", "width", "font", "size", "color", "align", "leading", "starts")

    def __init__(self, lines: tuple[str, ...], x: float, width: float, font: str, size: float,
                 color: str, align: str = "left", starts: tuple[float, ...] | None = None) -> None:
        self.lines, self.x, self.width = lines, x, width
        self.font, self.size, self.color = font, size, color
        self.align = align  # "left" or "right"
        self.leading = size * 1.22
        self.starts = starts  # x where each line starts, when already known (amounts)


class Row:
    """One grid row: cells, background fills, rules; its height is fixed when built."""

    __slots__ = ("cells", "pad_top", "pad_bottom", "fills", "rules", "keep_with_next",
                 "context", "height", "header")

    def __init__(self, cells: tuple[Cell, ...], *, pad_top: float = 2.0,
                 pad_bottom: float = 2.0, fills: tuple[tuple[float, float, str], ...] = (),
                 rules: tuple[tuple[str, float, float, float, str], ...] = (),
                 keep_with_next: bool = False, context: tuple[Row, ...] = (),
                 header: bool = False) -> None:
        self.cells, self.pad_top, self.pad_bottom = cells, pad_top, pad_bottom
        self.fills = fills  # (x, width, colour)
        self.rules = rules  # (edge, x, width, thickness, colour)
        self.keep_with_next = keep_with_next  # never end a page after this row
        self.context = context  # rows repeated above this one when a page starts here
        self.header = header  # its cells head the columns below (tagged TH), wherever it is
        text = max((len(cell.lines) * cell.leading for cell in cells), default=0.0)
        self.height = text + pad_top + pad_bottom


def cell_lines(text: str, font: str, size: float, width: float, *,
               remember: bool = True) -> tuple[str, ...]:
    """Text wrapped to a cell's width inside its padding, at most MAX_CELL_LINES lines."""
    lines = wrap_text(text, font, size, width - 2 * CELL_PAD, remember=remember)
    if len(lines) > MAX_CELL_LINES:
        lines = (*lines[: MAX_CELL_LINES - 1],
                 ellipsize(" ".join(lines[MAX_CELL_LINES - 1:]), font, size,
                           width - 2 * CELL_PAD))
    return lines
