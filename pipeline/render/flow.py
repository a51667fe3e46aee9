"""The flow: blocks onto pages, frame by frame, ending in balanced columns.

A ColumnSection (the legal pages) ends the flow: it starts under the single-column text of
its page when there is room. It is always placed as cached Forms: one when it fits there
whole, else one per page it flows over, laid out once per room it starts in.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reportlab.lib.units import inch

from pipeline.render.blocks import EPSILON, Block
from pipeline.render.canvas import CONTENT_WIDTH, Form, Out
from pipeline.render.pdf.structure import Placed

COLUMN_GAP = 0.3 * inch  # between the two columns of the legal pages
OVERFLOW = float("-inf")
ROOM_STEP = 6.0
"""A section that flows over pages starts in a room rounded down to this step, so statements
whose text ends at nearly the same height share its cached pages (at most 6 pt unused)."""
FLOWS_KEPT = 32
"""Page flows a section keeps (one per room it started in), the least recently used dropped."""
FORM_LEVEL = 2
"""zlib level of the legal pages' forms. About 40 % of statements start their legal pages in a
room (or with a section) no statement before them in the process did, so a form is compressed
for them: 26 KB of legal text is 5.3 KB in 0.12 ms at level 2, 4.1 KB in 1.1 ms at level 9."""


class ColumnSection(Block):
    """Blocks set in columns to the end of the document (a statement's legal pages).

    Meant to be built once and reused by many documents: when the whole section fits on the
    page where it starts, it is one Form XObject, laid out, balanced and compressed once per
    width and only placed afterwards; otherwise its blocks flow column by column over the
    pages, balanced on the last one, and each page's part is a Form too, made once per room
    on the first page (`page_forms`). So no statement lays out or compresses its legal pages.
    """

    def __init__(self, blocks: Sequence[Block], *, count: int = 2, gap: float = COLUMN_GAP,
                 name: str = "Legal") -> None:
        self.blocks = tuple(blocks)
        self.count, self.gap, self.name = count, gap, name
        self._heights: dict[float, float] = {}
        self._forms: dict[float, Form] = {}
        self._flows: dict[tuple[float, float, float, float], tuple[Form, ...]] = {}

    def column_width(self, width: float) -> float:
        return (width - self.gap * (self.count - 1)) / self.count

    def wrap(self, width: float) -> float:
        return self.balanced_height(width)

    def balanced_height(self, width: float) -> float:
        """The least column height (in 6 pt steps) that holds the whole section."""
        found = self._heights.get(width)
        if found is None:
            column = self.column_width(width)
            total = sum(block.wrap(column) + max(block.space_before, block.space_after)
                        for block in self.blocks)
            found = max(total / self.count - 12.0, 0.0)
            while not _fits(deque(self.blocks), column, found, self.count):
                found += 6.0
            self._heights[width] = found
        return found

    def form(self, width: float) -> Form:
        found = self._forms.get(width)
        if found is None:
            height, column = self.balanced_height(width), self.column_width(width)
            out, queue = Out(), deque(self.blocks)
            for index in range(self.count):
                region = Region(index * (column + self.gap), height, 0.0, column)
                if _fill(queue, region, out)[0]:
                    break
            data = zlib.compress(out.finish(), FORM_LEVEL)
            found = Form(self.name, data, width, height, frozenset(out.fonts),
                         tuple(mark for mark in out.marks if not isinstance(mark, Placed)))
            self._forms[width] = found
        return found

    def page_forms(self, width: float, room: float, later_width: float,
                   later_room: float) -> tuple[Form, ...]:
        """The section flowed from a page part `room` high (its columns full) over whole
        pages `later_room` high, balanced on the last: one Form per page, named Legal1,
        Legal2, ... (their marks join the structure where placed), made once per sizes."""
        key = (width, room, later_width, later_room)
        found = self._flows.pop(key, None)
        if found is None:
            queue, forms = deque(self.blocks), list[Form]()
            while queue:
                out = Out()
                frame = Region(0.0, room, 0.0, width)
                for region in _column_regions(frame, room, self.count, self.gap, queue):
                    if _fill(queue, region, out)[0]:
                        break
                forms.append(Form(f"{self.name}{len(forms) + 1}", zlib.compress(out.finish(), FORM_LEVEL),
                                  width, room, frozenset(out.fonts),
                                  tuple(mark for mark in out.marks if not isinstance(mark, Placed))))
                width, room = later_width, later_room
            found = tuple(forms)
            if len(self._flows) >= FLOWS_KEPT:
                del self._flows[next(iter(self._flows))]  # the least recently used
        self._flows[key] = found  # (re)inserted last: most recently used
        return found

    def draw(self, out: Out, x: float, top: float) -> None:
        """Unused by layout(), which places the form or flows the blocks itself."""
        form = self.form(CONTENT_WIDTH)
        out.form(form, x, top - form.height)


@dataclass(slots=True)
class Region:
    """A page frame or a column the flow fills (PDF points, y growing upwards)."""

    x: float
    top: float
    bottom: float
    width: float


def _fill(queue: deque[Block], region: Region, out: Out | None) -> tuple[bool, float]:
    """Place blocks from the queue into one region (a page frame or a column).

    Returns (done, y): done when the queue is empty or reaches a ColumnSection; y is where the
    placed blocks end. With out=None it only measures (column balancing): placing a block
    never changes it, splitting makes new parts.
    """
    y, at_top, pending = region.top, True, 0.0
    width, bottom = region.width, region.bottom
    while queue:
        block = queue[0]
        if isinstance(block, ColumnSection):
            return True, y
        height = block.wrap(width)
        gap = 0.0 if at_top else max(pending, block.space_before)
        need = gap + height
        if block.keep_with_next and len(queue) > 1 and not isinstance(queue[1], ColumnSection):
            following = queue[1]
            need += max(block.space_after, following.space_before) + following.min_height(width)
        if y - need >= bottom - EPSILON or (at_top and y - gap - height >= bottom - EPSILON):
            queue.popleft()
            if out is not None:
                _draw(block, out, region.x, y - gap)
            y -= gap + height
            pending, at_top = block.space_after, False
            continue
        if block.optional:
            queue.popleft()
            continue
        parts = None if block.keep_with_next else block.split(width, y - gap - bottom)
        if parts is not None:
            queue.popleft()
            queue.appendleft(parts[1])
            if out is not None:
                _draw(parts[0], out, region.x, y - gap)
            return False, bottom
        if at_top:  # taller than an empty region and cannot split: place it, never loop
            if out is None:
                return False, OVERFLOW  # measuring: this height is too small
            queue.popleft()
            _draw(block, out, region.x, y - gap)
            return False, bottom
        return False, y
    return True, y


def _draw(block: Block, out: Out, x: float, top: float) -> None:
    """A block drawn as its structure element (the flow's order is the reading order)."""
    path = block.structure()
    if path is None:
        block.draw(out, x, top)
        return
    out.begin(path)
    block.draw(out, x, top)
    out.end()


def _column_regions(frame: Region, top: float, count: int, gap: float,
                    queue: deque[Block]) -> list[Region]:
    """`count` columns from `top` down, shortened to balance the text when it all fits."""
    column_width = (frame.width - gap * (count - 1)) / count
    available = top - frame.bottom
    total = sum(block.wrap(column_width) + max(block.space_before, block.space_after)
                for block in queue)
    height = available
    if total <= count * available:
        trial = max(total / count - 12.0, 0.0)
        while trial < available:
            if _fits(queue, column_width, trial, count):
                height = trial
                break
            trial += 6.0
    return [Region(frame.x + index * (column_width + gap), top, top - height, column_width)
            for index in range(count)]


def _fits(queue: deque[Block], width: float, height: float, count: int) -> bool:
    trial = deque(queue)
    for _ in range(count):
        done, y = _fill(trial, Region(0.0, height, 0.0, width), None)
        if done or y == OVERFLOW:
            break
    return not trial


def layout(blocks: Sequence[Block], first: Region, later: Region,
           start_page: Callable[[Out, int], None]) -> list[Out]:
    """Blocks onto pages: page 1's frame, then later pages; a ColumnSection ends the flow.

    The columns start under the single-column text of the same page when there is room (a
    few lines), else on a new page; either way they are the section's cached forms.
    start_page draws a new page's header first, so the content stream reads in order.
    """
    queue: deque[Block] = deque(blocks)
    pages = [Out()]
    start_page(pages[0], 1)
    frame = first
    while True:
        out = pages[-1]
        done, y = _fill(queue, frame, out)
        if done and queue:
            section = queue.popleft()
            assert isinstance(section, ColumnSection) and not queue, "columns end the flow"
            top = y - 6.0 if y < frame.top - EPSILON else frame.top
            room = top - frame.bottom
            if section.balanced_height(frame.width) <= room + EPSILON:
                form = section.form(frame.width)
                out.form(form, frame.x, top - form.height)
                return pages
            if room < 60.0 and top != frame.top:  # not even a few lines' room: a new page
                pages.append(Out())
                start_page(pages[-1], len(pages))
                frame = later
                top, room = later.top, later.top - later.bottom
            room -= room % ROOM_STEP
            forms = section.page_forms(frame.width, room, later.width, later.top - later.bottom)
            out = pages[-1]
            out.form(forms[0], frame.x, top - forms[0].height)
            for form in forms[1:]:
                pages.append(Out())
                start_page(pages[-1], len(pages))
                pages[-1].form(form, later.x, later.top - form.height)
            return pages
        if not queue:
            return pages
        pages.append(Out())
        start_page(pages[-1], len(pages))
        frame = later
