"""The legal pages follow the plan's rulebook (issue 17 items 3, 4 and 6): plan type, funding
and state decide the appeal wording, deadlines, the ERISA sentence and who to call; every text
is large enough and has enough contrast; a corrected statement says what it replaces.

Read back with poppler (what a member's reader extracts), phone numbers' non-breaking hyphens
and spaces turned back into plain ones."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pikepdf
import pytest

from pipeline.model import PLAN_TYPES, Plan, Statement
from pipeline.render import render_notice, render_statement
from pipeline.render.canvas import Out
from pipeline.render.eob.brand import brand_theme
from pipeline.render.eob.furniture import PageFurniture, line_depth
from pipeline.render.eob.legal import check_legal_configuration, legal_pages, page_one_blocks
from pipeline.render.eob.words import Words, statement_context
from pipeline.render.fonts import REGULAR, face
from pipeline.templates import (
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    brand,
    clear_caches,
    legal_config,
    statement_text,
)
from tests.support.factories import PLAN_GOLD, make_member, make_statement

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="needs poppler-utils (.ci/system-packages.txt)")


def text_of(pdf: bytes, *, first: int = 0, last: int = 0) -> str:
    """What poppler reads, in reading order, as one line (wrapped sentences searchable)."""
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    out = subprocess.run(["pdftotext", "-raw", *pages, "-", "-"], input=pdf,
                         capture_output=True, check=True).stdout.decode()
    return " ".join(out.replace("\u2011", "-").split())


def adverse(plan_type: str = "erisa_group", *, funding: str = "insured", state: str = "IL",
            language: str = "en") -> Statement:
    member = make_member(state=state, language=language)
    plan = dataclasses.replace(PLAN_GOLD, plan_type=plan_type, funding=funding)
    return make_statement(n_lines=4, denied=1, member=member, plan=plan, plan_type=plan_type)


# ------------------------------------------------------------------ item 3: the plan's rulebook


@pytest.mark.parametrize("plan_type", ["governmental", "church", "individual"])
def test_plans_erisa_does_not_govern_have_no_civil_action_sentence_nor_labor_department(
        plan_type: str) -> None:
    """Before: every "commercial" member got the ERISA sentence and the DOL (EBSA) contact."""
    text = text_of(render_statement(adverse(plan_type)).pdf)
    assert "You have 180 days from the date you receive this statement" in text
    assert "ERISA" not in text and "502(a)" not in text
    assert "Department of Labor" not in text and "EBSA" not in text


def test_an_erisa_group_plan_keeps_the_civil_action_sentence_and_the_labor_department() -> None:
    text = text_of(render_statement(adverse("erisa_group")).pdf)
    assert "civil action under section 502(a) of ERISA" in text
    assert ("U.S. Department of Labor, Employee Benefits Security Administration (EBSA): "
            "1-866-444-3272") in text


def test_medicare_advantage_gets_reconsideration_the_independent_review_entity_and_65_days(
        ) -> None:
    """Before: an MA member got the commercial appeal text and "180 days ... you receive"."""
    statement = adverse("medicare_advantage", state="CA")
    text = text_of(render_statement(statement).pdf)
    assert ("You have 65 days from the date of this statement to ask us for a reconsideration "
            "(an appeal) of our decision.") in text
    assert "Independent Review Entity (IRE)" in text
    assert "Medicare (1-800-MEDICARE): 1-800-633-4227 (TTY 1-877-486-2048)" in text
    assert "Health Insurance Counseling and Advocacy Program (HICAP)" in text
    assert "180 days" not in text and "ERISA" not in text
    assert "independent external review" not in text  # the IRE, not the ACA external review
    # the plan's own timeframes, as MA decides
    assert "about payment for care you have already received within 60 days" in text
    assert "We will decide it within 72 hours" in text


def test_medicaid_gets_60_days_from_the_notice_and_the_state_fair_hearing() -> None:
    text = text_of(render_statement(adverse("medicaid", state="NY")).pdf)
    assert "You have 60 days from the date of this statement to ask us for an appeal" in text
    assert "State fair hearing within 120 days" in text
    assert "New York State Office of Temporary and Disability Assistance" in text
    assert "ERISA" not in text and "Independent Review Entity" not in text


@pytest.mark.parametrize(("language", "wording"), [
    ("en", "you can ask your State Medicaid agency for a State fair hearing within 120 days of "
           "the date of our appeal decision. Call us at"),
    ("es", "puede pedir a la agencia de Medicaid de su estado (your State Medicaid agency) una "
           "audiencia imparcial estatal (State fair hearing) dentro de los 120 días"),
])
def test_a_medicaid_member_in_a_state_without_its_own_table_gets_the_default_fair_hearing(
        language: str, wording: str) -> None:
    """Before: [default] had no fair_hearing, so a Medicaid member in Ohio with a denial did not
    render (TemplateError naming 'default.fair_hearing')."""
    text = text_of(render_statement(adverse("medicaid", state="OH", language=language)).pdf)
    assert wording in text
    assert "www.medicaid.gov" in text
    assert ("help you ask for one" if language == "en" else "le ayudaremos a pedirla") in text


def test_the_start_up_check_wants_default_to_have_every_contact_the_wording_needs(
        tmp_path: Path) -> None:
    templates = _broken(tmp_path, "states.toml", "\nfair_hearing = { name = \"your State",
                        "\nunused = { name = \"your State")
    try:
        with pytest.raises(TemplateError) as caught:
            check_legal_configuration(templates)
    finally:
        clear_caches()
    assert "states.toml" in str(caught.value) and "'default.fair_hearing'" in str(caught.value)
    assert "medicaid" in str(caught.value)


def test_a_missing_fair_hearing_office_at_render_names_the_members_state(tmp_path: Path) -> None:
    """Without the start-up check, the render's error names the member's state (the one to
    configure), never "default"."""
    templates = _broken(tmp_path, "states.toml", "\nfair_hearing = { name = \"your State",
                        "\nunused = { name = \"your State")
    statement = adverse("medicaid", state="OH")
    file, brand_file = statement_text("en", templates), brand(statement.plan.brand)
    words = Words(file, brand_file, statement_context(statement, file, brand_file, "en"))
    try:
        with pytest.raises(TemplateError) as caught:
            legal_pages(statement, words, brand_theme(brand_file), "email")
    finally:
        clear_caches()
    assert "'states.OH.fair_hearing'" in str(caught.value) and "state OH" in str(caught.value)
    assert "default.fair_hearing" not in str(caught.value)


def test_the_plans_appeal_decision_timeframes_are_printed() -> None:
    """Item 6: how fast the plan decides an appeal (group plan: 60 days post-service)."""
    text = text_of(render_statement(adverse("erisa_group")).pdf)
    assert ("We will decide your appeal within 60 days after we receive it for care you have "
            "already received, and within 30 days for care you have not received yet.") in text
    assert "We will decide it within 72 hours." in text


def test_an_insured_plan_names_the_state_insurance_department_a_self_funded_one_does_not() -> None:
    """Before: no plan named the state insurance department."""
    insured = text_of(render_statement(adverse(funding="insured", state="TX")).pdf)
    assert "Your plan is insured, and the Texas Department of Insurance oversees it." in insured
    self_funded = text_of(render_statement(adverse(funding="self_funded", state="TX")).pdf)
    assert "Texas Department of Insurance oversees" not in self_funded
    # the state consumer assistance program is there either way
    assert "Consumer Health Assistance Program" in self_funded


def test_consumer_assistance_and_contacts_follow_the_members_state() -> None:
    text = text_of(render_statement(adverse(state="CA")).pdf)
    assert ("California Department of Managed Health Care Help Center, your state's consumer "
            "assistance program: 1-888-466-2219") in text
    assert "California Department of Insurance" in text  # insured


def test_the_notice_of_one_claim_follows_the_same_rules() -> None:
    statement = adverse("governmental")
    denied = next(line.claim_id for line in statement.lines if line.status == "denied")
    text = text_of(render_notice(statement, denied).pdf)
    assert "You have 180 days from the date you receive this notice" in text
    assert "ERISA" not in text


# ------------------------------------------------------------------ the configuration


def test_every_plan_type_has_rules_and_every_state_lists_15_tagline_languages() -> None:
    config = legal_config()
    config.require_plan_types(PLAN_TYPES)
    assert [code for code in ("CA", "NY", "TX", "FL", "AZ", "NM", "UT") if code not in config.states] == []
    for code in ("", *config.states):
        languages = config.state(code).taglines
        assert len(languages) >= 15 and "en" not in languages, code
    for code in ("AZ", "NM", "UT"):
        assert "nv" in config.state(code).taglines, code  # Navajo
    assert not any(config.plan(t).erisa for t in ("governmental", "church", "individual",
                                                  "medicare_advantage", "medicaid"))


def _broken(tmp_path: Path, name: str, old: str, new: str) -> Path:
    target = tmp_path / "templates"
    if not target.exists():
        shutil.copytree(DEFAULT_TEMPLATES_DIR, target)
    path = target / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


@pytest.mark.parametrize(("name", "old", "new", "key"), [
    ("plan_rules.toml", 'appeal_clock = "notice_date"', 'appeal_clock = "someday"',
     "plans.medicare_advantage.appeal_clock"),
    ("plan_rules.toml", "appeal_days = 180                    #", 'appeal_days = "180" #',
     "plans.erisa_group.appeal_days"),
    ("plan_rules.toml", 'contacts = ["consumer_assistance", "insurance_department", "hhs"]',
     'contacts = ["consumer_assistance", "ebsa"]', "plans.governmental.contacts"),
    ("states.toml", '"hmn",', '"xx",', "states.CA.taglines[12]"),
    ("taglines.toml", "Llame al {{ phone }}", "Llame al", "es.text"),
])
def test_a_bad_rule_is_refused_at_start_up_naming_the_file_and_key(
        tmp_path: Path, name: str, old: str, new: str, key: str) -> None:
    templates = _broken(tmp_path, name, old, new)
    try:
        with pytest.raises(TemplateError) as caught:
            legal_config(templates)
    finally:
        clear_caches()
    assert name in str(caught.value) and repr(key) in str(caught.value)


def test_the_start_up_check_wants_every_plan_types_wording_in_every_language(
        tmp_path: Path) -> None:
    check_legal_configuration()
    templates = _broken(tmp_path, "statement/es.toml", "[adverse.medicaid]\nappeal = ",
                        "[adverse.medicaid]\nappeal_text = ")
    try:
        with pytest.raises(TemplateError) as caught:
            check_legal_configuration(templates)
    finally:
        clear_caches()
    assert "es.toml" in str(caught.value) and "'adverse.medicaid.appeal'" in str(caught.value)


@pytest.mark.parametrize(("old", "new", "key", "problem"), [
    ('script = "Armn"', 'script = "Zzzz"', "hy.script", "no font for the script 'Zzzz'"),
    ("Звоните {{ phone }}", "Звоните \U00013000 {{ phone }}", "ru.text", "no font draws"),
])
def test_a_tagline_no_font_can_draw_is_refused_at_start_up(
        tmp_path: Path, old: str, new: str, key: str, problem: str) -> None:
    """Before: a tagline in a script without a font printed as "?" on every statement."""
    templates = _broken(tmp_path, "taglines.toml", old, new)
    try:
        with pytest.raises(TemplateError) as caught:
            check_legal_configuration(templates)
    finally:
        clear_caches()
    message = str(caught.value)
    assert "taglines.toml" in message and repr(key) in message and problem in message


# ------------------------------------------------------------------ item 6: corrections, NSA


def test_a_corrected_statement_says_which_statement_it_replaces() -> None:
    """Before: a reissue looked like any other statement."""
    earlier = "st-2026-11-00aa11bb22cc33dd"
    statement = dataclasses.replace(make_statement(), version=2, replaces=earlier,
                                    replaces_date=date(2026, 12, 1))
    first_page = text_of(render_statement(statement).pdf, first=1, last=1)
    assert (f"This corrected statement replaces statement {earlier} of December 1, 2026. "
            "Please use this one") in first_page
    spanish = dataclasses.replace(statement, member=make_member(language="es"))
    assert (f"reemplaza el estado de cuenta {earlier} del 1 de diciembre de 2026"
            in text_of(render_statement(spanish).pdf, first=1, last=1))
    assert "corrected statement" not in text_of(render_statement(make_statement()).pdf)


def test_no_surprises_disclosure_stays_when_a_line_is_protected() -> None:
    protected = make_statement(n_lines=8)
    assert protected.has_no_surprises_protection
    text = text_of(render_statement(protected).pdf)
    assert "Your rights and protections against surprise medical bills" in text
    assert "1-800-985-3059" in text
    plain = make_statement(n_lines=3, denied=0)
    assert "surprise medical bills" not in text_of(render_statement(plain).pdf)


# ------------------------------------------------------------------ item 4: sizes and contrast


_TF = re.compile(r"/[\w-]+ ([\d.]+) Tf")


def _sizes_drawn(ops: str) -> set[float]:
    return {float(size) for size in _TF.findall(ops)}


def _parts(statement: Statement, variant: str = "email") -> tuple[Words, PageFurniture]:
    language = statement.member.language
    file, brand_file = statement_text(language), brand(statement.plan.brand)
    words = Words(file, brand_file, statement_context(statement, file, brand_file, language))
    return words, PageFurniture(statement, words, brand_theme(brand_file), variant)


def test_the_furniture_reserves_the_embedded_fonts_descender_not_helveticas() -> None:
    """Before: a furniture line's depth took Helvetica's descender (0.207 em), but Noto Sans
    draws "g", "j", "p", "_" down to 0.24 em: lines counted to fit above the recipient
    window's keep-out could reach into it."""
    printable = "".join(chr(code) for code in range(33, 127))
    below = face(REGULAR).ink(printable).bottom  # read from the glyph outlines
    assert below > 0.207
    assert line_depth() - 0.8 >= below


