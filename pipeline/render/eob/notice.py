"""A prompt notice of an adverse benefit determination: one denied or reduced claim, as a PDF.

Why a separate document: a denied or reduced claim must be noticed within the claim-decision
deadline (30 days after the plan receives a post-service claim, 29 CFR 2560.503-1), and the
monthly statement can arrive after it; compose flags those claims (`prompt_notice_claims`).
This module builds the notice only; choosing when and how it is sent is not its concern.

It is cut out of the member's Statement and drawn with the statement's own pieces, so the
two documents never disagree: the page furniture (letterhead and recipient window, or the
print variant's return window and fold marks), the claims table (claims_table.py), and the legal
section of `legal.py` (appeal rights, external review, the ERISA sentence by line of
business, consumer assistance, language assistance), cached like the statement's.

- Determinism: no clock, no randomness, so the same statement and claim always give the same
  bytes. The PDF has no creation date: the notice's date is the day it is sent, which the
  render does not know (the statement date may still be weeks ahead).
- PHI: nothing here logs; exceptions name the claim id, the statement_id and template keys,
  never member data; the PDF metadata carries the title, insurer and statement_id only.
- Wording comes from the `[notice]` table of templates/statement/<lang>.toml and the keys it
  shares with the statement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.units import inch

from pipeline.model import ClaimLine, ReasonExplanation, Statement
from pipeline.reason_codes import is_adverse, line_codes
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import (
    CONTENT_WIDTH,
    MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    WHITE,
    Out,
    Theme,
)
from pipeline.render.cells import CELL_PAD, Cell, Row, cell_lines
from pipeline.render.eob.brand import brand_theme
from pipeline.render.eob.claims import remark_explanations, scaled_heading_rows, who_pays
from pipeline.render.eob.claims_table import claim_blocks
from pipeline.render.eob.furniture import (
    BOTTOM,
    RIGHT_COLUMN_X,
    PageFurniture,
    draw_facts,
    member_facts,
)
from pipeline.render.eob.legal import STANDARD, legal_pages, type_sizes
from pipeline.render.eob.statement import LARGE_PRINT_SCALE, VARIANTS, RenderError, pdf_document
from pipeline.render.eob.words import Words, statement_context
from pipeline.render.flow import Region, layout
from pipeline.render.fonts import BOLD, REGULAR
from pipeline.render.grid import Grid
from pipeline.render.pdf.rendered import RenderedPdf
from pipeline.render.text import ellipsize, text_width, wrap_text
from pipeline.templates import (
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    brand,
    resolve_language,
    statement_text,
)

TITLE_SIZES = (16.0, 15.0, 14.0, 13.0, 12.0, 11.0)
"""The title may take two lines in the facts column; the largest size that allows it wins."""


@dataclass(frozen=True, slots=True)
class ClaimNotice:
    """The claim a notice is about, and the member's statement narrowed to it.

    `statement` keeps the member, plan and ids but holds only this claim's lines and the
    reasons for their codes, so the statement's pieces (legal section, wording context)
    describe this claim and nothing else on the member's statement.
    """

    claim_id: str
    statement: Statement

    @property
    def lines(self) -> list[ClaimLine]:
        return self.statement.lines


def _failure(claim_id: str, statement: Statement, problem: str) -> RenderError:
    """A RenderError naming the claim and statement ids only (never member data)."""
    return RenderError(f"notice for claim {claim_id!r} of statement {statement.statement_id}: "
                       f"{problem}")


def claim_notice(statement: Statement, claim_id: str) -> ClaimNotice:
    """The claim's part of the statement; refused unless the claim is an adverse benefit
    determination (`pipeline.reason_codes.is_adverse`: denied, partly paid, or paid with a
    reduction code) whose every adverse line's codes are explained (the notice must give the
    specific reason and the plan provision)."""
    lines = [line for line in statement.lines if line.claim_id == claim_id]
    if not lines:
        raise _failure(claim_id, statement, "no such claim on the statement")
    adverse = [line for line in lines if is_adverse(line)]
    if not adverse:
        raise _failure(claim_id, statement,
                       "no line of the claim is denied or reduced: no adverse benefit "
                       "determination to notice")
    explained = {reason.code for reason in statement.reasons}
    unexplained = sorted({code for line in adverse for code in line_codes(line) or [""]}
                         - explained)
    if unexplained:
        named = ", ".join(code or "(none)" for code in unexplained)
        raise _failure(claim_id, statement,
                       f"denied or reduced lines without an explained reason code ({named})")
    codes = {code for line in lines for code in line_codes(line)}
    narrowed = dataclasses.replace(
        statement, lines=lines,
        reasons=[reason for reason in statement.reasons if reason.code in codes],
        has_adverse_determination=True,
        # each line says whether the No Surprises Act protects it: the claim's own lines decide
        has_no_surprises_protection=any(line.no_surprises for line in lines))
    return ClaimNotice(claim_id, narrowed)


# ------------------------------------------------------------------ page furniture


LARGE_TITLE_SIZES = (22.0, 20.0, 18.0, 17.0)


def _title_lines(title: str, width: float, sizes: Sequence[float] = TITLE_SIZES
                 ) -> tuple[float, tuple[str, ...]]:
    """The title at the largest size that fits in two lines (the last cut if even the
    smallest size needs more)."""
    lines: tuple[str, ...] = ()
    for size in sizes:
        lines = wrap_text(title, BOLD, size, width)
        if len(lines) <= 2:
            return size, lines
    size = sizes[-1]
    return size, (lines[0], ellipsize(" ".join(lines[1:]), BOLD, size, width))


@dataclass(slots=True)
class NoticeFurniture(PageFurniture):
    """The statement's furniture with the notice's title, facts, running header and footer.

    Page 1's letterhead and recipient window (email), or return window, insurer identity and
    fold marks (print), are the statement's own; the right column names the claim instead
    of the statement date and period.
    """

    claim_id: str = ""

    def _notice_title(self) -> tuple[float, tuple[str, ...]]:
        large = self.sizes.page_one >= 12
        return _title_lines(self.words("notice.title"), PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X,
                            LARGE_TITLE_SIZES if large else TITLE_SIZES)

    def _box_top(self) -> float:
        size, title = self._notice_title()
        return MARGIN + size + (len(title) - 1) * size * 1.1 + 7

    def _facts_top(self) -> float:
        return self._box_top() + self._not_a_bill_height() + 9

    def _fact_rows(self) -> list[tuple[str, str]]:
        return [(self.words("notice.claim_number"), self.claim_id),
                *member_facts(self.statement, self.words)]

    def _statement_facts(self, out: Out) -> None:
        theme = self.theme
        x, width = RIGHT_COLUMN_X, PAGE_WIDTH - MARGIN - RIGHT_COLUMN_X
        size, title = self._notice_title()
        leading = size * 1.1
        out.begin("H1")
        for index, line in enumerate(title):
            out.show(x, PAGE_HEIGHT - MARGIN - size - index * leading, line, BOLD, size,
                     theme.primary)
        out.end()
        self._not_a_bill(out, x, self._box_top(), width)
        draw_facts(out, self._fact_rows(), x, self._facts_top(), width,
                   self.first_page_top() - 0.1 * inch, theme, self.sizes.page_one)

    def continued(self) -> str:
        return self.words("notice.continued")

    def reference(self) -> str:
        return self.words("notice.footer_ref", claim_id=self.claim_id)


# ------------------------------------------------------------------ the flow


def _claim_blocks(notice: ClaimNotice, words: Words, theme: Theme) -> list[Block]:
    """The claim in the statement's own table (claims_table.py): the same columns (a denial in
    "Not paid (denied)", never in the discount), banner, detail rows with every adjustment and
    sizes (8 pt, large print 16 pt), and its total when it has several lines."""
    scale = LARGE_PRINT_SCALE if notice.statement.member.large_print else 1.0
    return claim_blocks(notice.lines, words, theme, scale, words("notice.claim_heading"))


def _reason_edges(size: float) -> tuple[float, ...]:
    """code | what it means | who pays | plan provision; the code column fits a code at `size`."""
    code = max(0.7 * inch, text_width("CO-000", BOLD, size) + 2 * CELL_PAD + 4)
    return (0.0, code, CONTENT_WIDTH - 3.4 * inch, CONTENT_WIDTH - 1.9 * inch, CONTENT_WIDTH)


def _reason_row(texts: Sequence[str], fonts: Sequence[str], color: str, *,
                fills: tuple[tuple[float, float, str], ...] = (),
                rules: tuple[tuple[str, float, float, float, str], ...] = (),
                size: float = STANDARD.body) -> Row:
    edges = _reason_edges(size)
    cells = tuple(Cell(cell_lines(text, font, size, edges[i + 1] - edges[i]), edges[i],
                       edges[i + 1] - edges[i], font, size, color)
                  for i, (text, font) in enumerate(zip(texts, fonts, strict=True)))
    return Row(cells, pad_top=2.5, pad_bottom=2.5, fills=fills, rules=rules)


def _reason_cells(reason: ReasonExplanation, words: Words) -> list[str]:
    """Who pays by the code's group, worded as on the statement (`claims.who_pays`): OA-23 is
    the other plan's part, PI the plan's reduction, not a provider write-off."""
    return [reason.code, reason.text, who_pays(reason.code, words),
            reason.plan_provision or words("notice.no_provision")]


def _reason_grid(notice: ClaimNotice, words: Words, theme: Theme) -> Grid:
    """The specific reasons: each code on the claim, what it means, who pays, and the plan
    provision relied on (reason-table wording, so its wrapping may be cached)."""
    size = type_sizes(notice.statement).body
    header = _reason_row([words("reasons.col_code"), words("reasons.col_meaning"),
                          words("reasons.col_who_pays"), words("notice.col_provision")],
                         [BOLD] * 4, WHITE, fills=((0.0, CONTENT_WIDTH, theme.primary),),
                         size=size)
    rule = (("bottom", 0.0, CONTENT_WIDTH, 0.4, theme.rule),)
    scale = LARGE_PRINT_SCALE if notice.statement.member.large_print else 1.0
    rows = [*scaled_heading_rows(words("notice.reasons_heading"), theme, scale), header]
    rows += [_reason_row(_reason_cells(reason, words), [BOLD, REGULAR, REGULAR, REGULAR],
                         theme.text, rules=rule, size=size)
             for reason in notice.statement.reasons]
    rows += [_reason_row([code, text, words("reasons_detail.remark"), words("notice.no_provision")],
                         [BOLD, REGULAR, REGULAR, REGULAR], theme.text, rules=rule, size=size)
             for code, text in remark_explanations(notice.lines, notice.statement.member.language) if text]
    return Grid(rows, lead_rows=2, header_rows=1, space_before=8, space_after=4)


def _blocks(notice: ClaimNotice, words: Words, theme: Theme, variant: str) -> list[Block]:
    """Why the member has this notice, the claim, the reasons, then the appeal rights.

    The rights are the statement's legal section for this claim (same key, same cache); the
    note before them says that its "this statement" means this notice.
    """
    sizes = type_sizes(notice.statement)
    return [
        Heading(words("notice.heading"), theme, size=sizes.heading + 2, space_before=0,
                space_after=5),
        TextBlock(words("notice.intro", claim_id=notice.claim_id), REGULAR, sizes.page_one,
                  theme.text,
                  remember=False, space_after=2),
        *_claim_blocks(notice, words, theme),
        _reason_grid(notice, words, theme),
        legal_pages(notice.statement, words, theme, variant),
    ]


# ------------------------------------------------------------------ the document


def render_notice(statement: Statement, claim_id: str, *, variant: str = "email") -> RenderedPdf:
    """The notice of the adverse benefit determination on one claim of the statement.

    Same variants and guarantees as `render_statement`: "email" (to be encrypted) or "print"
    (recipient window left for the address block stamped at batching); the same input
    always gives the same bytes. RenderError (claim id and statement_id only) when the
    statement has no such claim, no line of the claim is adverse (paid in full without a
    reduction), or a denied or reduced line has a code without explanation (a notice must state
    the specific reason).
    """
    if variant not in VARIANTS:
        raise ValueError(f"notice for claim {claim_id!r}: unknown variant {variant!r}")
    notice = claim_notice(statement, claim_id)
    try:
        return _render(notice, variant, DEFAULT_TEMPLATES_DIR)
    except TemplateError as exc:
        raise TemplateError(f"notice for claim {claim_id!r} of statement "
                            f"{statement.statement_id}: {exc}") from None
    except RenderError:
        raise
    except Exception as exc:  # messages can quote cell text (PHI): name the ids only
        raise _failure(claim_id, statement, f"layout failed ({type(exc).__name__})") from None


def _render(notice: ClaimNotice, variant: str, root: Path) -> RenderedPdf:
    statement = notice.statement
    language = resolve_language(statement.member.language, root)
    text_file = statement_text(language, root)
    brand_file = brand(statement.plan.brand, root)
    theme = brand_theme(brand_file)
    context = statement_context(statement, text_file, brand_file, language)
    context |= {"this_document": text_file.string("notice.this_document"),  # the shared legal text's
                "your_document": text_file.string("notice.your_document")}  # name for the document
    words = Words(text_file, brand_file, context)
    furniture = NoticeFurniture(statement, words, theme, variant, claim_id=notice.claim_id)
    first = Region(MARGIN, PAGE_HEIGHT - furniture.first_page_top(), BOTTOM, CONTENT_WIDTH)
    later = Region(MARGIN, PAGE_HEIGHT - furniture.later_page_top(), BOTTOM, CONTENT_WIDTH)
    pages = layout(_blocks(notice, words, theme, variant), first, later, furniture.header)
    for number, out in enumerate(pages, start=1):
        furniture.footer(out, number, len(pages))
    # undated: see the module docstring
    document = pdf_document(pages, statement, words, words("notice.title"))
    document.object_streams = variant == "email"  # print pieces: classic xref (paper.merge)
    return RenderedPdf(pdf=document.write(), pages=len(pages), document=document)
