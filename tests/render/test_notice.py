"""The prompt notice of an adverse benefit determination: one claim, read back with poppler and
opened with qpdf, as a member's PDF reader would."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from reportlab.lib.units import inch

from pipeline.model import ReasonExplanation, Statement
from pipeline.render import (
    RenderError,
    encrypt_pdf,
    format_money,
    mask_member_id,
    member_password,
    render_notice,
)
from pipeline.render.canvas import PAGE_HEIGHT, PAGE_WIDTH
from tests.render.test_eob import shown_text
from tests.support.factories import REASONS, make_line, make_statement

OWNER = "owner-secret-for-tests"
PAID, DENIED, PARTIAL = "C2611000101", "C2611000102", "C2611000103"

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="needs poppler-utils (.ci/system-packages.txt)")
needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None,
                                reason="qpdf command-line tool not installed")


def three_claims(language: str = "en", **member: Any) -> Statement:
    """A paid visit, a denied MRI (CO-50) and a partly paid lab claim (PR-2, PR-204), each from
    its own provider; flagged for No Surprises as a statement with an emergency claim would be."""
    base = make_statement(n_lines=0, language=language)
    if member:
        base = dataclasses.replace(base, member=dataclasses.replace(base.member, **member))
    patient = f"{base.member.first_name} {base.member.last_name}"
    lines = [
        make_line(claim_id=PAID, provider_name="Riverside Family Medicine", patient_name=patient),
        make_line(claim_id=DENIED, provider_name="Lakeside Imaging Associates",
                  patient_name=patient, status="denied", reason_code="CO-50",
                  service_code="73721", service_description="MRI of knee", discount=185000,
                  plan_paid=0, copay=0),
        make_line(claim_id=PARTIAL, provider_name="Metro Clinical Laboratory",
                  patient_name=patient, service_code="85025",
                  service_description="Blood count, complete", reason_code="PR-2",
                  discount=1200, plan_paid=2600, copay=0, coinsurance=650),
        make_line(claim_id=PARTIAL, line_no=2, provider_name="Metro Clinical Laboratory",
                  patient_name=patient, status="denied", reason_code="PR-204",
                  service_code="11102", service_description="Skin biopsy", discount=12000,
                  plan_paid=0, copay=0, not_covered=18000),
    ]
    reasons = []
    for code in sorted({line.reason_code for line in lines}):
        may_owe, provision, _, _ = REASONS[code]
        reasons.append(ReasonExplanation(code, reason_text(code, base.member.language), may_owe,
                                         provision))
    return dataclasses.replace(base, lines=lines, reasons=reasons,
                               has_adverse_determination=True,
                               has_no_surprises_protection=True)


def pdf_text(pdf: bytes, folder: Path, password: str = "") -> str:
    """What poppler reads, in drawing order (table cells whole), with line breaks removed so
    wrapped sentences can be searched whole."""
    target = folder / "notice.pdf"
    target.write_bytes(pdf)
    command = ["pdftotext", "-raw", *(["-upw", password] if password else []), str(target), "-"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return " ".join(result.stdout.replace("\u2011", "-").split())  # phones: non-breaking


def reason_text(code: str, language: str = "en") -> str:
    """A reason's plain-language meaning as the reason table words it (English fallback)."""
    _, _, english, spanish = REASONS[code]
    return spanish if language == "es" else english


# ------------------------------------------------------------------ what the member reads


