"""The statement's opening summary (totals in boxes) and its year-to-date accumulators."""

from __future__ import annotations

from itertools import groupby

from pipeline.model import Accumulator, Statement
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, WHITE, Out, Theme
from pipeline.render.cells import Cell, Row, cell_lines
from pipeline.render.eob.claims import scaled_heading_rows
from pipeline.render.eob.words import Words, dates, format_money
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid
from pipeline.render.text import ellipsize, fit_size, text_width

SUMMARY_SIZE = 10.0
"""Body text of the summary at scale 1: the issue's floor for the summary page."""


def summary_figures(statement: Statement, words: Words) -> list[tuple[str, int]]:
    """The summary's boxes, "you may owe" last; denied and pending amounts apart from the plan
    discounts (billed = discounts + denied + plan paid + other insurance + you may owe +
    still under review)."""
    boxes = [(words("summary.billed"), statement.total("billed")),
             (words("summary.discount"), statement.total("discount"))]
    denied = statement.total("denied")
    if denied:
        boxes.append((words("summary_detail.denied"), denied))
    boxes.append((words("summary.plan_paid"), statement.total("plan_paid")))
    if statement.total("other_payer_paid"):
        boxes.append((words("summary.other_paid"), statement.total("other_payer_paid")))
    undecided = statement.total("pending")
    if undecided:
        boxes.append((words("summary_detail.pending"), undecided))
    boxes.append((words("summary.you_may_owe"), statement.total_member_owes))
    return boxes


