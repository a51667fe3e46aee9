"""Statement PDFs: what a member sees, how it is protected, and that it renders the same twice."""

from __future__ import annotations

import dataclasses
import io
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from html import unescape
from pathlib import Path

import pikepdf
import pytest
from PIL import Image
from reportlab.lib.units import inch

from pipeline.model import MONEY_FIELDS, ClaimLine, Statement
from pipeline.render import (
    EncryptionError,
    PasswordPolicyError,
    UnknownPasswordPolicy,
    encrypt_pdf,
    format_money,
    mask_member_id,
    member_password,
    render_statement,
)
from pipeline.render.canvas import PAGE_HEIGHT, PAGE_WIDTH
from pipeline.render.eob.furniture import RECIPIENT_WINDOW, RETURN_WINDOW
from pipeline.templates import DEFAULT_TEMPLATES_DIR, TemplateError, clear_caches
from tests.support import REPO
from tests.support.factories import make_line, make_member, make_statement
from tests.support.pdf_fonts import base_font, font_decoder

OWNER = "owner-secret-for-tests"


# ------------------------------------------------------------------ reading PDFs back


@dataclass(frozen=True)
class Shown:
    """One string drawn on a page, where it starts, and how wide it is."""

    text: str
    x: float
    y: float
    width: float
    font: str


def shown_text(pdf: bytes, password: str = "") -> list[list[Shown]]:
    """Every string shown on every page, with its position on the sheet.

    Follows the operators the renderer emits (q/Q, translating cm, Tf, Tm, Td, TL, T*, Tj,
    TJ, and Do into form XObjects, where the shared legal text lives); strings are decoded
    through each font's /ToUnicode map and /W widths (tests.support.pdf_fonts), and the runs
    of one line drawn from several subsets are joined back into one string.
    """
    pages: list[list[Shown]] = []
    with pikepdf.open(io.BytesIO(pdf), password=password) as document:
        for page in document.pages:
            found: list[Shown] = []
            _shown_in(page, page.Resources, (0.0, 0.0), found)
            pages.append(found)
    return pages


