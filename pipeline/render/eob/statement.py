"""Render one Statement as a member Explanation of Benefits PDF.

The statement is a list of blocks (summary, claims, reason codes, accumulators, legal pages)
laid out by the render engine under the page furniture, then written as PDF objects with
the catalog and document information added here.

- Determinism: no clock, no randomness; the creation date is the statement date and the file
  /ID a digest of the body, so the same statement always yields the same bytes (a content
  hash detects "already rendered").
- Encryption: the result keeps its object list, so `encrypt_pdf` writes the encrypted copy
  directly (AES-256, R6) instead of parsing this file again.
- PHI: nothing here logs; exceptions name the statement_id and template key only; PDF
  metadata carries the title, insurer and statement_id, never member data.
- Wording comes from templates/ (see pipeline.templates); no member-facing text lives here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from pipeline.model import Statement
from pipeline.render.blocks import Block, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN, PAGE_HEIGHT, Out, Theme
from pipeline.render.document import add_pages
from pipeline.render.eob.brand import brand_theme
from pipeline.render.eob.claims import reason_blocks
from pipeline.render.eob.claims_table import claims_blocks
from pipeline.render.eob.furniture import BOTTOM, PageFurniture
from pipeline.render.eob.legal import legal_pages, page_one_blocks, type_sizes
from pipeline.render.eob.summary import accumulator_blocks, summary_blocks
from pipeline.render.eob.words import Words, dates, statement_context
from pipeline.render.flow import Region, layout
from pipeline.render.fonts import BOLD
from pipeline.render.pdf.rendered import RenderedPdf
from pipeline.render.pdf.writer import Name, PdfDocument
from pipeline.templates import (
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    brand,
    resolve_language,
    statement_text,
)

VARIANTS = ("email", "print")


LARGE_PRINT_SCALE = 2.0
"""Claims, summary, codes and accumulators of a large-print statement: 8 pt table text becomes
16 pt (the legal pages and page one size themselves, `legal.type_sizes`)."""


class RenderError(RuntimeError):
    """Layout failed for a statement; the message names the statement_id only."""


class StatementHeld(RenderError):
    """The statement must not be sent (Statement.held, e.g. an accumulator over its limit with
    the `accumulator_overrun` setting "hold"): the render stage records it as failed with this
    error's name and the reason, so it is accounted for; a corrected extract makes a new version."""


def _creation_date(day: date) -> str:
    return f"D:{day:%Y%m%d}000000+00'00'"


def _blocks(statement: Statement, words: Words, theme: Theme, variant: str) -> Iterator[Block]:
    yield from page_one_blocks(statement, words, theme)
    scale = LARGE_PRINT_SCALE if statement.member.large_print else 1.0
    yield from summary_blocks(statement, words, theme, scale)
    yield from claims_blocks(statement, words, theme, scale)
    yield from reason_blocks(statement, words, theme, scale)
    yield from accumulator_blocks(statement, words, theme, scale)
    yield from separate_notice_blocks(statement, words, theme)
    yield legal_pages(statement, words, theme, variant)


def separate_notice_blocks(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    """One sentence per claim that got a prompt notice of its own, just before the appeal
    rights: the claim and the day its notice leaves. Claim ids and dates are the member's:
    never cached (the legal pages after it are)."""
    day = dates(words.file)
    size = max(type_sizes(statement).body, 8.5)
    return [TextBlock(words("adverse.separate_notice", claim_id=notice.claim_id, date=day(notice.leaves)),
                      BOLD, size, theme.text, remember=False, space_before=6 if index == 0 else 0,
                      space_after=2)
            for index, notice in enumerate(statement.separate_notices)]


def render_statement(
    statement: Statement, *, variant: str = "email", templates_dir: Path | None = None
) -> RenderedPdf:
    """The statement as PDF bytes; the same statement always gives the same bytes.

    variant "email" is the normal statement; "print" is the paper fallback, with the return
    address positioned for a #10 double-window envelope, fold marks, and the recipient window
    left empty for the address block stamped when the piece is batched (pipeline.paper).
    """
    if variant not in VARIANTS:
        raise ValueError(f"statement {statement.statement_id}: unknown variant {variant!r}")
    if statement.held:
        raise StatementHeld(f"statement {statement.statement_id}: held ({statement.held}), not rendered")
    root = templates_dir or DEFAULT_TEMPLATES_DIR
    try:
        return _render(statement, variant, root)
    except TemplateError as exc:
        raise TemplateError(f"statement {statement.statement_id}: {exc}") from None
    except RenderError:
        raise
    except Exception as exc:  # messages can quote cell text (PHI): name the id only
        raise RenderError(
            f"statement {statement.statement_id}: layout failed ({type(exc).__name__})"
        ) from None


def _render(statement: Statement, variant: str, root: Path) -> RenderedPdf:
    language = resolve_language(statement.member.language, root)
    text_file = statement_text(language, root)
    brand_file = brand(statement.plan.brand, root)
    theme = brand_theme(brand_file)
    words = Words(text_file, brand_file, statement_context(statement, text_file, brand_file, language))
    furniture = PageFurniture(statement, words, theme, variant)
    first = Region(MARGIN, PAGE_HEIGHT - furniture.first_page_top(), BOTTOM, CONTENT_WIDTH)
    later = Region(MARGIN, PAGE_HEIGHT - furniture.later_page_top(), BOTTOM, CONTENT_WIDTH)
    pages = layout(list(_blocks(statement, words, theme, variant)), first, later,
                   furniture.header)
    for number, out in enumerate(pages, start=1):
        furniture.footer(out, number, len(pages))
    document = _document(pages, statement, words)
    document.object_streams = variant == "email"  # print pieces: classic xref (paper.merge)
    return RenderedPdf(pdf=document.write(), pages=len(pages), document=document)


def _document(pages: Sequence[Out], statement: Statement, words: Words) -> PdfDocument:
    """The statement's objects, dated by the statement date."""
    created = _creation_date(statement.statement_date)
    return pdf_document(pages, statement, words, words("header.title"),
                        {"CreationDate": created, "ModDate": created})


def pdf_document(pages: Sequence[Out], statement: Statement, words: Words, title: str,
                 dates: dict[str, str] | None = None) -> PdfDocument:
    """A member document's objects: its pages, then the catalog and the document information
    (title, insurer, statement id; no member data). Tagged: the structure tree, /MarkInfo,
    the language, and the title shown in the viewer's title bar."""
    document = PdfDocument()
    tree = add_pages(document, pages)
    document.root = document.add({
        "Type": Name("Catalog"), "Pages": tree.pages, "Lang": words.file.string("meta.lang_tag"),
        "ViewerPreferences": {"DisplayDocTitle": True},
        **({"MarkInfo": {"Marked": True}, "StructTreeRoot": tree.structure}
           if tree.structure is not None else {}),
    })
    document.info = document.add({
        "Title": title,
        "Author": words.context["legal_name"],
        "Subject": f"{statement.statement_id} v{statement.version}",
        "Creator": "eob-pipeline",
        "Producer": "eob-pipeline",
        **(dates or {}),
    })
    return document
