"""The legal pages: appeal rights, No Surprises text, contact, language assistance.

What the appeal rights say follows the plan's rulebook, not its line of business: the plan type
(`Statement.plan_type`) picks its rules in templates/plan_rules.toml (wording, deadline and when
it starts, decision timeframes, the ERISA civil-action sentence and the Department of Labor for
ERISA plans only, who to ask for help), the member's state picks the contacts and the tagline
languages in templates/states.toml, and templates/taglines.toml holds the taglines.

This wording depends on no member data, so it is keyed by what it does depend on (LegalKey)
and built, laid out and compressed once per key and process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.model import PLAN_TYPES, Statement
from pipeline.render.blocks import Block, Heading, LineBlock, TextBlock
from pipeline.render.canvas import Out, Theme
from pipeline.render.eob.words import Words, dates
from pipeline.render.flow import ColumnSection
from pipeline.render.fonts import BOLD, REGULAR, SCRIPT_FACES
from pipeline.render.pdf.structure import Tag, TagPath
from pipeline.render.shaping import missing, shaped_ops, shaped_width, wrap_shaped
from pipeline.templates import (
    DEFAULT_TEMPLATES_DIR,
    FEDERAL_CONTACTS,
    REQUIRED_STATE_CONTACTS,
    LegalConfig,
    PlanRules,
    Tagline,
    TemplateFile,
    legal_config,
    statement_text,
)

NON_BREAKING = str.maketrans({"-": "\u2011", " ": "\u00a0"})
"""Phone numbers are never split between lines: non-breaking hyphens and spaces."""


def unbreakable(phone: str) -> str:
    return phone.translate(NON_BREAKING)


@dataclass(frozen=True, slots=True)
class TypeSizes:
    """Point sizes of the legal pages and the page furniture (issue 17: body text at least
    8 pt, page 1 at least 10 pt, large print at least 16 pt)."""

    body: float
    heading: float
    subheading: float
    page_one: float  # page-1 furniture and the page-1 notes (language help, correction)
    small: float  # footer and running header
    title: float  # "Explanation of Benefits" on page 1
    columns: int  # the legal pages' columns

    @property
    def leading(self) -> float:
        return round(self.body * 1.22, 2)


STANDARD = TypeSizes(body=8.0, heading=10.0, subheading=8.5, page_one=10.0, small=8.0,
                     title=17.0, columns=2)
LARGE_PRINT = TypeSizes(body=16.0, heading=19.0, subheading=17.0, page_one=16.0, small=16.0,
                        title=22.0, columns=1)


def type_sizes(statement: Statement) -> TypeSizes:
    """Large print (at least 16 pt) for a member who asked for it (Member.large_print)."""
    return LARGE_PRINT if statement.member.large_print else STANDARD


@dataclass(frozen=True, slots=True)
class LegalKey:
    """What the legal text of a statement depends on; statements sharing it share the blocks.

    No member data: language and brand files, plan type and funding, the member's state as
    configured ("" for the default set), which sections apply, the plan provisions relied
    on, the variant and the print size.
    """

    text_file: TemplateFile
    brand_file: TemplateFile
    plan_type: str
    insured: bool
    state: str
    adverse: bool
    no_surprises: bool
    provisions: tuple[tuple[str, str], ...]
    variant: str
    large_print: bool


def check_legal_configuration(templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> None:
    """The start-up check (call it where a process opens its context): plan rules, states and
    taglines load and agree, every plan type has rules, every statement language has the
    wording they need, and every tagline's script has a font that draws every character
    (so none prints as a box or "?"; the fonts must be checked first). TemplateError names
    the file and the key to fix. A contact the wording cannot do without (the Medicaid fair
    hearing office) must be in `[default]`, so a member in a state without its own table
    still gets a statement."""
    config = legal_config(templates_dir)
    config.require_plan_types(PLAN_TYPES)
    for plan_type in PLAN_TYPES:
        for kind in config.plan(plan_type).contacts:
            if kind in REQUIRED_STATE_CONTACTS and config.default_state.contact(kind) is None:
                raise config.states_file.error(
                    f"default.{kind}", f"plan type {plan_type!r} needs it for members in a "
                    "state without its own table")
    sample = {"phone": unbreakable("1-800-555-0100"), "tty": "711"}
    for code, tagline in config.taglines.items():
        if tagline.script not in SCRIPT_FACES:
            raise config.taglines_file.error(
                f"{code}.script", f"no font for the script {tagline.script!r}; known: "
                f"{', '.join(sorted(SCRIPT_FACES))}")
        lacking = missing(config.tagline_text(code, sample), code, script=tagline.script)
        if lacking:
            raise config.taglines_file.error(
                f"{code}.text", f"no font draws {lacking!r} ({tagline.script} text)")
    for path in sorted((templates_dir / "statement").glob("*.toml")):
        file = statement_text(path.stem, templates_dir)
        for plan_type in PLAN_TYPES:
            rules = config.plan(plan_type)
            parts = ("appeal", "decision_times", "expedited", "review",
                     *(("erisa",) if rules.erisa else ()))
            if "fair_hearing" in rules.contacts:  # an office without a phone of its own
                parts += ("review_without_phone",)
            for part in parts:
                file.string(f"adverse.{rules.appeal_text}.{part}")
            file.string(f"adverse.clock.{rules.appeal_clock}")
            for kind in rules.contacts:
                if kind != "fair_hearing":
                    file.string(f"contacts.{kind}")
                if kind in FEDERAL_CONTACTS:
                    file.string(f"agencies.{kind}")


def templates_root(words: Words) -> LegalConfig:
    """The plan and state rules next to the language file (templates/statement/<lang>.toml)."""
    return legal_config(words.file.path.parent.parent)


def _legal_key(statement: Statement, config: LegalConfig, text_file: TemplateFile,
               brand_file: TemplateFile, variant: str) -> LegalKey:
    adverse = statement.has_adverse_determination
    return LegalKey(
        text_file, brand_file, statement.plan_type, statement.plan.funding == "insured",
        config.state(statement.member.state).code, adverse,
        statement.has_no_surprises_protection,
        tuple((r.code, r.plan_provision) for r in statement.reasons if r.plan_provision)
        if adverse else (),
        variant, statement.member.large_print,
    )


class _Style:
    """The legal pages' blocks at one set of sizes."""

    def __init__(self, theme: Theme, sizes: TypeSizes) -> None:
        self.theme, self.sizes = theme, sizes

    def heading(self, text: str) -> Heading:
        size = self.sizes.heading
        return Heading(text, self.theme, size=size, space_before=size * 0.7,
                       space_after=size * 0.35)

    def body(self, text: str, *, after: float | None = None, indent: float = 0.0) -> TextBlock:
        sizes = self.sizes
        return TextBlock(text, REGULAR, sizes.body, self.theme.text, leading=sizes.leading,
                         space_after=sizes.body * 0.32 if after is None else after,
                         indent=indent)

    def subheading(self, text: str) -> TextBlock:
        size = self.sizes.subheading
        return TextBlock(text, BOLD, size, self.theme.primary, space_before=size * 0.4,
                         space_after=size * 0.2, keep_with_next=True, role="H3")