def _shown_in(stream: object, resources: pikepdf.Dictionary, origin: tuple[float, float],
              found: list[Shown]) -> None:
    fonts = {str(name): font for name, font in resources.get("/Font", {}).items()}
    forms = {str(name): form for name, form in resources.get("/XObject", {}).items()}
    stack, ctm = [], origin
    font_name, size, leading = "", 0.0, 0.0
    line_x = line_y = 0.0
    moved = True
    for instruction in pikepdf.parse_content_stream(stream):
        operands, op = instruction.operands, str(instruction.operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop()
        elif op == "cm":
            ctm = (ctm[0] + float(operands[4]), ctm[1] + float(operands[5]))
        elif op == "Do":
            form = forms[str(operands[0])]
            if form.Subtype == "/Form":  # not the logo image
                _shown_in(form, form.get("/Resources", resources), ctm, found)
            moved = True
        elif op == "Tf":
            font_name, size = str(operands[0]), float(operands[1])
        elif op == "TL":
            leading = float(operands[0])
        elif op == "Tm":
            line_x, line_y = float(operands[4]), float(operands[5])
            moved = True
        elif op == "Td":
            line_x, line_y = line_x + float(operands[0]), line_y + float(operands[1])
            moved = True
        elif op == "T*":
            line_y -= leading
            moved = True
        elif op in ("Tj", "TJ"):
            font = fonts[font_name]
            parts = operands[0] if op == "TJ" else [operands[0]]
            raw = b"".join(bytes(p) for p in parts if isinstance(p, pikepdf.String))
            text, width = font_decoder(font)(raw, size)
            base = base_font(font)
            if not moved and found:  # the same line, continued in another subset
                last = found[-1]
                found[-1] = Shown(last.text + text, last.x, last.y, last.width + width,
                                  last.font)
            else:
                found.append(Shown(text, ctm[0] + line_x, ctm[1] + line_y, width, base))
            moved = False


def page_strings(pdf: bytes, password: str = "") -> list[list[str]]:
    return [[item.text for item in page] for page in shown_text(pdf, password)]


def all_text(pdf: bytes) -> str:
    return "\n".join("\n".join(page) for page in page_strings(pdf))


def joined_words(pdf: bytes) -> str:
    """All text with line breaks removed, so wrapped sentences can be searched whole."""
    return " ".join(all_text(pdf).split())


# ------------------------------------------------------------------ encryption


def test_encrypted_statement_opens_only_with_the_members_password() -> None:
    statement = make_statement()
    rendered = render_statement(statement)
    password = member_password(statement.member, "dob_mmddyyyy")
    encrypted = encrypt_pdf(rendered, user_password=password, owner_password=OWNER)

    with pikepdf.open(io.BytesIO(encrypted), password=password) as pdf:
        assert len(pdf.pages) == rendered.pages
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(encrypted))
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(encrypted), password="01011970")
    assert b"THIS IS NOT A BILL" not in encrypted  # content is not readable without the key
    assert "THIS IS NOT A BILL" in "\n".join(page_strings(encrypted, password)[0])


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf command-line tool not installed")
def test_qpdf_checks_the_encrypted_file(tmp_path: Path) -> None:
    statement = make_statement()
    password = member_password(statement.member, "dob_mmddyyyy")
    target = tmp_path / "statement.pdf"
    target.write_bytes(encrypt_pdf(render_statement(statement), user_password=password,
                                   owner_password=OWNER))
    result = subprocess.run(["qpdf", f"--password={password}", "--check", str(target)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def test_encryption_refuses_passwords_that_would_not_protect_the_file() -> None:
    pdf = render_statement(make_statement(n_lines=1))
    with pytest.raises(EncryptionError):
        encrypt_pdf(pdf, user_password="", owner_password=OWNER)
    with pytest.raises(EncryptionError) as caught:
        encrypt_pdf(pdf, user_password="03071984", owner_password="03071984")
    assert "03071984" not in str(caught.value)


# ------------------------------------------------------------------ passwords


def test_member_password_policies() -> None:
    member = make_member(member_id="M000489876", date_of_birth=date(1984, 3, 7),
                         postal_code="62704-1185")
    assert member_password(member, "dob_mmddyyyy") == "03071984"
    assert member_password(member, "last4_member_zip") == "987662704"
    for broken, policy in ((make_member(date_of_birth=None), "dob_mmddyyyy"),
                           (make_member(postal_code="627"), "last4_member_zip")):
        with pytest.raises(PasswordPolicyError) as caught:
            member_password(broken, policy)
        assert "627" not in str(caught.value) and "Alvarez" not in str(caught.value)


def test_unknown_password_policy_names_the_policy_not_the_member() -> None:
    member = make_member()
    with pytest.raises(UnknownPasswordPolicy) as caught:
        member_password(member, "ssn_last4")
    message = str(caught.value)
    assert "ssn_last4" in message
    for private in (member.member_id, member.last_name, member.first_name, "1984", "62704",
                    member.address_line1):
        assert private not in message


# ------------------------------------------------------------------ what the member reads


def test_english_statement_shows_not_a_bill_amounts_and_masked_id() -> None:
    statement = make_statement()
    pdf = render_statement(statement).pdf
    first_page = "\n".join(page_strings(pdf)[0])
    text = joined_words(pdf)

    assert "Explanation of Benefits" in first_page
    assert "THIS IS NOT A BILL" in first_page
    assert "November 2026" in first_page
    assert "December 1, 2026" in first_page  # the statement date, its month spelled out
    assert "Evergreen PPO Gold" in first_page and "GRP-004417" in first_page
    assert f"{statement.member.first_name} {statement.member.last_name}" in first_page
    assert mask_member_id(statement.member.member_id) in first_page
    assert statement.member.member_id not in text  # only the last 4 characters are printed
    assert format_money(statement.total_member_owes) in first_page
    assert format_money(statement.total("billed")) in first_page
    assert format_money(statement.total("plan_paid")) in first_page
    for line in statement.lines:
        assert line.claim_id in text
        assert format_money(line.member_owes) in text


def test_spanish_member_gets_a_spanish_statement() -> None:
    statement = make_statement(language="es")
    text = joined_words(render_statement(statement).pdf)
    assert "ESTO NO ES UNA FACTURA" in text
    assert "Explicación de Beneficios" in text
    assert "noviembre de 2026" in text
    assert "Usted podría deber" in text
    assert "THIS IS NOT A BILL" not in text
    assert format_money(statement.total_member_owes) in text


def test_unsupported_language_falls_back_to_english() -> None:
    statement = make_statement(n_lines=2, member=make_member(language="vi"))
    text = joined_words(render_statement(statement).pdf)
    assert "THIS IS NOT A BILL" in text


def test_money_is_formatted_with_dollar_sign_thousands_and_cents() -> None:
    assert format_money(123456) == "$1,234.56"
    assert format_money(0) == "$0.00"
    assert format_money(5) == "$0.05"
    assert format_money(-250000) == "-$2,500.00"
    assert mask_member_id("M000481234") == "\u2022\u2022\u2022\u2022\u20221234"


def _row_after(strings: list[str], label: str, count: int) -> list[str]:
    index = strings.index(label)
    return strings[index + 1: index + 1 + count]


def test_totals_row_equals_the_sum_of_the_lines() -> None:
    """The statement total row has the table's amount columns (other insurance and "not paid
    (denied)" only when a line has them; the member's share split is under it, see
    tests/render/test_claims_content.py) and reconciles."""
    from pipeline.render.eob.claims_table import amount_columns, total

    statement = make_statement(n_lines=12, denied=2)
    strings = [s for page in page_strings(render_statement(statement).pdf) for s in page]
    columns = amount_columns(statement.lines)
    totals = _row_after(strings, "Total for this statement", len(columns))
    assert totals == [format_money(total(statement.lines, a.field)) for a in columns]
    numbers = (int(t.replace("$", "").replace(",", "").replace(".", "")) for t in totals)
    figures = dict(zip((a.field for a in columns), numbers, strict=True))
    assert figures["billed"] == (figures["discount"] + figures["denied"] + figures["plan_paid"]
                                 + figures["other_payer_paid"] + figures["member_owes"]
                                 + statement.total("pending"))
    assert figures["member_owes"] == sum(statement.total(name) for name in MONEY_FIELDS
                                         if name in ("deductible", "copay", "coinsurance", "not_covered"))


def test_claim_totals_appear_for_multi_line_claims() -> None:
    statement = make_statement(n_lines=12)
    strings = [s for page in page_strings(render_statement(statement).pdf) for s in page]
    claims: dict[str, list[ClaimLine]] = {}
    for line in statement.lines:
        claims.setdefault(line.claim_id, []).append(line)
    multi = [lines for lines in claims.values() if len(lines) > 1]
    assert multi, "the factory should produce at least one multi-line claim"
    assert strings.count("Claim total") == len(multi)
    first_total = _row_after(strings, "Claim total", 1)[0]
    assert first_total == format_money(sum(line.billed for line in multi[0]))


def test_reason_codes_say_who_owes() -> None:
    statement = make_statement(n_lines=8, denied=2)
    text = joined_words(render_statement(statement).pdf)
    assert "What the codes mean" in text
    for reason in statement.reasons:
        assert reason.code in text
    assert "You may owe this amount." in text
    assert "Provider write-off: you do not owe this amount." in text


def test_accumulators_show_progress_and_as_of_date() -> None:
    statement = make_statement()
    text = joined_words(render_statement(statement).pdf)
    deductible = statement.accumulators[0]
    assert "Your progress toward plan limits" in text
    assert "December 1, 2026" in text and "12/01/2026" not in text
    assert "Plan year January 1, 2026 to December 31, 2026; as of November 30, 2026" in text
    assert f"{format_money(deductible.used)} {format_money(deductible.limit)}" in text  # used, then limit


@pytest.mark.parametrize(
    ("plan_type", "deadline"), [
        ("erisa_group", "You have 180 days from the date you receive this statement"),
        ("medicare_advantage", "You have 65 days from the date of this statement"),
        ("medicaid", "You have 60 days from the date of this statement")])
def test_adverse_determination_carries_appeal_rights_with_the_plan_types_deadline(
        plan_type: str, deadline: str) -> None:
    statement = make_statement(n_lines=4, denied=1, plan_type=plan_type)
    assert statement.has_adverse_determination
    text = joined_words(render_statement(statement).pdf).replace("\u2011", "-")
    assert "Important information about your right to appeal" in text
    assert deadline in text
    assert ("independent external review" in text) == (plan_type == "erisa_group")
    assert "(expedited) " in text or "expedited (fast)" in text
    assert "diagnosis and treatment codes for these claims, and what they mean" in text
    assert "Schedule of Benefits, section 2 (Covered services)" in text  # plan provision
    assert ("section 502(a) of ERISA" in text) == (plan_type == "erisa_group")


def test_consumer_assistance_follows_the_members_state() -> None:
    member = make_member(state="CA")
    text = joined_words(render_statement(make_statement(n_lines=3, member=member)).pdf)
    assert "California Department of Managed Health Care" in text


def test_paid_statement_has_no_appeal_section_and_no_surprises_only_when_protected() -> None:
    plain = make_statement(n_lines=3, denied=0)
    assert not plain.has_adverse_determination and not plain.has_no_surprises_protection
    text = joined_words(render_statement(plain).pdf)
    assert "right to appeal" not in text
    assert "surprise medical bills" not in text

    protected = make_statement(n_lines=8)
    assert protected.has_no_surprises_protection
    assert "Your rights and protections against surprise medical bills" in joined_words(
        render_statement(protected).pdf)


def test_language_assistance_and_nondiscrimination_are_always_present() -> None:
    text = joined_words(render_statement(make_statement(n_lines=1, denied=0)).pdf)
    assert "Language assistance and accessible formats" in text
    assert "ATENCIÓN: Si habla español" in text
    assert "PAUNAWA: Kung nagsasalita ka ng Tagalog" in text
    assert "Notice of nondiscrimination" in text
    assert "You can get a free paper copy of this statement" in text


def test_statement_without_claims_still_renders() -> None:
    statement = make_statement(n_lines=0)
    rendered = render_statement(statement)
    text = joined_words(rendered.pdf)
    assert "We did not process any claims for you during this period." in text
    assert rendered.pages >= 1


# ------------------------------------------------------------------ pages and layout


def test_long_statement_repeats_the_table_header_and_numbers_every_page() -> None:
    statement = make_statement(n_lines=120, denied=8)
    rendered = render_statement(statement)
    with pikepdf.open(io.BytesIO(rendered.pdf)) as pdf:
        assert rendered.pages == len(pdf.pages)
    pages = page_strings(rendered.pdf)
    assert rendered.pages >= 4
    for number, strings in enumerate(pages, start=1):
        assert f"Page {number} of {rendered.pages}" in strings
    table_pages = [s for s in pages if any(text.startswith("Provider: ") for text in s)]
    assert len(table_pages) >= 3
    for strings in table_pages:
        assert "Amount" in strings and "billed" in strings  # the repeated column header
    claim_ids = {line.claim_id for line in statement.lines}
    text = all_text(rendered.pdf)
    assert all(claim_id in text for claim_id in claim_ids)
    for strings in pages[1:]:
        assert "THIS IS NOT A BILL" in " ".join(strings)  # running header


def _edge_case_statement() -> Statement:
    long_provider = ("Dr. Alexandra Whitfield-Montgomery-Vanderbilt, Orthopaedic Surgery, Sports "
                     "Medicine and Rehabilitation Associates of the Greater Metropolitan Area "
                     "Professional Corporation") * 2
    member = make_member(
        first_name="Maximiliana Guadalupe Anastasia Esperanza",
        last_name="Hernández-Villanueva de la Santísima Trinidad y Nguyễn-Łukasiewicz",
        address_line1="12345 North Very Long Boulevard Name That Goes On And On Extension",
        address_line2="Building 7, Suite 1200, Care of the Residential Services Office",
    )
    lines = [
        make_line(claim_id="C-ZERO", provider_name=long_provider, discount=0, plan_paid=0,
                  copay=0, reason_code=""),
        make_line(claim_id="C-DENIED", line_no=1, status="denied", reason_code="CO-50",
                  service_description="Supercalifragilisticexpialidociousprocedurewithoutspaces"
                                      "thatmustbreakacrosslines" * 2,
                  discount=48000, plan_paid=0, copay=0),
        make_line(claim_id="C-DENIED", line_no=2, status="denied", reason_code="PR-204",
                  discount=1000, plan_paid=0, copay=0, not_covered=123456789),
    ]
    base = make_statement(n_lines=0, member=member)
    return dataclasses.replace(base, lines=lines, has_adverse_determination=True)


def test_extreme_names_zero_dollar_and_denied_claims_stay_on_the_page() -> None:
    statement = _edge_case_statement()
    for variant in ("email", "print"):
        pdf = render_statement(statement, variant=variant).pdf
        right_edge = PAGE_WIDTH - 0.5 * inch + 0.5
        for page in shown_text(pdf):
            for item in page:
                assert item.x >= 0.1 * inch, item
                assert item.x + item.width <= right_edge, item
                assert 0 < item.y < PAGE_HEIGHT, item
        text = all_text(pdf)
        assert "Status: Denied" in text
        assert "$1,234,567.89" in text  # a large not-covered amount is printed whole


def words_with_boxes(pdf: Path, page: int) -> list[tuple[str, float, float, float, float]]:
    """`pdftotext -bbox` words of one page: (text, left, bottom, right, top) in PDF points from
    the sheet's bottom-left (pdftotext measures from the top-left)."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    found = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                       r"([^<]*)</word>", html)
    return [(unescape(word), float(x0), PAGE_HEIGHT - float(y1), float(x1), PAGE_HEIGHT - float(y0))
            for x0, y0, x1, y1, word in found]


def page_pixels(pdf: Path, page: int, dpi: int) -> Image.Image:
    """One page rendered by poppler, in grey levels (0 black, 255 white)."""
    prefix = pdf.with_name(f"{pdf.stem}-page")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-png",
                    "-singlefile", str(pdf), str(prefix)], check=True)
    with Image.open(prefix.with_suffix(".png")) as image:
        return image.convert("L")


def sheet_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """(x, top, width, height) from the sheet's top-left as (left, bottom, right, top) in PDF
    points."""
    x, top, width, height = box
    return x, PAGE_HEIGHT - top - height, x + width, PAGE_HEIGHT - top


@pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
                    reason="needs poppler-utils (.ci/system-packages.txt)")
@pytest.mark.parametrize("language", ["en", "es"])
def test_print_variant_leaves_the_recipient_window_empty_for_the_batch_stamp(
        tmp_path: Path, language: str) -> None:
    """The address block is stamped into the window when the piece is batched
    (tests/paper/test_address_block.py); the render draws nothing there or within 1/8 in of it."""
    x, from_top, width, height = RECIPIENT_WINDOW
    clearance = 0.125 * inch
    left, bottom, right, top = sheet_box((x - clearance, from_top - clearance,
                                          width + 2 * clearance, height + 2 * clearance))
    for statement in (make_statement(language=language),
                      dataclasses.replace(_edge_case_statement(), member=dataclasses.replace(
                          _edge_case_statement().member, language=language))):
        target = tmp_path / f"{language}.pdf"
        target.write_bytes(render_statement(statement, variant="print").pdf)
        words = words_with_boxes(target, 1)
        assert words, "poppler read no text from page 1"
        inside = [w for w, x0, y0, x1, y1 in words if x0 < right and x1 > left and y0 < top and y1 > bottom]
        assert inside == [], "text in the recipient window or its clearance"
        member = statement.member
        page_one = " ".join(w for w, *_ in words)
        for private in (member.address_line1, member.address_line2, member.postal_code):
            assert private not in page_one, "the member's address is stamped at batching only"

        # Every mark, not only text: the window and its clearance are blank paper.
        dpi = 100
        pixels = page_pixels(target, 1, dpi)
        scale = dpi / 72
        box = (math.ceil(left * scale), math.ceil((PAGE_HEIGHT - top) * scale),
               math.floor(right * scale), math.floor((PAGE_HEIGHT - bottom) * scale))
        assert pixels.crop(box).getextrema() == (255, 255), "a mark in the recipient window"

    # What stays: the return address in its window, the insurer's legal name and administrator
    # on page 1 (EOB_CONTENT.md, row 3), clear of the recipient window.
    statement = make_statement(language=language)
    target = tmp_path / "identity.pdf"
    target.write_bytes(render_statement(statement, variant="print").pdf)
    first = shown_text(target.read_bytes())[0]

    def within(item: Shown, window: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = sheet_box(window)
        return x0 <= item.x and item.x + item.width <= x1 and y0 <= item.y <= y1

    returned = [i for i in first if i.text in ("Evergreen Health", "PO Box 30410")]
    assert len(returned) == 2 and all(within(i, RETURN_WINDOW) for i in returned)
    administrator = "Evergreen Benefit Services, LLC"
    identity = [i for i in first if i.text == "Evergreen Mutual Health Insurance Company"
                or i.text.endswith(administrator)]
    assert len(identity) == 2, [i.text for i in first]
    assert all(i.y > top for i in identity), "above the recipient window's clearance"
    printed_copy = {"en": "This is a printed copy of your Explanation of Benefits.",
                    "es": "Esta es una copia impresa de su Explicación de Beneficios."}
    assert printed_copy[language] in joined_words(target.read_bytes())


# ------------------------------------------------------------------ determinism


def test_rendering_twice_gives_identical_bytes() -> None:
    statement = make_statement(n_lines=20, denied=2)
    first = render_statement(statement)
    assert render_statement(statement).pdf == first.pdf
    other = dataclasses.replace(statement, statement_id="st-2026-11-0000000000000000")
    assert render_statement(other).pdf != first.pdf
    with pikepdf.open(io.BytesIO(first.pdf)) as pdf:
        assert str(pdf.docinfo["/CreationDate"]) == "D:20261201000000+00'00'"
        assert str(pdf.docinfo["/Title"]) == "Explanation of Benefits"
        assert statement.member.last_name not in str(pdf.docinfo)  # no PHI in metadata


def test_a_fresh_process_renders_the_same_bytes() -> None:
    statement = make_statement(language="es")
    expected = render_statement(statement, variant="print").pdf
    script = (
        "import sys, hashlib; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "from tests.support.factories import make_statement;"
        "from pipeline.render import render_statement;"
        "pdf = render_statement(make_statement(language='es'), variant='print').pdf;"
        "print(hashlib.sha256(pdf).hexdigest())"
    )
    result = subprocess.run([sys.executable, "-c", script, str(REPO / "tests"), str(REPO)],
                            capture_output=True, text=True, check=True, cwd=REPO)
    import hashlib

    assert result.stdout.strip() == hashlib.sha256(expected).hexdigest()


# ------------------------------------------------------------------ templates


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, target)
    return target


def test_missing_template_key_names_file_and_key(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    en = templates / "statement" / "en.toml"
    en.write_text(en.read_text(encoding="utf-8").replace(
        'not_a_bill = "THIS IS NOT A BILL"\n', ""), encoding="utf-8")
    statement = make_statement(n_lines=2)
    try:
        with pytest.raises(TemplateError) as caught:
            render_statement(statement, templates_dir=templates)
    finally:
        clear_caches()
    message = str(caught.value)
    assert "en.toml" in message and "header.not_a_bill" in message
    assert statement.statement_id in message
    assert statement.member.last_name not in message


def test_unknown_placeholder_and_unknown_plan_type_fail_loudly(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    en = templates / "statement" / "en.toml"
    en.write_text(en.read_text(encoding="utf-8").replace(
        'heading = "Questions?"', 'heading = "Questions? Call {{ fax_number }}"'),
        encoding="utf-8")
    try:
        with pytest.raises(TemplateError) as caught:
            render_statement(make_statement(n_lines=2), templates_dir=templates)
        assert "contact.heading" in str(caught.value) and "fax_number" in str(caught.value)

        odd = make_statement(n_lines=2, plan_type="stop_loss")
        with pytest.raises(TemplateError) as caught:
            render_statement(odd)
        assert "plan_rules.toml" in str(caught.value)
        assert "plans.stop_loss" in str(caught.value)
    finally:
        clear_caches()


def test_template_text_with_markup_characters_is_printed_literally(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    en = templates / "statement" / "en.toml"
    en.write_text(en.read_text(encoding="utf-8").replace(
        'heading = "Questions?"', 'heading = "Questions? <b>Tom & Jerry</b> (24/7) \\\\ ok"'),
        encoding="utf-8")
    try:
        text = all_text(render_statement(make_statement(n_lines=1), templates_dir=templates).pdf)
    finally:
        clear_caches()
    assert "Questions? <b>Tom & Jerry</b> (24/7) \\ ok" in text


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant"):
        render_statement(make_statement(n_lines=1), variant="fax")


# ------------------------------------------------------------------ the two-page statement


def _text_on_halves(strings: list[Shown]) -> tuple[int, int]:
    middle = PAGE_WIDTH / 2
    return (sum(1 for item in strings if item.x < middle),
            sum(1 for item in strings if item.x >= middle))


@pytest.mark.parametrize("language", ["en", "es"])
def test_typical_statement_shows_claims_then_codes_then_rights(language: str) -> None:
    """8 lines with a denial and a No Surprises claim: claims from page 1, then the codes and
    the accumulators, then the legal text in two columns (8 pt since issue 17: no longer two
    pages, at most four)."""
    statement = make_statement(n_lines=8, denied=1, language=language)
    rendered = render_statement(statement)
    assert rendered.pages <= 4
    pages = shown_text(rendered.pdf)
    first_text = " ".join(item.text for item in pages[0])
    assert statement.lines[0].claim_id in first_text
    text = " ".join(" ".join(item.text for page in pages for item in page).split())
    english = language == "en"
    codes = text.index("What the codes mean" if english else "Qué significan los códigos")
    rights = text.index("right to appeal" if english else "derecho a apelar")
    assert text.index(statement.lines[-1].claim_id) < codes < rights
    assert "No Surprises" in text[rights:]
    assert ("ATENCIÓN" if english else "ATTENTION: If you speak English") in text[rights:]
    assert "PAUNAWA" in text[rights:]
    assert ("Notice of nondiscrimination" if english else "no discriminación") in text[rights:]
    # the legal text is set in two columns (on the last page, or the one before when its end
    # flows over: the codes table's length, remark codes included, moves the break)
    halves = [_text_on_halves([item for item in page if 0.7 * inch < item.y < PAGE_HEIGHT - 1.5 * inch])
              for page in pages[-2:]]
    assert any(left > 5 and right > 5 for left, right in halves), halves


@pytest.mark.parametrize("n_lines", [0, 3, 9, 14, 19, 27, 41])
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_size_of_statement_stays_inside_the_page(n_lines: int, language: str) -> None:
    rendered = render_statement(make_statement(n_lines=n_lines, denied=min(2, n_lines),
                                               language=language))
    pages = shown_text(rendered.pdf)
    assert len(pages) == rendered.pages
    for number, page in enumerate(pages, start=1):
        footer = [item for item in page if item.text == (
            f"Page {number} of {rendered.pages}" if language == "en"
            else f"Página {number} de {rendered.pages}")]
        assert len(footer) == 1
        for item in page:
            assert 0.3 * inch <= item.x and item.x + item.width <= PAGE_WIDTH - 0.5 * inch + 0.5
            if item is not footer[0] and "Statement st-" not in item.text and (
                    "Estado de cuenta st-" not in item.text):
                assert 0.7 * inch - 1 <= item.y <= PAGE_HEIGHT - 0.5 * inch, item


def test_fast_date_formatting_matches_strftime() -> None:
    from pipeline.render.eob.words import date_formatter

    for pattern in ("%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%d %B %Y"):
        for day in (date(2026, 1, 5), date(1999, 12, 31)):
            assert date_formatter(pattern)(day) == day.strftime(pattern)


def test_placeholder_fast_path_prints_what_jinja_prints() -> None:
    import jinja2

    from pipeline.templates import TemplateFile, statement_text

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    context = {name: f"<{name}&(1)>" for name in (
        "legal_name", "short_name", "plan_administrator", "plan_name", "phone", "tty", "hours",
        "website", "appeal_days", "appeal_address", "appeal_fax", "appeal_portal",
        "external_review_name", "external_review_phone", "external_review_website",
        "consumer_name", "consumer_phone", "consumer_website", "period", "statement_date",
        "statement_id", "month", "year", "count", "claim_id", "date", "name", "relationship",
        "status", "used", "limit", "remaining", "code", "provision", "page", "pages", "this_document",
        "your_document", "replaces_id", "replaces_date", "appeal_start",
        "decision_days_pre_service", "decision_days_post_service", "expedited_hours",
        "fair_hearing_days", "fair_hearing_name", "fair_hearing_phone", "fair_hearing_website",
        "parts", "amount", "codes", "reference", "start", "end", "tier", "network")}
    def walk(file: TemplateFile, node: object, key: str) -> int:
        if isinstance(node, dict):
            return sum(walk(file, value, f"{key}.{name}" if key else name)
                       for name, value in node.items())
        if isinstance(node, str) and "{{" in node:
            assert file.text(key, context) == environment.from_string(node).render(
                context).strip(), key
            return 1
        return 0

    checked = sum(walk(statement_text(language), statement_text(language)._data, "")  # noqa: SLF001
                  for language in ("en", "es", "zh-Hant"))
    assert checked > 40


def test_brand_logo_is_drawn_and_a_bad_logo_names_the_key(tmp_path: Path) -> None:
    rendered = render_statement(make_statement(n_lines=2))
    with pikepdf.open(io.BytesIO(rendered.pdf)) as pdf:
        logo = pdf.pages[0].Resources.XObject["/Logo"]
        assert logo.Subtype == "/Image" and logo.Filter == "/DCTDecode"
        assert int(logo.Width) > 0 and int(logo.Height) > 0
    templates = _copy_templates(tmp_path)
    brand_file = templates / "brands" / "default.toml"
    brand_file.write_text(brand_file.read_text(encoding="utf-8").replace(
        'logo = "default-logo.jpg"', 'logo = "missing.jpg"'), encoding="utf-8")
    try:
        with pytest.raises(TemplateError) as caught:
            render_statement(make_statement(n_lines=1), templates_dir=templates)
        assert "identity.logo" in str(caught.value) and "default.toml" in str(caught.value)
        brand_file.write_text(brand_file.read_text(encoding="utf-8").replace(
            'logo = "missing.jpg"\n', ""), encoding="utf-8")
        clear_caches()  # templates are read once per process
        plain = render_statement(make_statement(n_lines=1), templates_dir=templates)
        assert "Evergreen Health" in all_text(plain.pdf)  # text-only letterhead
    finally:
        clear_caches()