@pytest.mark.parametrize("large_print", [False, True])
@pytest.mark.parametrize("variant", ["email", "print"])
def test_furniture_and_legal_text_sizes(large_print: bool, variant: str) -> None:
    """Before: 7 pt legal text and footers, 7.5 pt page-1 identity. Now at least 8 pt on the
    legal pages and every page's furniture, 10 pt on page 1, and 16 pt in large print."""
    statement = make_statement(n_lines=8, denied=1, member=make_member(large_print=large_print))
    words, furniture = _parts(statement, variant)
    least, page_one = (16.0, 16.0) if large_print else (8.0, 10.0)
    first, later = Out(), Out()
    furniture.header(first, 1)
    furniture.header(later, 2)
    furniture.footer(later, 2, 2)
    first_sizes = _sizes_drawn("\n".join(first.ops))
    if variant == "print":  # the return address is the envelope window's: 10 pt at most room
        assert min(first_sizes) >= 10
    else:
        assert min(first_sizes) >= page_one, sorted(first_sizes)
    assert min(_sizes_drawn("\n".join(later.ops))) >= least
    blocks = [*legal_pages(statement, words, furniture.theme, variant).blocks,
              *page_one_blocks(statement, words, furniture.theme)]
    assert min(block.size for block in blocks) >= least  # type: ignore[attr-defined]
    assert min(block.size for block in page_one_blocks(  # type: ignore[attr-defined]
        statement, words, furniture.theme)) >= page_one