def rule_context(rules: PlanRules) -> dict[str, Any]:
    """The plan type's numbers, for the appeal wording's placeholders."""
    return {"appeal_days": rules.appeal_days,
            "decision_days_pre_service": rules.decision_days_pre_service,
            "decision_days_post_service": rules.decision_days_post_service,
            "expedited_hours": rules.expedited_hours,
            "fair_hearing_days": rules.fair_hearing_days}


def _contact_sentences(key: LegalKey, config: LegalConfig, rules: PlanRules, words: Words,
                       language: str, *, kinds: tuple[str, ...]) -> list[str]:
    """One sentence per contact of the plan type among `kinds`, in the configured order."""
    state = config.state(key.state)
    out = []
    for kind in rules.contacts:
        if kind not in kinds or (kind == "insurance_department" and not key.insured):
            continue
        contact = config.federal.get(kind) or state.contact(kind)
        if contact is None:
            continue  # the state has no such office configured
        name = contact.name_in(language) or words(f"agencies.{kind}")
        out.append(words.file.text(f"contacts.{kind}", {
            **words.context, "name": name, "phone": unbreakable(contact.phone),
            "tty": unbreakable(contact.tty), "website": contact.website}))
    return out


def _appeal_rights(key: LegalKey, config: LegalConfig, words: Words, style: _Style,
                   language: str) -> list[Block]:
    rules = config.plan(key.plan_type)
    table = f"adverse.{rules.appeal_text}"
    if not words.file.has(table):
        raise words.file.error(table, f"no appeal wording for plan type {key.plan_type!r}")
    context: dict[str, Any] = {**words.context, **rule_context(rules)}
    context["appeal_start"] = words.file.text(f"adverse.clock.{rules.appeal_clock}", context)
    review = "review"
    if "fair_hearing" in rules.contacts:
        hearing = config.state(key.state).contact("fair_hearing")
        if hearing is None:  # legal_pages refuses this, naming the member's state
            raise AssertionError("no fair hearing office: checked by legal_pages")
        context |= {"fair_hearing_name": hearing.name_in(language),
                    "fair_hearing_phone": unbreakable(hearing.phone),
                    "fair_hearing_website": hearing.website}
        if not hearing.phone:  # a generic office: the plan's customer service helps ask
            review = "review_without_phone"

    def text(name: str) -> str:
        return words.file.text(f"{table}.{name}", context)

    blocks: list[Block] = [style.heading(words("adverse.heading")), style.body(words("adverse.intro"))]
    blocks.append(style.subheading(words("adverse.provisions_heading")))
    blocks += [style.body(words.file.text("adverse.provision",
                                          {"code": code, "provision": provision}),
                          indent=6, after=1) for code, provision in key.provisions]
    blocks += [style.body(words("adverse.guideline")), style.body(words("adverse.more_info")),
               style.body(words("adverse.codes_available")),
               style.subheading(words("adverse.appeal_heading")),
               style.body(text("appeal")), style.body(words("adverse.appeal_how")),
               style.body(text("decision_times")), style.body(text("expedited")),
               style.body(text(review))]
    if rules.erisa:
        blocks.append(style.body(text("erisa")))
    helpers = _contact_sentences(key, config, rules, words, language,
                                 kinds=("consumer_assistance", "ebsa", "hhs", "medicare", "ship"))
    if helpers:
        blocks.append(style.body(words("contacts.intro"), after=1))
        blocks += [style.body(line, indent=6, after=1) for line in helpers]
    return blocks