@needs_poppler
def test_denied_claim_notice_shows_the_claim_its_reason_and_the_appeal_rights(
        tmp_path: Path) -> None:
    statement = three_claims()
    rendered = render_notice(statement, DENIED)
    text = pdf_text(rendered.pdf, tmp_path)

    assert "Notice of adverse benefit determination" in text
    assert "THIS IS NOT A BILL" in text
    assert "Evergreen Health" in text and "Evergreen Mutual Health Insurance Company" in text
    assert "1-800-555-0142 (TTY 711)" in text
    assert mask_member_id(statement.member.member_id) in text
    assert statement.member.member_id not in text
    assert "Jordan Alvarez" in text and "1428 Maple Ave" in text  # recipient block (email)
    assert DENIED in text
    assert "Provider: Lakeside Imaging Associates" in text and "In network" in text
    assert "November 4, 2026" in text and "MRI of knee (73721)" in text
    assert "Status: Denied" in text
    denied = statement.lines[1]
    assert format_money(denied.billed) in text and format_money(denied.allowed) in text
    # the specific reason, in plain words, and the plan provision relied on
    assert f"CO-50 {reason_text('CO-50')}" in text
    assert "Certificate of Coverage, section 4.2 (Medical necessity)" in text
    assert "Provider write-off: you do not owe this amount." in text
    # the statement's appeal rights, word for word
    assert ("You have 180 days from the date you receive this notice to ask us to review "
            "(appeal) our decision.") in text
    # the shared appeal wording names this document, not the monthly statement
    assert "this statement" not in text and "Please check this notice carefully" in text
    assert "independent external review" in text
    assert "section 502(a) of ERISA" in text
    assert "Employee Benefits Security Administration (EBSA)" in text
    assert "ATENCIÓN: Si habla español" in text
    assert f"Notice about claim {DENIED}, statement {statement.statement_id}" in text

    # nothing of the member's other claims
    for other in (PAID, PARTIAL, "Riverside Family Medicine", "Metro Clinical Laboratory",
                  reason_text("PR-204"), "Schedule of Benefits", "PR-2"):
        assert other not in text, other
    assert "surprise medical bills" not in text  # the statement's flag is not this claim's


@needs_poppler
def test_a_claim_with_a_protected_line_carries_the_no_surprises_text(tmp_path: Path) -> None:
    statement = three_claims()
    protected = dataclasses.replace(statement.lines[1], no_surprises=True, network="out")
    statement = dataclasses.replace(statement, lines=[statement.lines[0], protected,
                                                      *statement.lines[2:]])
    text = pdf_text(render_notice(statement, DENIED).pdf, tmp_path)
    assert "surprise medical bills" in text  # the section the line's mark points to
    assert "surprise medical bills" not in pdf_text(render_notice(statement, PARTIAL).pdf, tmp_path)


@needs_poppler
def test_partly_paid_claim_shows_every_line_its_codes_and_the_claim_total(
        tmp_path: Path) -> None:
    statement = three_claims()
    text = pdf_text(render_notice(statement, PARTIAL).pdf, tmp_path)
    lines = statement.lines[2:]
    assert "Status: Partially paid" in text
    assert f"PR-204 {reason_text('PR-204')}" in text
    assert f"PR-2 {reason_text('PR-2')}" in text
    assert "Schedule of Benefits, section 2 (Covered services)" in text
    assert f"Claim total {format_money(sum(line.billed for line in lines))}" in text
    assert format_money(sum(line.member_owes for line in lines)) in text
    for other in (PAID, DENIED, "Lakeside Imaging Associates", reason_text("CO-50")):
        assert other not in text, other


@needs_poppler
def test_spanish_member_gets_a_spanish_notice(tmp_path: Path) -> None:
    statement = three_claims(language="es")
    text = pdf_text(render_notice(statement, DENIED).pdf, tmp_path)
    assert "Aviso de determinación adversa de beneficios" in text
    assert "ESTO NO ES UNA FACTURA" in text
    assert f"Denegamos o redujimos el pago de la reclamación {DENIED}." in text
    assert "Estado: Denegada" in text
    assert f"CO-50 {reason_text('CO-50', 'es')}" in text
    assert "Tiene 180 días a partir de la fecha en que reciba este aviso" in text
    assert "4 de noviembre de 2026" in text and "04/11/2026" not in text  # month spelled out
    for english in ("THIS IS NOT A BILL", "Notice of adverse benefit determination",
                    "How to appeal"):
        assert english not in text


@needs_poppler
def test_unsupported_language_falls_back_to_english(tmp_path: Path) -> None:
    text = pdf_text(render_notice(three_claims(language="vi"), DENIED).pdf, tmp_path)
    assert "Notice of adverse benefit determination" in text


@needs_poppler
def test_deadline_and_erisa_sentence_follow_the_plan_type(tmp_path: Path) -> None:
    statement = dataclasses.replace(
        three_claims(line_of_business="medicare_advantage", state="CA"),
        plan_type="medicare_advantage")
    text = pdf_text(render_notice(statement, DENIED).pdf, tmp_path)
    assert "You have 65 days from the date of this notice to ask us for a reconsideration" in text
    assert "Independent Review Entity" in text and "1-800-MEDICARE" in text
    assert "ERISA" not in text and "Department of Labor" not in text
    assert "Health Insurance Counseling and Advocacy Program (HICAP)" in text


