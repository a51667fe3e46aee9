"""Content checklist rows (docs/statements.md, "Every element of the content checklist": rows 3,
4, 6, 7, 9, 10, 13, 20, 21, 25, 34 and 36), checked the way a compliance officer reads the page.

Each test renders the typical statement (tests/support/factories.make_statement: 8 lines, one
denied, one reduced, a spouse's claims, out-of-network emergency care), reads it back with
poppler, and compares it with the statement's own data, the brand file
(templates/brands/<brand>.toml) and the statement wording (templates/statement/en.toml). The
wording is read from those files and filled in here, so nothing in this module copies it.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pipeline.model import ClaimLine, Statement
from pipeline.render import render_statement
from pipeline.templates import DEFAULT_TEMPLATES_DIR
from tests.support.factories import make_statement

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="needs poppler-utils (.ci/system-packages.txt)")

LANGUAGE = "en"
MONEY = r"-?\$[\d,]+\.\d\d"
NOT_DECIDED = "\u2014"  # the allowed amount of a pended line: not decided yet
NSA_MARK = "\u2020"  # follows the service of a line the No Surprises Act protects
# The claims table's amount columns in the order they are printed, with their header keys;
# "denied" and "other_payer_paid" only when a line of the statement has them.
AMOUNT_COLUMNS = (("billed", "claims.col_billed"), ("discount", "claims.col_discount"),
                  ("denied", "claims_detail.col_denied"), ("allowed", "claims.col_allowed"),
                  ("other_payer_paid", "claims.col_other"), ("plan_paid", "claims.col_plan_paid"),
                  ("member_owes", "claims.col_you_may_owe"))
OPTIONAL_COLUMNS = frozenset({"denied", "other_payer_paid"})
# An ICD-10-CM code, with or without its dot (pipeline/sensitive_services.py).
ICD10 = re.compile(r"\b[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?\b")


# ------------------------------------------------------------------ the sources: templates


def _toml(*parts: str) -> dict[str, Any]:
    return tomllib.loads(DEFAULT_TEMPLATES_DIR.joinpath(*parts).read_text(encoding="utf-8"))


@cache
def wording() -> dict[str, Any]:
    return _toml("statement", f"{LANGUAGE}.toml")


@cache
def brand_file(name: str) -> dict[str, Any]:
    return _toml("brands", f"{name}.toml")


def words(key: str) -> Any:
    """A value of the statement wording by its dotted key, e.g. "adverse.more_info"."""
    node: Any = wording()
    for part in key.split("."):
        node = node[part]
    return node


def fill(source: str, **values: str) -> str:
    """A template string with its {{ placeholders }} filled in; every one must have a value."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no value for {{{{ {name} }}}} in {source!r}"
        return values[name]

    return re.sub(r"\{\{\s*(\w+)\s*\}\}", value, source)


def placeholders(statement: Statement) -> dict[str, str]:
    """What the statement's wording may say about the insurer: from its brand file."""
    brand = brand_file(statement.plan.brand)
    identity, review = brand["identity"], brand["external_review"]
    hours = identity["hours"] if isinstance(identity["hours"], str) else identity["hours"][LANGUAGE]
    return {
        "legal_name": identity["legal_name"], "short_name": identity["short_name"],
        "plan_administrator": identity["plan_administrator"], "phone": identity["phone"],
        "tty": identity["tty"], "hours": hours, "website": identity["website"],
        "plan_name": statement.plan.plan_name,
        "this_document": words("meta.this_document"), "your_document": words("meta.your_document"),
        "external_review_name": review["name"], "external_review_phone": review["phone"],
        "external_review_website": review["website"],
    }


def spelled(day: date) -> str:
    """A date as the language file writes it (`meta.date_format`, its own month names)."""
    return (words("meta.date_format").replace("%B", words("meta.months")[day.month - 1])
            .replace("%-d", str(day.day)).replace("%Y", f"{day.year:04d}"))