def summary_blocks(statement: Statement, words: Words, theme: Theme, scale: float = 1.0) -> list[Block]:
    """The opening summary: the statement's totals in boxes, "you may owe" last (on more rows
    when the boxes would not fit one at this scale)."""
    boxes = summary_figures(statement, words)
    size = SUMMARY_SIZE * scale
    gap = 4.0
    per_row = max(1, min(len(boxes), int((CONTENT_WIDTH + gap) // (72 * scale + gap))))
    width = (CONTENT_WIDTH - gap * (per_row - 1)) / per_row
    amounts = [format_money(cents) for _, cents in boxes]
    amount_size = min(fit_size(a, BOLD, width - 12, 16 * scale, size) for a in amounts)
    rows = []
    for first in range(0, len(boxes), per_row):
        labels, figures, fills, rules = [], [], [], []
        for index in range(first, min(first + per_row, len(boxes))):
            (label, _), amount = boxes[index], amounts[index]
            x = (index - first) * (width + gap)
            owes = index == len(boxes) - 1
            ink = WHITE if owes else theme.text
            labels.append(Cell(cell_lines(label, REGULAR, size, width - 6), x + 3, width - 6, REGULAR,
                               size, ink))
            figures.append(Cell((amount,), x + 3, width - 6, BOLD, amount_size, ink))
            fills.append((x, width, theme.primary if owes else theme.tint))
            rules.append(("bottom", x, width, 2.0, theme.accent if owes else theme.primary))
        depth = max(len(cell.lines) for cell in labels)  # figures line up under labels of any length
        labels = [Cell(c.lines + ("",) * (depth - len(c.lines)), c.x, c.width, c.font, c.size, c.color)
                  for c in labels]
        rows += [Row(tuple(labels), pad_top=6, pad_bottom=1, fills=tuple(fills), keep_with_next=True,
                     header=True),
                 Row(tuple(figures), pad_top=2, pad_bottom=7, fills=tuple(fills), rules=tuple(rules)),
                 Row((), pad_top=gap if first + per_row < len(boxes) else 0, pad_bottom=0)]
    grid = Grid(rows, space_after=5)
    claims = len({line.claim_id for line in statement.lines})
    count = (words("summary.claims_count_one") if claims == 1
             else words.file.text("summary.claims_count", {"count": claims}, memo=True))
    heading = Heading(words("summary.heading"), theme, size=12 * scale, space_before=0, space_after=5)
    return [
        heading,
        _Beside(heading, count, theme.muted, size),
        grid,
        TextBlock(words("summary.note"), REGULAR, size, theme.text, space_after=2),
        *([TextBlock(words(f"summary.own_{statement.own_statement}"), REGULAR, size, theme.text,
                     space_after=2)] if statement.own_statement else []),
    ]


class _Beside(Block):
    """A short note right-aligned on the line of the heading above it (takes no height)."""

    def __init__(self, heading: Heading, text: str, color: str, size: float = SUMMARY_SIZE) -> None:
        self.heading, self.text, self.color, self.size = heading, text, color, size
        self.space_before = -heading.space_after  # sits on the heading's own line

    def wrap(self, width: float) -> float:
        self.width = width
        return 0.0

    def draw(self, out: Out, x: float, top: float) -> None:
        size = self.size
        text = ellipsize(self.text, REGULAR, size, self.width * 0.45)
        heading = self.heading
        baseline = (top + heading.space_after + heading.RULE_GAP
                    + (heading.leading - heading.size) / 2 + heading.size * 0.22)
        out.show(x + self.width - text_width(text, REGULAR, size), baseline, text, REGULAR,
                 size, self.color)


def accumulator_blocks(statement: Statement, words: Words, theme: Theme, scale: float = 1.0) -> list[Block]:
    """Year-to-date accumulators against the plan's limits: each tier (you and the family, in
    and out of network) with its plan year, used of limit and what is left (never below zero);
    a figure above its limit is shown as it is, with a note. Nothing without accumulators (a
    patient's own statement has none)."""
    if not statement.accumulators:
        return []
    size = SUMMARY_SIZE * scale
    day = dates(words.file)
    as_of = max(acc.as_of for acc in statement.accumulators)
    label_w = CONTENT_WIDTH * (0.46 if scale == 1.0 else 0.4)
    money_w = (CONTENT_WIDTH - label_w) / 3
    edges = (0.0, label_w, label_w + money_w, label_w + 2 * money_w, CONTENT_WIDTH)

    def cell(text: str, column: int, font: str = REGULAR, color: str | None = None,
             align: str = "left", last: int | None = None) -> Cell:
        x, right = edges[column], edges[(column if last is None else last) + 1]
        return Cell(cell_lines(text, font, size, right - x), x, right - x, font, size,
                    color or theme.text, align)

    header = Row((cell("", 0), *(cell(words(f"accumulators_detail.{key}"), i + 1, BOLD, WHITE, "right")
                                 for i, key in enumerate(("col_used", "col_limit", "col_remaining")))),
                 pad_top=3, pad_bottom=3, fills=((0.0, CONTENT_WIDTH, theme.primary),))
    rows = [*scaled_heading_rows(words("accumulators.heading"), theme, scale), header]
    rule = (("bottom", 0.0, CONTENT_WIDTH, 0.4, theme.rule),)
    for year, group in groupby(statement.accumulators, key=lambda acc: acc.plan_year):
        if year is not None:
            rows.append(Row((cell(words.file.text("accumulators_detail.plan_year", {
                "start": day(year[0]), "end": day(year[1]), "date": day(as_of)}), 0, BOLD, theme.muted,
                last=3),), pad_top=3, pad_bottom=1, keep_with_next=True))
        for acc in sorted(group, key=_accumulator_order):
            label = words.file.text("accumulators_detail.label", {
                "name": words(f"accumulators.{acc.name}"),
                "tier": words(f"accumulators_detail.{acc.tier}"),
                "network": words(f"accumulators_detail.{acc.network}")}, memo=True)
            remaining = max(0, acc.limit - acc.used)
            ink = theme.alert if acc.overrun else theme.text
            left = words("accumulators.met") if remaining == 0 else format_money(remaining)
            rows.append(Row((cell(label, 0), cell(format_money(acc.used), 1, BOLD, ink, "right"),
                             cell(format_money(acc.limit), 2, align="right"), cell(left, 3, align="right")),
                            pad_top=2, pad_bottom=2, rules=() if acc.overrun else rule,
                            keep_with_next=acc.overrun))
            if acc.overrun:
                rows.append(Row((cell(words("accumulators_detail.overrun"), 0, BOLD, theme.alert, last=3),),
                                pad_top=0.5, pad_bottom=2.5, rules=rule))
    if all(acc.plan_year is None for acc in statement.accumulators):
        rows.insert(2, Row((cell(words.file.text("accumulators.as_of", {"date": day(as_of)}, memo=True),
                                 0, color=theme.muted, last=3),), pad_top=0, pad_bottom=3))
    return [Grid(rows, lead_rows=2, header_rows=1, space_before=10, space_after=4)]


def _accumulator_order(acc: Accumulator) -> tuple[bool, bool, bool]:
    """Deductible before out-of-pocket, in network before out, you before the family."""
    return acc.name != "deductible", acc.network != "in", acc.tier != "individual"