@needs_poppler
def test_print_variant_leaves_the_address_to_the_batch_stamp(tmp_path: Path) -> None:
    statement = three_claims()
    text = pdf_text(render_notice(statement, DENIED, variant="print").pdf, tmp_path)
    assert "PO Box 30410" in text  # the return address, in the upper window
    assert "This is a printed copy" in text
    for private in ("1428 Maple Ave", "62704"):
        assert private not in text
    assert DENIED in text and "THIS IS NOT A BILL" in text


@needs_poppler
def test_a_long_claim_flows_over_pages_with_a_running_header(tmp_path: Path) -> None:
    base = three_claims()
    many = [make_line(claim_id=DENIED, line_no=number, status="denied", reason_code="CO-50",
                      provider_name="Lakeside Imaging Associates", discount=9000, plan_paid=0,
                      copay=0) for number in range(1, 61)]
    statement = dataclasses.replace(base, lines=[base.lines[0], *many])
    rendered = render_notice(statement, DENIED)
    assert rendered.pages >= 3
    text = pdf_text(rendered.pdf, tmp_path)
    assert "Notice of adverse benefit determination (continued) · THIS IS NOT A BILL" in text
    assert "Claim total" in text and "(continued)" in text
    for number in range(1, rendered.pages + 1):
        assert f"Page {number} of {rendered.pages}" in text
    for page in shown_text(rendered.pdf):  # nothing leaves the sheet's margins
        for item in page:
            assert 0.3 * inch <= item.x and item.x + item.width <= PAGE_WIDTH - 0.5 * inch + 0.5
            assert 0 < item.y < PAGE_HEIGHT, item


# ------------------------------------------------------------------ protection and bytes


@needs_qpdf
@needs_poppler
def test_encrypted_notice_opens_with_the_members_password_only(tmp_path: Path) -> None:
    statement = three_claims()
    password = member_password(statement.member, "member_id_dob")
    encrypted = tmp_path / "encrypted.pdf"
    encrypted.write_bytes(encrypt_pdf(render_notice(statement, DENIED),
                                      user_password=password, owner_password=OWNER))
    plain = tmp_path / "decrypted.pdf"

    refused = subprocess.run(["qpdf", "--decrypt", str(encrypted), str(plain)],
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "password" in refused.stderr.lower()
    opened = subprocess.run(["qpdf", f"--password={password}", "--decrypt", str(encrypted),
                             str(plain)], capture_output=True, text=True, check=False)
    assert opened.returncode == 0, opened.stderr
    text = pdf_text(plain.read_bytes(), tmp_path)
    assert DENIED in text and "THIS IS NOT A BILL" in text
    assert b"THIS IS NOT A BILL" not in encrypted.read_bytes()


def test_rendering_twice_gives_identical_bytes_without_member_data_in_metadata() -> None:
    statement = three_claims()
    for variant in ("email", "print"):
        first = render_notice(statement, DENIED, variant=variant)
        assert render_notice(three_claims(), DENIED, variant=variant).pdf == first.pdf
    assert render_notice(statement, PARTIAL).pdf != render_notice(statement, DENIED).pdf
    with pikepdf.open(io.BytesIO(render_notice(statement, DENIED).pdf)) as pdf:
        info = str(pdf.docinfo)
        assert str(pdf.docinfo["/Title"]) == "Notice of adverse benefit determination"
    for private in (statement.member.last_name, statement.member.member_id, DENIED):
        assert private not in info


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("claim_id", "problem"), [(PAID, "no adverse benefit determination"),
                                                   ("C2699999999", "no such claim")])
def test_paid_or_unknown_claim_is_refused_without_member_data(claim_id: str,
                                                              problem: str) -> None:
    statement = three_claims()
    with pytest.raises(RenderError) as caught:
        render_notice(statement, claim_id)
    message = str(caught.value)
    assert claim_id in message and problem in message
    member = statement.member
    for private in (member.first_name, member.last_name, member.member_id,
                    member.address_line1, "Riverside Family Medicine"):
        assert private not in message


def test_a_denial_without_an_explained_reason_is_refused() -> None:
    statement = three_claims()
    unexplained = dataclasses.replace(statement, reasons=[
        reason for reason in statement.reasons if reason.code != "CO-50"])
    with pytest.raises(RenderError, match="CO-50") as caught:
        render_notice(unexplained, DENIED)
    assert statement.member.last_name not in str(caught.value)


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant"):
        render_notice(three_claims(), DENIED, variant="fax")


# ------------------------------------------------------------------ a paid claim with a reduction