def test_a_large_print_statement_renders_with_its_legal_text_in_one_column() -> None:
    statement = make_statement(n_lines=8, denied=1, member=make_member(large_print=True))
    rendered = render_statement(statement)
    text = text_of(rendered.pdf)
    assert "Important information about your right to appeal" in text
    assert "Language assistance is available free of charge" in text


def _luminance(rgb: tuple[float, float, float]) -> float:
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: tuple[float, float, float], other: tuple[float, float, float]) -> float:
    """WCAG 2.1 contrast ratio."""
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _text_colours(pdf: bytes) -> set[tuple[float, float, float]]:
    """Every fill colour text is shown in (inside BT..ET), in every page and form."""
    found: set[tuple[float, float, float]] = set()

    def walk(stream: object, resources: pikepdf.Dictionary) -> None:
        in_text, colour = False, (0.0, 0.0, 0.0)
        for operands, operator in pikepdf.parse_content_stream(stream):
            op = str(operator)
            if op == "rg":
                colour = tuple(round(float(x), 3) for x in operands)  # type: ignore[assignment]
            elif op == "BT":
                in_text = True
            elif op == "ET":
                in_text = False
            elif op in ("Tj", "TJ") and in_text:
                found.add(colour)
            elif op == "Do":
                form = resources.XObject[str(operands[0])]
                if form.Subtype == "/Form":
                    walk(form, form.get("/Resources", resources))

    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            walk(page, page.Resources)
    return found


