"""The legal pages: appeal rights, No Surprises text, contact, language assistance.

This wording depends on no member data, so it is keyed by what it does depend on (LegalKey)
and built, laid out and compressed once per key and process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pipeline.model import Statement
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import Theme
from pipeline.render.eob.words import Words
from pipeline.render.flow import ColumnSection
from pipeline.render.fonts import BOLD, CID_FONTS, REGULAR, cid_font
from pipeline.render.text import standard_font_can_show
from pipeline.templates import TemplateFile

LEGAL_BODY = 7.0
LEGAL_LEADING = 8.5


@dataclass(frozen=True, slots=True)
class LegalKey:
    """What the legal text of a statement depends on; statements sharing it share the blocks.

    No member data: language, brand, line of business, state (consumer-assistance office),
    which sections apply, the plan provisions relied on, the variant.
    """

    text_file: TemplateFile
    brand_file: TemplateFile
    line_of_business: str
    state: str
    adverse: bool
    no_surprises: bool
    provisions: tuple[tuple[str, str], ...]
    variant: str


def _legal_key(statement: Statement, text_file: TemplateFile, brand_file: TemplateFile,
               variant: str) -> LegalKey:
    adverse = statement.has_adverse_determination
    return LegalKey(
        text_file, brand_file,
        statement.member.line_of_business if adverse else "",
        statement.member.state.upper() if adverse else "",
        adverse, statement.has_no_surprises_protection,
        tuple((r.code, r.plan_provision) for r in statement.reasons if r.plan_provision)
        if adverse else (),
        variant,
    )


def _heading(text: str, theme: Theme) -> Heading:
    return Heading(text, theme, size=9.5, space_before=7, space_after=3.5)


def _body(text: str, theme: Theme, *, size: float = LEGAL_BODY, after: float = 2.5,
          indent: float = 0.0) -> TextBlock:
    return TextBlock(text, REGULAR, size, theme.text, leading=LEGAL_LEADING * size / LEGAL_BODY,
                     space_after=after, indent=indent)


def _subheading(text: str, theme: Theme) -> TextBlock:
    return TextBlock(text, BOLD, 7.5, theme.primary, space_before=3, space_after=1.5,
                     keep_with_next=True)


@lru_cache(maxsize=256)
def _legal_section(key: LegalKey, context_items: tuple[tuple[str, Any], ...],
                   theme: Theme) -> ColumnSection:
    """Appeal rights, No Surprises text, contact, taglines: built once per LegalKey.

    The section caches its layout and compressed operators, so every later statement with
    the same key only places it.
    """
    words = Words(key.text_file, key.brand_file, dict(context_items))
    blocks: list[Block] = []
    if key.adverse:
        blocks += [_heading(words("adverse.heading"), theme), _body(words("adverse.intro"),
                                                                    theme)]
        blocks.append(_subheading(words("adverse.provisions_heading"), theme))
        blocks += [_body(key.text_file.text("adverse.provision",
                                            {"code": code, "provision": provision}),
                         theme, indent=6, after=1) for code, provision in key.provisions]
        blocks += [_body(words("adverse.guideline"), theme),
                   _body(words("adverse.more_info"), theme),
                   _body(words("adverse.codes_available"), theme),
                   _subheading(words("adverse.appeal_heading"), theme),
                   _body(words("adverse.appeal"), theme), _body(words("adverse.appeal_how"), theme),
                   _body(words("adverse.expedited"), theme),
                   _body(words("adverse.external_review"), theme)]
        if key.line_of_business in key.brand_file.strings("appeals.erisa_lines_of_business"):
            blocks.append(_body(words("adverse.erisa"), theme))
        blocks.append(_body(words("adverse.consumer_assistance"), theme))
    if key.no_surprises:
        blocks.append(_heading(words("no_surprises.heading"), theme))
        blocks += [_body(text, theme) for text in words.paragraphs("no_surprises.body")]
    note = words("contact.print_copy" if key.variant == "print" else "contact.paper_copy")
    blocks += [_heading(words("contact.heading"), theme), _body(words("contact.body"), theme),
               _body(note, theme)]
    blocks += _language_assistance(words, theme)
    return ColumnSection(blocks)


def _language_assistance(words: Words, theme: Theme) -> list[Block]:
    out: list[Block] = [_heading(words("language_assistance.heading"), theme),
                        _body(words("language_assistance.intro"), theme)]
    taglines = words.file.value("language_assistance.taglines")
    if not isinstance(taglines, list):
        raise words.file.error("language_assistance.taglines", "expected a list of tables")
    for index, entry in enumerate(taglines):
        key = f"language_assistance.taglines[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise words.file.error(f"{key}.text", "missing")
        text = words.file.render(f"{key}.text", entry["text"], words.context)
        font = REGULAR
        if "font" in entry:
            if entry["font"] not in CID_FONTS:
                raise words.file.error(f"{key}.font", f"unknown font (known: {sorted(CID_FONTS)})")
            font = cid_font(CID_FONTS[entry["font"]])
        elif not standard_font_can_show(text):
            raise words.file.error(f"{key}.text", "needs a `font` for its script")
        out.append(TextBlock(text, font, 6.5, theme.text, leading=8.0, space_after=2.0))
    out += [_subheading(words("nondiscrimination.heading"), theme),
            _body(words("nondiscrimination.body"), theme, size=6.5)]
    return out


_LEGAL_CONTEXT = ("legal_name", "short_name", "plan_administrator", "phone", "tty", "hours",
                  "website", "appeal_days", "appeal_address", "appeal_fax", "appeal_portal",
                  "external_review_name", "external_review_phone", "external_review_website",
                  "consumer_name", "consumer_phone", "consumer_website", "this_document",
                  "your_document")


def legal_pages(statement: Statement, words: Words, theme: Theme, variant: str) -> ColumnSection:
    """The statement's legal pages, shared with every statement of the same LegalKey."""
    key = _legal_key(statement, words.file, words.brand, variant)
    context = tuple((name, words.context[name]) for name in _LEGAL_CONTEXT
                    if name in words.context)
    return _legal_section(key, context, theme)