def reduced_paid_claim(language: str = "en") -> Statement:
    """A paid claim whose payment a reduction code lowered (CO-59, multiple procedures, with the
    remark N19): paid, yet an adverse benefit determination."""
    from pipeline.compose.reasons import explain_reason, statement_codes
    from pipeline.model import Adjustment

    base = make_statement(n_lines=0, language=language)
    line = make_line(claim_id=REDUCED, status="paid", reason_code="PR-3", discount=2000, denied=3000,
                     plan_paid=9000, copay=3000,
                     adjustments=(Adjustment("CO", "45", 2000), Adjustment("CO", "59", 3000, "N19"),
                                  Adjustment("PR", "3", 3000)))
    return dataclasses.replace(base, lines=[line], has_adverse_determination=True,
                               reasons=[explain_reason(code, language) for code in statement_codes([line])])


REDUCED = "C2611000104"


@needs_poppler
def test_a_paid_claim_with_a_reduction_code_gets_a_notice_explaining_the_reduction(tmp_path: Path) -> None:
    """Before: compose flagged the claim (it is adverse) and the notice refused it as "paid in
    full", so the member was never told of the reduction nor of the right to appeal it."""
    text = pdf_text(render_notice(reduced_paid_claim(), REDUCED).pdf, tmp_path)
    assert "CO-59" in text and "N19" in text
    assert "We paid less for this service because it was done together with another procedure" in text
    assert "Schedule of Benefits, section 5 (Multiple procedures)" in text
    assert "This service is part of the main procedure done at the same time" in text  # N19
    assert "How to appeal" in text


@needs_poppler
def test_a_chinese_notice_gives_the_reduction_and_its_provision_in_chinese(tmp_path: Path) -> None:
    text = pdf_text(render_notice(reduced_paid_claim("zh-Hant"), REDUCED).pdf, tmp_path).replace(" ", "")
    assert "由於此項服務與同次就診的另一項手術一併進行，我們減少了給付金額。" in text
    assert "福利表（ScheduleofBenefits）第5節（多項手術）" in text
    assert "此項服務是同時進行的主要手術的一部分，不另行給付。" in text  # N19
    assert "We paid less" not in text and "Multiple procedures" not in text


# ------------------------------------------------------------------ the statement's table, words and sizes

MIXED = "C2611000105"
MONEY = r"-?\$[\d,]+\.\d\d"


def mixed_claim(**member: Any) -> Statement:
    """A partly paid line with every group: the contracted discount (CO-45), a reduction by the
    plan (PI-50, $30 not paid), the other plan's payment (OA-23) and coinsurance (PR-2):
    $130 billed = $40 discount + $30 denied + $20 other insurance + $30 plan paid + $10 you may owe."""
    from pipeline.compose.reasons import explain_reason, statement_codes
    from pipeline.model import Adjustment

    base = make_statement(n_lines=0)
    if member:
        base = dataclasses.replace(base, member=dataclasses.replace(base.member, **member))
    line = make_line(claim_id=MIXED, status="partial", reason_code="PI-50", discount=4000, denied=3000,
                     other_payer_paid=2000, plan_paid=3000, copay=0, coinsurance=1000,
                     adjustments=(Adjustment("CO", "45", 4000), Adjustment("PI", "50", 3000),
                                  Adjustment("OA", "23", 2000), Adjustment("PR", "2", 1000)))
    assert line.billed == 13000
    language = base.member.language
    return dataclasses.replace(base, lines=[line], has_adverse_determination=True,
                               reasons=[explain_reason(code, language) for code in statement_codes([line])])


def _reason_rows(text: str, codes: Sequence[str]) -> dict[str, str]:
    """Each code's row of the notice's reasons table, as poppler reads it."""
    table = text[text.index("The reasons for our decision"):]
    table = table[:table.index("How to appeal")] if "How to appeal" in table else table
    starts = sorted((table.index(f"{code} "), code) for code in codes)
    ends = [start for start, _ in starts[1:]] + [len(table)]
    return {code: table[start:end] for (start, code), end in zip(starts, ends, strict=True)}