def test_every_text_colour_used_has_at_least_4_5_to_1_contrast() -> None:
    """Before: "Partially paid" in the accent colour had 2.5:1 on its tinted banner. Every
    colour text is drawn in must reach 4.5:1 against every light background of the theme
    (white, the tint, the accent tint); white text is drawn on the primary colour only."""
    theme = brand_theme(brand("default"))

    def parse(operand: str) -> tuple[float, float, float]:
        r, g, b = (round(float(x), 3) for x in operand.split())
        return r, g, b

    backgrounds = [(1.0, 1.0, 1.0), parse(theme.tint), parse(theme.accent_tint)]
    statements = [make_statement(n_lines=12, denied=2), adverse(), make_statement(language="es"),
                  dataclasses.replace(make_statement(), replaces="st-x", replaces_date=None)]
    colours: set[tuple[float, float, float]] = set()
    for statement in statements:
        for variant in ("email", "print"):
            colours |= _text_colours(render_statement(statement, variant=variant).pdf)
    assert parse(theme.accent) in colours or parse(theme.alert) in colours
    for colour in colours:
        if colour == (1.0, 1.0, 1.0):
            assert contrast(colour, parse(theme.primary)) >= 4.5
            continue
        for background in backgrounds:
            assert contrast(colour, background) >= 4.5, (colour, background)


