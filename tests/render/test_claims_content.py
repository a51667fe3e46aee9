"""The claims table, summary, codes and accumulators as the member reads them (issue 17 items 1,
2, 6 and the type sizes of item 4), read back from the PDF with poppler."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

from pipeline.compose.reasons import is_adverse, statement_codes
from pipeline.model import Accumulator, Adjustment, Statement
from pipeline.render import render_statement
from pipeline.render.blocks import TextBlock
from pipeline.render.eob.brand import brand_theme
from pipeline.render.eob.claims import reason_blocks
from pipeline.render.eob.claims_table import amount_columns, claims_blocks
from pipeline.render.eob.summary import accumulator_blocks, summary_blocks
from pipeline.render.eob.words import Words, statement_context
from pipeline.render.grid import Grid
from pipeline.templates import DEFAULT_TEMPLATES_DIR, brand, statement_text
from tests.support.factories import REASONS, make_line, make_member, make_statement

MONEY = r"-?\$[\d,]+\.\d\d"


def text_of(statement: Statement, tmp_path: Path, variant: str = "email") -> str:
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(render_statement(statement, variant=variant).pdf)
    out = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def cents(money: str) -> int:
    return int(money.replace("$", "").replace(",", "").replace(".", ""))


def _with_lines(lines, **flags) -> Statement:  # type: ignore[no-untyped-def]
    base = make_statement(n_lines=0)
    from tests.support.factories import _reasons

    return dataclasses.replace(base, lines=lines, reasons=_reasons(lines, False),
                               has_adverse_determination=any(is_adverse(line) for line in lines), **flags)


# ------------------------------------------------------------------ item 1: what the member owes


@pytest.mark.parametrize("n_lines", [8, 12, 60])
def test_the_printed_statement_total_reconciles(n_lines: int, tmp_path: Path) -> None:
    """billed = plan discount + not paid (denied) + other insurance + plan paid + you may owe
    (+ still under review), read from the rendered total row and its share line."""
    statement = make_statement(n_lines=n_lines, denied=2)
    text = text_of(statement, tmp_path)
    found = re.search(rf"Total for this statement((?: {MONEY})+)", text)
    assert found, text[-2000:]
    figures = dict(zip((a.field for a in amount_columns(statement.lines)),
                       (cents(m) for m in found.group(1).split()), strict=True))
    pending = re.search(rf"Still under review: ({MONEY})", text[found.end():])
    undecided = cents(pending.group(1)) if pending else 0
    assert figures["billed"] == (figures["discount"] + figures.get("denied", 0)
                                 + figures.get("other_payer_paid", 0)
                                 + figures["plan_paid"] + figures["member_owes"] + undecided)
    assert figures["denied"] == statement.total("denied") > 0  # a column of its own
    assert figures["discount"] == statement.total("discount")  # denials are not discounts
    share = re.search(r"Your share: ([^·]*)", text[found.end():])
    assert share
    pattern = rf"(deductible|copay|coinsurance|not covered) ({MONEY})"
    parts = {name: cents(money) for name, money in re.findall(pattern, share.group(1))}
    assert sum(parts.values()) == figures["member_owes"]


def test_the_summary_shows_denied_apart_from_discounts(tmp_path: Path) -> None:
    """Before: medical-necessity denials were booked as plan discounts."""
    statement = make_statement(n_lines=12, denied=2)
    text = text_of(statement, tmp_path)
    summary = text[text.index("Your summary"):text.index("Your claims in detail")]
    labels = ["Amount billed", "Plan discounts", "Not paid (denied)", "Plan paid", "Other insurance paid",
              "Still under review", "You may owe"]
    assert all(label in summary for label in labels)
    undecided = statement.total("pending")
    expected = [statement.total("billed"), statement.total("discount"), statement.total("denied"),
                statement.total("plan_paid"), statement.total("other_payer_paid"), undecided,
                statement.total_member_owes]
    assert [cents(m) for m in re.findall(MONEY, summary)][:7] == expected
    assert expected[0] == sum(expected[1:])


def _money(value: int) -> str:
    from pipeline.render import format_money

    return format_money(value)


def test_every_adjustment_of_every_line_is_shown_and_explained(tmp_path: Path) -> None:
    statement = make_statement(n_lines=12, denied=2)
    text = text_of(statement, tmp_path)
    both = [line for line in statement.lines if {"PR-1", "CO-151"} <= {a.code for a in line.adjustments}]
    assert both, "the factory has a line with a deductible and a reduction"
    for line in statement.lines:
        for adjustment in line.adjustments:
            assert f"{adjustment.code} {_money(adjustment.amount)}" in text
    codes = text[text.index("What the codes mean"):]
    for code in statement_codes(statement.lines):
        assert code in codes


def test_other_plan_payment_is_information_not_you_do_not_owe(tmp_path: Path) -> None:
    """Before: OA-23 said "you do not owe this amount" on a line where the member owes coinsurance."""
    line = make_line(discount=4000, plan_paid=3000, other_payer_paid=2000, copay=0, coinsurance=1000,
                     reason_code="PR-2", adjustments=(Adjustment("CO", "45", 4000),
                                                      Adjustment("OA", "23", 2000),
                                                      Adjustment("PR", "2", 1000)))
    text = text_of(_with_lines([line]), tmp_path)
    codes = text[text.index("What the codes mean"):]
    row = codes[codes.index("OA-23"):codes.index("PR-2")]
    assert "Your other plan's part: shown for your information." in row
    assert "you do not owe" not in row.lower()
    assert "You may owe this amount." in codes[codes.index("PR-2"):]


def test_a_paid_line_with_a_reduction_code_gets_appeal_rights(tmp_path: Path) -> None:
    """Before: only denied or partial lines made a statement adverse."""
    reduced = make_line(status="paid", reason_code="CO-151", discount=3000, denied=2000, plan_paid=9000,
                        copay=3000, adjustments=(Adjustment("CO", "45", 3000), Adjustment("PR", "3", 3000),
                                                 Adjustment("CO", "151", 2000, "N130")))
    plain = make_line(adjustments=(Adjustment("CO", "45", 6000), Adjustment("PR", "3", 3000)))
    assert is_adverse(reduced) and not is_adverse(plain)
    statement = _with_lines([reduced])
    assert statement.has_adverse_determination
    text = text_of(statement, tmp_path)
    assert "right to appeal" in text
    assert "CO-151 $20.00 (N130)" in text
    assert "right to appeal" not in text_of(_with_lines([plain]), tmp_path)


# ------------------------------------------------------------------ item 6: payment, status, protections


def test_who_was_paid_when_and_the_reference(tmp_path: Path) -> None:
    to_provider = make_line(payee="provider", paid_date=date(2026, 11, 14), payment_ref="EFT123")
    to_member = make_line(claim_id="C-MEMBER", payee="member", paid_date=date(2026, 11, 20),
                          payment_ref="CHK00098765")
    text = text_of(_with_lines([to_provider, to_member]), tmp_path)
    assert "Paid to the provider on November 14, 2026" in text
    assert "11/14/2026" not in text
    assert "CHK00098765" in text and "Paid to you on" in text
    assert "EFT123" not in text  # a provider's payment reference is the provider's business


def test_pended_and_adjusted_claims_say_so(tmp_path: Path) -> None:
    pended = make_line(claim_id="C-PEND", status="pended", pending=18000, discount=0, plan_paid=0, copay=0,
                       reason_code="")
    adjusted = make_line(claim_id="C-ADJ", status="adjusted", original_claim_id="C-OLD-1")
    text = text_of(_with_lines([pended, adjusted]), tmp_path)
    assert "Status: Pending" in text and "Pending: we are still reviewing this claim" in text
    assert "Status: Adjusted" in text and "Adjusted: replaces our earlier decision on claim C-OLD-1" in text
    assert "Still under review: $180.00" in text


def test_still_under_review_on_the_table_is_the_statements_pending_total(tmp_path: Path) -> None:
    """One definition: the table's "Still under review" is Statement.total("pending"), as the
    summary's is. Before: the table also counted the billed amount of a pended line that carries
    no pending amount and no allowed amount, which the summary did not."""
    pended = make_line(claim_id="C-PEND", status="pended", pending=18000, discount=0, plan_paid=0, copay=0,
                       reason_code="")
    without = make_line(claim_id="C-PEND2", status="pended", discount=5000, plan_paid=0, copay=0,
                        reason_code="")
    statement = _with_lines([pended, without])
    assert statement.total("pending") == 18000 and without.allowed == 0
    text = text_of(statement, tmp_path)
    table = text[text.index("Your claims in detail"):]
    found = re.findall(rf"Still under review: ({MONEY})", table)
    assert found and {cents(money) for money in found} == {statement.total("pending")}


def test_no_surprises_lines_are_marked_and_unprotected_out_of_network_lines_warned(tmp_path: Path) -> None:
    protected = make_line(claim_id="C-ER", network="out", no_surprises=True, service_code="99283",
                          service_description="Emergency department visit")
    unprotected = make_line(claim_id="C-OON", network="out", no_surprises=False)
    text = text_of(_with_lines([protected, unprotected], has_no_surprises_protection=True), tmp_path)
    assert "Emergency department visit (99283) \u2020" in text
    assert "\u2020 Protected by the No Surprises Act" in text  # the legend
    warning = ("This provider is not in your network and may bill you for the difference between the "
               "billed and allowed amount.")
    assert text.count(warning) == 1
    spanish = text_of(dataclasses.replace(_with_lines([unprotected]), member=make_member(language="es")),
                      tmp_path)
    assert "Este proveedor no está en su red y puede cobrarle la diferencia" in spanish


# ------------------------------------------------------------------ item 2: accumulators on the page


def test_accumulators_show_tiers_plan_year_and_an_overrun_as_it_is(tmp_path: Path) -> None:
    statement = make_statement(n_lines=3, denied=0)
    year = (date(2026, 1, 1), date(2026, 12, 31))
    over = Accumulator("out_of_pocket", 461000, 450000, date(2026, 11, 30), "individual", "in", year)
    statement = dataclasses.replace(statement, accumulators=[*statement.accumulators[:-1], over])
    text = text_of(statement, tmp_path)
    part = text[text.index("Your progress toward plan limits"):]
    assert "Plan year January 1, 2026 to December 31, 2026" in part
    assert "01/01/2026" not in part
    assert "Deductible, family, in network" in part and "Deductible, you, out of network" in part
    assert "$4,610.00 $4,500.00 Met" in part  # never capped, never negative
    assert "we are checking this" in part
    own = dataclasses.replace(statement, accumulators=[], own_statement="request")
    assert "Your progress toward plan limits" not in text_of(own, tmp_path)


# ------------------------------------------------------------------ item 4: type sizes


def _sizes(blocks) -> list[float]:  # type: ignore[no-untyped-def]
    found = []
    for block in blocks:
        if isinstance(block, Grid):
            found += [cell.size for row in block.rows for cell in row.cells if any(cell.lines)]
        elif isinstance(block, TextBlock):
            found.append(block.size)
    return found


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize(("large_print", "table_floor", "summary_floor"), [(False, 8, 10), (True, 16, 16)])
def test_claims_and_summary_text_sizes(language: str, large_print: bool, table_floor: float,
                                       summary_floor: float) -> None:
    statement = make_statement(n_lines=12, denied=2, language=language,
                               member=make_member(language=language, large_print=large_print))
    file = statement_text(language, DEFAULT_TEMPLATES_DIR)
    brand_file = brand("default", DEFAULT_TEMPLATES_DIR)
    words = Words(file, brand_file, statement_context(statement, file, brand_file, language))
    theme = brand_theme(brand_file)
    scale = 2.0 if large_print else 1.0
    table = _sizes(claims_blocks(statement, words, theme, scale)
                   + reason_blocks(statement, words, theme, scale))
    summary = _sizes(summary_blocks(statement, words, theme, scale)
                     + accumulator_blocks(statement, words, theme, scale))
    assert table and min(table) >= table_floor
    assert summary and min(summary) >= summary_floor


def test_large_print_statement_renders_every_line(tmp_path: Path) -> None:
    statement = make_statement(n_lines=12, denied=2, member=make_member(large_print=True))
    text = text_of(statement, tmp_path)
    for line in statement.lines:
        assert line.claim_id in text
    assert _money(statement.total_member_owes) in text


def test_reason_table_wording_comes_from_the_versioned_table() -> None:
    assert REASONS["OA-23"][2].startswith("Another insurance plan paid first")