@needs_poppler
def test_notice_says_who_pays_by_the_codes_group_as_the_statement_does(tmp_path: Path) -> None:
    """Before: the notice worded "who pays" from `member_may_owe`, so OA-23 on a line where the
    member owes coinsurance read "Provider write-off: you do not owe this amount", and so did PI-50."""
    text = pdf_text(render_notice(mixed_claim(), MIXED).pdf, tmp_path)
    rows = _reason_rows(text, ["CO-45", "OA-23", "PI-50", "PR-2"])
    assert "Your other plan's part: shown for your information." in rows["OA-23"]
    assert "you do not owe" not in rows["OA-23"].lower()
    assert "Reduced by the plan: you do not owe this amount." in rows["PI-50"]
    assert "Provider write-off" not in rows["PI-50"]
    assert "Provider write-off: you do not owe this amount." in rows["CO-45"]
    assert "You may owe this amount." in rows["PR-2"]


def test_one_who_pays_table() -> None:
    """Before: claims.py kept a copy of the group table the reason table is checked against."""
    from pipeline import reason_codes
    from pipeline.render.eob import claims

    assert getattr(claims, "WHO_PAYS", reason_codes.WHO_PAYS) is reason_codes.WHO_PAYS


@needs_poppler
def test_notice_row_shows_the_denied_amount_and_reconciles(tmp_path: Path) -> None:
    """Before: the notice's table had no "Not paid (denied)" column, so $130 billed read as
    $40 discount + $90 allowed and the $30 denial was nowhere."""
    from pipeline.render.eob.claims_table import amount_columns

    statement = mixed_claim()
    line = statement.lines[0]
    text = pdf_text(render_notice(statement, MIXED).pdf, tmp_path)
    assert "Not paid (denied)" in text
    columns = [a.field for a in amount_columns(statement.lines)]
    assert "denied" in columns
    row = text[text.index(f"({line.service_code})"):]
    figures = [int(m.replace("$", "").replace(",", "").replace(".", "")) for m in re.findall(MONEY, row)]
    shown = dict(zip(columns, figures[:len(columns)], strict=True))
    assert shown["denied"] == 3000
    assert shown["billed"] == (shown["discount"] + shown["denied"] + shown["plan_paid"]
                               + shown.get("other_payer_paid", 0) + shown["member_owes"]) == 13000
    assert "PI-50 $30.00" in text  # the detail row's adjustments, as on the statement


def text_sizes(pdf: bytes) -> dict[float, int]:
    """How many strings are shown at each size in points, read from the content streams (Tf,
    scaled by the text matrix and any cm), following form XObjects (the shared legal text)."""
    found: dict[float, int] = {}

    def walk(stream: Any, resources: Any, scale: float) -> None:
        forms = {str(name): form for name, form in resources.get("/XObject", {}).items()}
        stack, size, matrix = [], 0.0, 1.0
        for instruction in pikepdf.parse_content_stream(stream):
            operands, op = instruction.operands, str(instruction.operator)
            if op == "q":
                stack.append(scale)
            elif op == "Q":
                scale = stack.pop()
            elif op == "cm":
                scale *= float(operands[0])
            elif op == "Tm":
                matrix = float(operands[0])
            elif op == "Tf":
                size = float(operands[1])
            elif op == "Do":
                form = forms[str(operands[0])]
                if form.Subtype == "/Form":
                    walk(form, form.get("/Resources", resources), scale)
            elif op in ("Tj", "TJ"):
                parts = operands[0] if op == "TJ" else [operands[0]]
                raw = b"".join(bytes(p) for p in parts if isinstance(p, pikepdf.String))
                if raw.strip():
                    key = round(size * scale * matrix, 2)
                    found[key] = found.get(key, 0) + 1

    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            walk(page, page.Resources, 1.0)
    return found


@pytest.mark.parametrize(("large_print", "floor"), [(False, 8.0), (True, 16.0)])
@pytest.mark.parametrize("claim", [DENIED, PARTIAL, MIXED])
def test_no_notice_text_is_smaller_than_the_floor(claim: str, large_print: bool, floor: float) -> None:
    """Before: the notice's claim table was set at 7 down to 5.5 pt (headers half a point less),
    and in large print the table and the reasons heading stayed small."""
    statement = mixed_claim(large_print=large_print) if claim == MIXED else three_claims(
        large_print=large_print)
    sizes = text_sizes(render_notice(statement, claim).pdf)
    assert sizes and min(sizes) >= floor, sizes


@needs_poppler
def test_large_print_notice_shows_every_amount_of_the_claim(tmp_path: Path) -> None:
    statement = mixed_claim(large_print=True)
    text = pdf_text(render_notice(statement, MIXED).pdf, tmp_path)
    for figure in ("$130.00", "$40.00", "$30.00", "$20.00", "$10.00"):
        assert figure in text
    assert "Not paid (denied)" in text and "PI-50 $30.00" in text