def test_every_plan_type_renders() -> None:
    for plan_type in PLAN_TYPES:
        plan = Plan("P", "Plan", "default", 100000, 450000, plan_type=plan_type)
        rendered = render_statement(make_statement(n_lines=3, denied=1, plan=plan,
                                                   plan_type=plan_type))
        assert rendered.pages >= 1


# ------------------------------------------------------------------ remark codes explained


def _with_a_remark(language: str) -> Statement:
    from pipeline.compose.reasons import explain_reason, statement_codes
    from pipeline.model import Adjustment
    from tests.support.factories import make_line

    base = make_statement(n_lines=0, language=language)
    line = make_line(status="paid", reason_code="PR-3", discount=2000, denied=3000, plan_paid=9000,
                     copay=3000,
                     adjustments=(Adjustment("CO", "45", 2000), Adjustment("CO", "59", 3000, "N19"),
                                  Adjustment("PR", "3", 3000)))
    return dataclasses.replace(base, lines=[line], has_adverse_determination=True,
                               reasons=[explain_reason(code, language) for code in statement_codes([line])])


@pytest.mark.parametrize(("language", "meaning"), [
    ("en", "This service is part of the main procedure done at the same time and is not paid separately."),
    ("es", None), ("zh-Hant", "此項服務是同時進行的主要手術的一部分，不另行給付。")])
def test_every_remark_code_on_the_statement_is_explained_in_its_language(language: str,
                                                                       meaning: str | None) -> None:
    """Before: N19 printed next to its adjustment, and "What the codes mean" explained the CARCs
    only, so the member could not tell what the remark said."""
    from pipeline.reason_codes import remark_table

    expected = meaning or remark_table().text("N19", language)
    text = "".join(text_of(render_statement(_with_a_remark(language)).pdf).split())
    assert "".join(expected.split()) in text
    if language != "en":
        assert "mainproceduredoneatthesametime" not in text