def remark_text(code: str) -> str:
    """A remark code's meaning in the newest version of templates/remark_codes.csv."""
    with (DEFAULT_TEMPLATES_DIR / "remark_codes.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["code"] == code]
    assert rows, f"remark code {code} is not in templates/remark_codes.csv"
    newest = max(rows, key=lambda row: tuple(int(p) for p in row["table_version"].split(".")))
    return newest[f"text_{LANGUAGE}"]


def cents(money: str) -> int:
    return int(money.replace("$", "").replace(",", "").replace(".", ""))


# ------------------------------------------------------------------ the page, read back


@dataclass(frozen=True)
class Read:
    """What poppler reads from a statement: each page on one line (wrapped sentences whole)."""

    pages: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.pages)


def read(statement: Statement, folder: Path, variant: str = "email") -> Read:
    pdf = folder / f"statement-{variant}.pdf"
    pdf.write_bytes(render_statement(statement, variant=variant).pdf)
    out = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    # phone numbers are set with non-breaking hyphens so that they never wrap
    pages = [" ".join(page.replace("\u2011", "-").split()) for page in out.split("\f")]
    return Read([page for page in pages if page])


@pytest.fixture(scope="module")
def typical() -> Statement:
    return make_statement()


@pytest.fixture(scope="module")
def emailed(typical: Statement, tmp_path_factory: pytest.TempPathFactory) -> Read:
    return read(typical, tmp_path_factory.mktemp("emailed"), "email")


@pytest.fixture(scope="module")
def printed(typical: Statement, tmp_path_factory: pytest.TempPathFactory) -> Read:
    return read(typical, tmp_path_factory.mktemp("printed"), "print")


def claim_ids(statement: Statement) -> list[str]:
    return list(dict.fromkeys(line.claim_id for line in statement.lines))


def claim_sections(statement: Statement, text: str) -> dict[str, str]:
    """The claims table cut at each claim's heading ("Claim <number>, received ..."): each
    claim's text runs to the next claim's heading, the last to the statement total. A claim that
    runs over a page break is headed again on the next page, its provider marked "(continued)"."""
    starts = []
    for claim_id in claim_ids(statement):
        heading = fill(words("claims.claim"), claim_id=claim_id) + ","
        found = [match.start() for match in re.finditer(re.escape(heading), text)]
        assert found, f"claim {claim_id} is headed by its number"
        for again in found[1:]:
            provider = text.rindex(fill(words("claims.provider"), name=""), 0, again)
            assert words("claims.continued") in text[provider:again], f"claim {claim_id} headed twice"
        starts.append(found[0])
    assert starts == sorted(starts), "claims in the order of their numbers"
    end = text.index(words("claims.statement_total"), starts[-1])
    return {claim_id: text[start:stop]
            for claim_id, start, stop in zip(claim_ids(statement), starts, [*starts[1:], end], strict=True)}


def shown_columns(statement: Statement, text: str) -> list[str]:
    """The amount columns of the claims table, as its header prints them (checked here)."""
    shown = [field for field, _ in AMOUNT_COLUMNS
             if field not in OPTIONAL_COLUMNS or any(getattr(line, field) for line in statement.lines)]
    labels = [words(key) for field, key in AMOUNT_COLUMNS if field in shown]
    header = " ".join([words("claims.col_date"), words("claims.col_service"), *labels])
    assert header in text, "the claims table header names its columns in order"
    return shown


def line_row(line: ClaimLine, section: str, columns: int) -> list[str]:
    """The printed amounts of one line: its row starts with its date of service, then the
    service in plain words with its code in brackets (and the No Surprises mark)."""
    row = re.search(rf"{re.escape(spelled(line.service_date))} {re.escape(line.service_description)} "
                    rf"\({re.escape(line.service_code)}\)(?: {NSA_MARK})?"
                    rf"((?: (?:{MONEY}|{NOT_DECIDED})){{{columns}}})", section)
    assert row, (f"line {line.line_no} of claim {line.claim_id} ({line.service_code} on "
                 f"{line.service_date}) is not printed under its claim")
    return row.group(1).split()


