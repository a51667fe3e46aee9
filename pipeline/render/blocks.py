"""Blocks the flow places top to bottom: plain text, headings, progress bars.

A block wraps to a width, may split between pages, and draws itself at a top-left corner.
Text from templates caches its wrapping and its operators once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from reportlab.lib.units import inch

from pipeline.render.canvas import Out, Theme
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.pdf.structure import Tag, TagPath
from pipeline.render.text import ellipsize, wrap_text

EPSILON = 1e-6


class Block:
    """Something the flow places top to bottom: it wraps to a width, may split, draws.

    draw(out, x, top) draws with the block's top-left corner at (x, top) in PDF space.
    The flow draws it as one structure element of `role` (a tagged PDF's "P", "H2", ...);
    see `structure`.
    """

    space_before: float = 0.0
    space_after: float = 0.0
    keep_with_next: bool = False
    optional: bool = False  # a helpful extra: dropped rather than moved to the next page
    role: str = "P"

    def structure(self) -> TagPath | None:
        """The element the flow draws this block in; None when the block tags its own
        content (a grid's cells). Parts of a split block return their whole's path."""
        return ((self, self.role),)

    def wrap(self, width: float) -> float:
        raise NotImplementedError

    def min_height(self, width: float) -> float:
        """The least height of a first part (what keep_with_next must leave room for)."""
        return self.wrap(width)

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        return None

    def draw(self, out: Out, x: float, top: float) -> None:
        raise NotImplementedError


@lru_cache(maxsize=4096)
def _text_ops(lines: tuple[str, ...], font: str, size: float, color: str, leading: float,
              indent: float) -> tuple[str, frozenset[str]]:
    """Operators for template text at the origin (top-left), built once per process."""
    out = Out()
    _lines_ops(out, lines, font, size, color, leading, indent, 0.0)
    out.end_text()
    return "\n".join(out.ops), frozenset(out.fonts)


def _lines_ops(out: Out, lines: Sequence[str], font: str, size: float, color: str,
               leading: float, x: float, top: float) -> None:
    baseline = top - leading + (leading - size) / 2 + size * 0.22
    for line in lines:
        if line:
            out.show(x, baseline, line, font, size, color)
        baseline -= leading


class LineBlock(Block):
    """Text set as whole lines of one leading: it wraps to `lines(width)`, keeps at least two
    lines together and splits between pages or columns by lines, with no orphan or widow."""

    __slots__ = ()
    leading: float

    def lines(self, width: float) -> tuple[str, ...]:
        raise NotImplementedError

    def _part(self, lines: tuple[str, ...], before: float, after: float) -> LineBlock:
        """A part split off with its lines given: `before` and `after` are its spacing."""
        raise NotImplementedError

    def wrap(self, width: float) -> float:
        return len(self.lines(width)) * self.leading

    def min_height(self, width: float) -> float:
        return min(2, len(self.lines(width))) * self.leading

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        lines = self.lines(width)
        fits = int((height + EPSILON) // self.leading)
        if fits < 2 or len(lines) - fits < 2:  # no orphan or widow lines
            return None
        return (self._part(lines[:fits], self.space_before, 0.0),
                self._part(lines[fits:], 0.0, self.space_after))


class TextBlock(LineBlock):
    """Plain text in one font, wrapped to the width and split across pages by lines.

    Template text is plain (no markup), so nothing needs escaping: "&", "<" and "(" print as
    written. remember=True (template wording) caches its wrapping and its operators.
    """

    __slots__ = ("text", "font", "size", "color", "leading", "space_before", "space_after",
                 "indent", "remember", "keep_with_next", "optional", "_lines", "_width", "_path")

    def __init__(self, text: str, font: str, size: float, color: str, *,
                 leading: float | None = None, space_before: float = 0.0,
                 space_after: float = 0.0, indent: float = 0.0, remember: bool = True,
                 keep_with_next: bool = False, optional: bool = False,
                 lines: tuple[str, ...] | None = None, role: str | None = None,
                 tag: TagPath | None = None) -> None:
        self.text = text
        # one element for the block and every part split from it (pages, columns)
        self._path = tag or ((Tag(role or self.role), role or self.role),)
        self.optional = optional
        self.font, self.size, self.color = font, size, color
        self.leading = leading or round(size * 1.25, 2)
        self.space_before, self.space_after = space_before, space_after
        self.indent = indent
        self.remember = remember
        self.keep_with_next = keep_with_next
        self._lines = lines
        self._width: float | None = None if lines is None else -1.0

    def lines(self, width: float) -> tuple[str, ...]:
        if self._width != width and self._width != -1.0:
            self._lines = wrap_text(self.text, self.font, self.size, width - self.indent,
                                    remember=self.remember)
            self._width = width
        return self._lines or ()

    def structure(self) -> TagPath | None:
        return self._path

    def _part(self, lines: tuple[str, ...], before: float, after: float) -> TextBlock:
        return TextBlock("", self.font, self.size, self.color, leading=self.leading,
                         space_before=before, space_after=after, indent=self.indent,
                         remember=self.remember, lines=lines, tag=self._path)

    def draw(self, out: Out, x: float, top: float) -> None:
        lines = self._lines or ()
        if self.remember:
            ops, fonts = _text_ops(lines, self.font, self.size, self.color, self.leading,
                                   self.indent)
            out.place(x, top, ops, fonts)
        else:
            _lines_ops(out, lines, self.font, self.size, self.color, self.leading,
                       x + self.indent, top)


class Heading(TextBlock):
    """A section heading over a short brand-coloured rule; kept with what follows it."""

    __slots__ = ("rule_color",)
    RULE_GAP = 3.0
    role = "H2"

    def __init__(self, text: str, theme: Theme, *, size: float = 10.5,
                 space_before: float = 10.0, space_after: float = 5.0,
                 role: str = "H2") -> None:
        super().__init__(text, BOLD, size, theme.primary, space_before=space_before,
                         space_after=space_after, keep_with_next=True, role=role)
        self.rule_color = theme.accent

    def wrap(self, width: float) -> float:
        return super().wrap(width) + self.RULE_GAP

    def min_height(self, width: float) -> float:
        return self.wrap(width)

    def split(self, width: float, height: float) -> tuple[Block, Block] | None:
        return None

    def draw(self, out: Out, x: float, top: float) -> None:
        super().draw(out, x, top)
        bottom = top - self.wrap(self._width or 0.0)
        out.rule(self.rule_color, x, bottom + 0.5, x + 1.1 * inch, 1.2)


class ProgressBars(Block):
    """Year-to-date accumulators as labelled bars: how far the member is toward each limit."""

    ROW = 17.0

    def __init__(self, rows: Sequence[tuple[str, float, str, str]], theme: Theme) -> None:
        self.rows = rows  # (label, fraction 0..1, amounts text, remaining text)
        self.theme = theme
        self.space_after = 4.0

    def wrap(self, width: float) -> float:
        self.width = width
        return len(self.rows) * self.ROW

    def draw(self, out: Out, x: float, top: float) -> None:
        theme = self.theme
        label_width, bar_width = 1.75 * inch, 2.6 * inch
        text_x = x + label_width + bar_width + 10
        for index, (label, fraction, amounts, remaining) in enumerate(self.rows):
            y = top - (index + 1) * self.ROW + 4
            out.round_rect(theme.tint, x + label_width, y - 1, bar_width, 9, 3)
            if fraction > 0:
                out.round_rect(theme.accent, x + label_width, y - 1,
                               max(6.0, bar_width * fraction), 9, 3)
            out.show(x, y + 1, ellipsize(label, BOLD, 8, label_width - 6), BOLD, 8,
                     theme.text)
            line = ellipsize(f"{amounts}  \u00b7  {remaining}", REGULAR, 8,
                             x + self.width - text_x)
            out.show(text_x, y + 1, line, REGULAR, 8, theme.text)