@lru_cache(maxsize=256)
def _legal_section(key: LegalKey, config: LegalConfig, context_items: tuple[tuple[str, Any], ...],
                   theme: Theme) -> ColumnSection:
    """Appeal rights, No Surprises text, contact, taglines: built once per LegalKey.

    The section caches its layout and compressed operators, so every later statement with
    the same key only places it.
    """
    words = Words(key.text_file, key.brand_file, dict(context_items))
    sizes = LARGE_PRINT if key.large_print else STANDARD
    style = _Style(theme, sizes)
    language = key.text_file.path.stem
    blocks: list[Block] = []
    if key.adverse:
        blocks += _appeal_rights(key, config, words, style, language)
    if key.no_surprises:
        blocks.append(style.heading(words("no_surprises.heading")))
        blocks += [style.body(text) for text in words.paragraphs("no_surprises.body")]
    note = words("contact.print_copy" if key.variant == "print" else "contact.paper_copy")
    blocks += [style.heading(words("contact.heading")), style.body(words("contact.body")),
               style.body(note)]
    rules = config.plan(key.plan_type)
    blocks += [style.body(line) for line in _contact_sentences(
        key, config, rules, words, language, kinds=("insurance_department",))]
    blocks += _language_assistance(key, config, words, style, language)
    return ColumnSection(blocks, count=sizes.columns)


def taglines_for(config: LegalConfig, state: str, language: str) -> list[Tagline]:
    """The state's tagline languages (at least 15), English first on a statement in another
    language, never the statement's own language."""
    codes = [code for code in config.state(state).taglines if code != language]
    if language != "en":
        codes.insert(0, "en")
    return [config.taglines[code] for code in codes]


TALL_SCRIPTS = frozenset({"Arab", "Deva", "Guru", "Gujr", "Beng", "Khmr", "Thai", "Laoo",
                          "Mymr", "Tibt", "Sinh", "Telu", "Knda", "Mlym", "Orya", "Taml"})
"""Scripts with marks stacked above or below the letters: their taglines get more leading."""


@lru_cache(maxsize=1024)
def _tagline_ops(lines: tuple[str, ...], language: str, script: str, size: float, color: str,
                 leading: float, width: float, right_to_left: bool) -> tuple[str, frozenset[str]]:
    """A tagline's lines as operators at the origin (top-left), built once per process."""
    parts: list[str] = []
    used: set[str] = set()
    baseline = -leading + (leading - size) / 2 + size * 0.22
    for line in lines:
        if line:
            ops, fonts = shaped_ops(line, language, size, color, script=script)
            x = width - shaped_width(line, language, size, script=script) if right_to_left else 0
            parts.append(f"q 1 0 0 1 {x:.2f} {baseline:.2f} cm {ops} Q")
            used |= fonts
        baseline -= leading
    return "\n".join(parts), frozenset(used)