# ------------------------------------------------------------------ row 3: who the insurer is


@pytest.mark.parametrize("variant", ["email", "print"])
def test_row_3_page_one_names_the_insurer_its_administrator_the_plan_and_group(
        typical: Statement, emailed: Read, printed: Read, variant: str) -> None:
    statement = typical
    shown = emailed if variant == "email" else printed
    values = placeholders(statement)
    first = shown.pages[0]
    assert values["legal_name"] in first
    assert fill(words("header.administered_by"), **values) in first
    assert f"{words('header.plan')} {statement.plan.plan_name}" in first
    assert f"{words('header.group')} {statement.member.group_number}" in first
    for page in shown.pages:  # the footer of every page names the insurer
        assert values["legal_name"] in page
    if variant == "print":  # the mailing address, in the envelope's return window
        return_address = " ".join(brand_file(statement.plan.brand)["identity"]["return_address"])
        assert return_address in first


# ------------------------------------------------------------------ row 4: how to reach customer service


@pytest.mark.parametrize("variant", ["email", "print"])
def test_row_4_phone_tty_hours_and_website_on_page_one_and_under_questions(
        typical: Statement, emailed: Read, printed: Read, variant: str) -> None:
    shown = emailed if variant == "email" else printed
    values = placeholders(typical)
    first = shown.pages[0]
    service_line = f"{words('header.customer_service')} {fill(words('header.service_line'), **values)}"
    assert service_line in first
    assert values["phone"] in service_line and f"TTY {values['tty']}" in service_line
    assert values["hours"] in first and values["website"] in first
    questions = shown.text.index(words("contact.heading"))
    body = fill(words("contact.body"), **values)
    assert all(values[key] in body for key in ("phone", "tty", "hours", "website"))
    assert shown.text.index(body) > questions


# ------------------------------------------------------------------ row 6: member, subscriber, patient


def test_row_6_masked_member_id_subscriber_and_each_claims_patient_and_relationship(
        typical: Statement, emailed: Read) -> None:
    member = typical.member
    subscriber = f"{member.first_name} {member.last_name}"
    label, last4 = re.escape(words("header.member_id")), re.escape(member.member_id[-4:])
    masked = re.compile(rf"{label}:? [^\s\w]+{last4}\b")
    assert subscriber in emailed.pages[0]
    for number, page in enumerate(emailed.pages, start=1):
        assert masked.search(page), f"page {number} shows the member ID masked to its last 4"
        if number > 1:
            assert f"{words('header.member')}: {subscriber}" in page
    assert member.member_id not in emailed.text and member.member_id[:-4] not in emailed.text

    relationships = {line.patient_relationship for line in typical.lines}
    assert {"self", "spouse"} <= relationships, "the typical statement has a dependant's claims"
    for claim_id, section in claim_sections(typical, emailed.text).items():
        line = next(line for line in typical.lines if line.claim_id == claim_id)
        patient = fill(words("claims.patient"), name=line.patient_name,
                       relationship=words("claims.relationships")[line.patient_relationship])
        assert patient in section, f"claim {claim_id} names its patient and relationship"
        others = {other.patient_name for other in typical.lines} - {line.patient_name}
        assert not any(f": {name} (" in section for name in others)


# ------------------------------------------------------------------ row 7: the claim number


def test_row_7_every_claim_is_headed_by_its_number_and_holds_its_own_lines(
        typical: Statement, emailed: Read) -> None:
    text = emailed.text
    sections = claim_sections(typical, text)  # each claim number heads exactly one claim
    columns = len(shown_columns(typical, text))
    for claim_id, section in sections.items():
        lines = [line for line in typical.lines if line.claim_id == claim_id]
        received = fill(words("claims.received"), date=spelled(lines[0].received_date))
        assert section.startswith(f"{fill(words('claims.claim'), claim_id=claim_id)}, {received}")
        for line in lines:
            line_row(line, section, columns)
        for other in typical.lines:
            if other.claim_id != claim_id:
                assert f"({other.service_code}) " not in section or any(
                    line.service_code == other.service_code for line in lines)
    count = len(sections)
    assert fill(words("summary.claims_count"), count=str(count)) in emailed.pages[0]


