"""The statement's opening summary (totals in boxes) and its year-to-date accumulators."""

from __future__ import annotations

from pipeline.model import Statement
from pipeline.render.blocks import Block, Heading, ProgressBars, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, WHITE, Out, Theme
from pipeline.render.cells import Cell, Row, cell_lines
from pipeline.render.eob.words import Words, date_formatter, format_money
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid
from pipeline.render.text import ellipsize, fit_size, text_width


def summary_blocks(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    """The opening summary: the statement's totals in boxes, "you may owe" last."""
    boxes = [
        (words("summary.billed"), statement.total("billed")),
        (words("summary.discount"), statement.total("discount")),
        (words("summary.plan_paid"), statement.total("plan_paid")),
    ]
    if statement.total("other_payer_paid"):
        boxes.append((words("summary.other_paid"), statement.total("other_payer_paid")))
    boxes.append((words("summary.you_may_owe"), statement.total_member_owes))
    gap = 4.0
    width = (CONTENT_WIDTH - gap * (len(boxes) - 1)) / len(boxes)
    amounts = [format_money(cents) for _, cents in boxes]
    amount_size = min(fit_size(a, BOLD, width - 12, 16, 8) for a in amounts)
    labels, figures, fills, rules = [], [], [], []
    for index, ((label, _), amount) in enumerate(zip(boxes, amounts, strict=True)):
        x = index * (width + gap)
        owes = index == len(boxes) - 1
        ink = WHITE if owes else theme.text
        labels.append(Cell(cell_lines(label, REGULAR, 8, width - 6), x + 3, width - 6, REGULAR,
                           8, ink))
        figures.append(Cell((amount,), x + 3, width - 6, BOLD, amount_size, ink))
        fills.append((x, width, theme.primary if owes else theme.tint))
        rules.append(("bottom", x, width, 2.0, theme.accent if owes else theme.primary))
    grid = Grid([Row(tuple(labels), pad_top=6, pad_bottom=1, fills=tuple(fills)),
                 Row(tuple(figures), pad_top=2, pad_bottom=7, fills=tuple(fills),
                     rules=tuple(rules))], space_after=5)
    claims = len({line.claim_id for line in statement.lines})
    count = (words("summary.claims_count_one") if claims == 1
             else words.file.text("summary.claims_count", {"count": claims}, memo=True))
    heading = Heading(words("summary.heading"), theme, size=12, space_before=0, space_after=5)
    return [
        heading,
        _Beside(heading, count, theme.muted),
        grid,
        TextBlock(words("summary.note"), REGULAR, 7.5, theme.text, space_after=2),
        *([TextBlock(words(f"summary.own_{statement.own_statement}"), REGULAR, 7.5, theme.text,
                     space_after=2)] if statement.own_statement else []),
    ]


class _Beside(Block):
    """A short note right-aligned on the line of the heading above it (takes no height)."""

    def __init__(self, heading: Heading, text: str, color: str) -> None:
        self.heading, self.text, self.color = heading, text, color
        self.space_before = -heading.space_after  # sits on the heading's own line

    def wrap(self, width: float) -> float:
        self.width = width
        return 0.0

    def draw(self, out: Out, x: float, top: float) -> None:
        size = 8.0
        text = ellipsize(self.text, REGULAR, size, self.width * 0.45)
        heading = self.heading
        baseline = (top + heading.space_after + heading.RULE_GAP
                    + (heading.leading - heading.size) / 2 + heading.size * 0.22)
        out.show(x + self.width - text_width(text, REGULAR, size), baseline, text, REGULAR,
                 size, self.color)


def accumulator_blocks(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    """Year-to-date progress toward the plan's limits as bars; nothing without accumulators."""
    if not statement.accumulators:
        return []
    date_format = date_formatter(words.file.string("meta.date_format"))
    as_of = max(acc.as_of for acc in statement.accumulators)
    rows = []
    for acc in statement.accumulators:
        fraction = min(1.0, max(0.0, acc.used / acc.limit)) if acc.limit > 0 else 0.0
        remaining = max(0, acc.limit - acc.used)
        amounts = words.file.text("accumulators.progress", {
            "used": format_money(acc.used), "limit": format_money(acc.limit)})
        left = (words("accumulators.met") if remaining == 0 and acc.limit > 0
                else words.file.text("accumulators.remaining",
                                     {"remaining": format_money(remaining)}))
        if acc.as_of != as_of:
            as_of_text = words.file.text("accumulators.as_of", {"date": date_format(acc.as_of)},
                                         memo=True)
            left += f" ({as_of_text})"
        rows.append((words(f"accumulators.{acc.name}"), fraction, amounts, left))
    return [
        Heading(words("accumulators.heading"), theme),
        TextBlock(words.file.text("accumulators.as_of", {"date": date_format(as_of)},
                                  memo=True), REGULAR, 7.5, theme.muted, space_after=4),
        ProgressBars(rows, theme),
    ]