class TaglineBlock(LineBlock):
    """One tagline, shaped for its script (`pipeline.render.shaping`: contextual forms,
    reordering, bidi; digits and punctuation the script's face lacks in Noto Sans),
    right-aligned for a right-to-left script, its phone number kept on one line. One P
    element whose /Lang is the tagline's language; split between columns or pages by lines.
    Template text: its wrapping and operators are cached per process."""

    __slots__ = ("tagline", "text", "size", "color", "leading", "space_after", "_path",
                 "_lines", "_width", "_fixed")

    def __init__(self, tagline: Tagline, text: str, size: float, color: str, *,
                 space_after: float = 0.0, lines: tuple[str, ...] | None = None,
                 width: float = 0.0, path: TagPath | None = None) -> None:
        self.tagline, self.text, self.size, self.color = tagline, text, size, color
        tall = tagline.script in TALL_SCRIPTS
        self.leading = round(size * (1.3 if tall else 1.25), 2)
        self.space_after = space_after
        self._path = path or ((Tag("P", lang=tagline.language), "P"),)
        self._lines, self._width = lines, width
        self._fixed = lines is not None  # a part split off: its lines are given

    def structure(self) -> TagPath | None:
        return self._path

    def lines(self, width: float) -> tuple[str, ...]:
        if not self._fixed and (self._lines is None or self._width != width):
            self._lines = wrap_shaped(self.text, self.tagline.language, self.size,
                                      round(width, 3), script=self.tagline.script)
        self._width = width
        return self._lines or ()

    def _part(self, lines: tuple[str, ...], before: float, after: float) -> TaglineBlock:
        return TaglineBlock(self.tagline, "", self.size, self.color, lines=lines,
                            width=self._width, path=self._path, space_after=after)

    def draw(self, out: Out, x: float, top: float) -> None:
        ops, fonts = _tagline_ops(self._lines or (), self.tagline.language, self.tagline.script,
                                  self.size, self.color, self.leading, round(self._width, 3),
                                  self.tagline.right_to_left)
        out.place(x, top, ops, fonts)


def tagline_block(tagline: Tagline, text: str, size: float, theme: Theme) -> Block:
    """One tagline: the one place that draws a tagline (see TaglineBlock)."""
    return TaglineBlock(tagline, text, size, theme.text, space_after=size * 0.3)


def _language_assistance(key: LegalKey, config: LegalConfig, words: Words, style: _Style,
                         language: str) -> list[Block]:
    out: list[Block] = [style.heading(words("language_assistance.heading")),
                        style.body(words("language_assistance.intro"))]
    phones = {"phone": unbreakable(words.context["phone"]),
              "tty": unbreakable(words.context["tty"])}
    for tagline in taglines_for(config, key.state, language):
        text = config.tagline_text(tagline.language, phones)
        out.append(tagline_block(tagline, text, style.sizes.body, style.theme))
    out += [style.subheading(words("nondiscrimination.heading")),
            style.body(words("nondiscrimination.body"))]
    return out


_LEGAL_CONTEXT = ("legal_name", "short_name", "plan_administrator", "phone", "tty", "hours",
                  "website", "appeal_address", "appeal_fax", "appeal_portal",
                  "external_review_name", "external_review_phone", "external_review_website",
                  "this_document", "your_document")


def _require_contacts(statement: Statement, config: LegalConfig) -> None:
    """The contacts the appeal wording cannot do without, for the member's state (its own table
    or `[default]`); the error names the member's state, the one an operator must configure."""
    state = config.state(statement.member.state)
    for kind in config.plan(statement.plan_type).contacts:
        if kind in REQUIRED_STATE_CONTACTS and state.contact(kind) is None:
            code = (statement.member.state or "").strip().upper() or "(none)"
            raise config.states_file.error(
                f"states.{code}.{kind}",
                f"no {kind} contact for a member in state {code} (plan type "
                f"{statement.plan_type!r}): add it to [states.{code}] or to [default]")


def legal_pages(statement: Statement, words: Words, theme: Theme, variant: str) -> ColumnSection:
    """The statement's legal pages, shared with every statement of the same LegalKey."""
    config = templates_root(words)
    key = _legal_key(statement, config, words.file, words.brand, variant)
    if key.adverse:
        _require_contacts(statement, config)
    context = tuple((name, words.context[name]) for name in _LEGAL_CONTEXT
                    if name in words.context)
    return _legal_section(key, config, context, theme)


def page_one_blocks(statement: Statement, words: Words, theme: Theme) -> list[Block]:
    """What page 1 says before the summary: that a corrected statement replaces an earlier
    one (its id and date), and, in the member's language, that language help is free."""
    sizes = type_sizes(statement)
    blocks: list[Block] = []
    if statement.replaces:
        replaced = {"replaces_id": statement.replaces}
        key = "header.replaces_undated"
        if statement.replaces_date is not None:
            replaced["replaces_date"] = dates(words.file)(statement.replaces_date)
            key = "header.replaces"
        blocks.append(TextBlock(words(key, **replaced), BOLD, sizes.page_one, theme.alert,
                                remember=False, space_after=sizes.page_one * 0.4))
    phones = {"phone": unbreakable(words.context["phone"]),
              "tty": unbreakable(words.context["tty"])}
    blocks.append(TextBlock(words.file.text("language_assistance.page_one", phones, memo=True),
                            BOLD, sizes.page_one, theme.primary,
                            space_after=sizes.page_one * 0.6))
    return blocks