# ------------------------------------------------------------------ row 9: dates of service


def test_row_9_every_line_starts_with_its_date_of_service_spelled_out(
        typical: Statement, emailed: Read) -> None:
    text = emailed.text
    assert len({line.service_date for line in typical.lines}) > 1, "lines on different days"
    columns = len(shown_columns(typical, text))  # the first column is "Date of service"
    sections = claim_sections(typical, text)
    for line in typical.lines:
        line_row(line, sections[line.claim_id], columns)  # anchored on the line's own date
    for line in typical.lines:
        day = line.service_date
        assert f"{day.month}/{day.day}/{day.year}" not in text
        assert f"{day.month:02d}/{day.day:02d}/{day.year}" not in text


# ------------------------------------------------------------------ row 10: service, code, no diagnosis


def test_row_10_every_line_names_its_service_in_plain_words_with_its_code(
        typical: Statement, emailed: Read) -> None:
    text = emailed.text
    columns = len(shown_columns(typical, text))  # "Service (code)"
    sections = claim_sections(typical, text)
    for line in typical.lines:
        assert line.service_description and line.service_code
        section = sections[line.claim_id]
        assert f"{line.service_description} ({line.service_code})" in section
        line_row(line, section, columns)


def test_row_10_no_diagnosis_code_is_printed(typical: Statement, emailed: Read, printed: Read) -> None:
    """The model carries no diagnosis codes (ingest only uses them to flag sensitive services),
    so none can reach the page: no ICD-10-CM code appears anywhere on the statement."""
    carried = {field.name for field in dataclasses.fields(ClaimLine)}
    assert not any("diagnos" in name for name in carried), (
        "ClaimLine now carries diagnosis codes: build a line with some and assert none is printed")
    remark_codes = {a.rarc for line in typical.lines for a in line.adjustments if a.rarc}
    assert remark_codes, "the typical statement has a remark code, which looks like an ICD-10 code"
    for shown in (emailed, printed):
        found = set(ICD10.findall(shown.text))
        assert found <= remark_codes, f"diagnosis-like codes printed: {sorted(found - remark_codes)}"


# ------------------------------------------------------------------ row 13: the allowed amount


@pytest.mark.parametrize(("n_lines", "denied"), [(8, 1), (12, 2)])
def test_row_13_allowed_is_billed_less_discount_denied_and_pending(
        n_lines: int, denied: int, tmp_path: Path) -> None:
    """Per line and in the statement total; (12, 2) adds a pended claim, whose allowed amount is
    not decided yet and whose billed amount is "still under review"."""
    statement = make_statement(n_lines=n_lines, denied=denied)
    text = read(statement, tmp_path).text
    columns = shown_columns(statement, text)
    sections = claim_sections(statement, text)
    assert any(line.denied for line in statement.lines), "a line with a denied amount"
    for line in statement.lines:
        printed = dict(zip(columns, line_row(line, sections[line.claim_id], len(columns)), strict=True))
        allowed = line.billed - line.discount - line.denied - line.pending
        assert cents(printed["billed"]) == line.billed
        assert cents(printed["discount"]) == line.discount
        assert cents(printed.get("denied", "$0.00")) == line.denied
        if line.status == "pended":
            assert printed["allowed"] == NOT_DECIDED and allowed == 0
        else:
            assert cents(printed["allowed"]) == allowed == (
                cents(printed["billed"]) - cents(printed["discount"]) - cents(printed.get("denied", "$0.00")))
    total = re.search(rf"{re.escape(words('claims.statement_total'))}((?: {MONEY}){{{len(columns)}}})", text)
    assert total, "the statement total row"
    figures = dict(zip(columns, (cents(m) for m in total.group(1).split()), strict=True))
    pending = sum(line.pending for line in statement.lines)
    assert figures["allowed"] == figures["billed"] - figures["discount"] - figures.get("denied", 0) - pending
    assert figures["allowed"] == sum(line.billed - line.discount - line.denied - line.pending
                                     for line in statement.lines)
    if n_lines == 12:
        assert pending > 0, "the 12-line statement has a pended claim"
        under_review = re.escape(fill(words("claims_detail.pending_total"), amount="AMOUNT"))
        found = re.search(under_review.replace("AMOUNT", f"({MONEY})"), text[total.end():])
        assert found and cents(found.group(1)) == pending


# ------------------------------------------------------------------ rows 20, 21, 25: the adverse section


def _adverse_section(statement: Statement, text: str) -> str:
    assert statement.has_adverse_determination, "the typical statement denies and reduces a line"
    return text[text.index(words("adverse.heading")):]


def test_row_20_what_would_complete_a_denied_claim(typical: Statement, emailed: Read) -> None:
    """The standard sentence (template `adverse.more_info`) in the appeal section, and every remark
    code of the lines (what the plan needs or relied on) explained under "What the codes mean"."""
    adverse = _adverse_section(typical, emailed.text)
    assert fill(words("adverse.more_info"), **placeholders(typical)) in adverse
    text = emailed.text
    codes = text[text.index(words("reasons.heading")):text.index(words("adverse.heading"))]
    remark_codes = {a.rarc for line in typical.lines for a in line.adjustments if a.rarc}
    assert remark_codes
    for code in remark_codes:
        assert f"{code} {remark_text(code)}" in codes


def test_row_21_the_internal_rule_or_clinical_basis_is_free_on_request(
        typical: Statement, emailed: Read) -> None:
    guideline = fill(words("adverse.guideline"), **placeholders(typical))
    assert "free" in guideline and "guideline" in guideline and "medical necessity" in guideline
    assert guideline in _adverse_section(typical, emailed.text)


def test_row_25_external_review_and_how_to_ask_for_it(typical: Statement, emailed: Read) -> None:
    """The plan type's review wording (templates/plan_rules.toml `appeal_text`) with the brand's
    external review program, its phone and website."""
    rules = _toml("plan_rules.toml")["plans"][typical.plan_type]
    values = placeholders(typical)
    review = fill(words(f"adverse.{rules['appeal_text']}.review"), **values)
    for key in ("external_review_name", "external_review_phone", "external_review_website"):
        assert values[key] in review
    assert review in _adverse_section(typical, emailed.text)


# ------------------------------------------------------------------ row 34: electronic delivery


def test_row_34_electronic_delivery_free_paper_copy_how_to_stop_and_how_to_switch(
        typical: Statement, emailed: Read, printed: Read) -> None:
    values = placeholders(typical)
    paper_copy = fill(words("contact.paper_copy"), **values)
    print_copy = fill(words("contact.print_copy"), **values)
    # the email variant: that it is electronic delivery, a free paper copy, how to stop it
    assert "electronically" in paper_copy and "free paper copy" in paper_copy
    assert "stop electronic delivery" in paper_copy
    assert values["phone"] in paper_copy and values["website"] in paper_copy
    assert paper_copy in emailed.text and print_copy not in emailed.text
    # the print variant: how to switch to email
    assert "email" in print_copy and values["website"] in print_copy and values["phone"] in print_copy
    assert print_copy in printed.text and paper_copy not in printed.text


# ------------------------------------------------------------------ row 36: the fraud prompt


@pytest.mark.parametrize("variant", ["email", "print"])
def test_row_36_check_this_statement_fraud_prompt(
        typical: Statement, emailed: Read, printed: Read, variant: str) -> None:
    shown = emailed if variant == "email" else printed
    body = fill(words("contact.body"), **placeholders(typical))
    assert "check" in body and "fraud" in body
    assert body in shown.text
    assert shown.text.index(body) > shown.text.index(words("contact.heading"))
