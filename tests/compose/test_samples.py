"""The published samples (docs/samples, made by tests/support/factories.py) are plausible claims
(issue 17 item 7): a reader who knows claims finds nothing that could not happen."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.compose.reasons import is_adverse
from pipeline.model import Statement
from pipeline.reason_codes import reason_table
from tests.support.factories import (
    DEDUCTIBLE_USED_BEFORE,
    PLAN_GOLD,
    PREVENTIVE_CODES,
    PROVIDER_SERVICES,
    make_statement,
    sample_statements,
)

COST_SHARE = {"PR-1": "deductible", "PR-2": "coinsurance", "PR-3": "copay"}


def _statements() -> list[Statement]:
    samples = [statement for statement, _ in sample_statements().values()]
    sizes = ((1, 0), (3, 1), (12, 2), (41, 3), (120, 8))
    return samples + [make_statement(n_lines=n, denied=d) for n, d in sizes]


@pytest.mark.parametrize("statement", _statements(), ids=lambda s: f"{len(s.lines)}-{s.member.language}")
def test_sample_claims_are_plausible(statement: Statement) -> None:
    lines = statement.lines
    table = reason_table()
    # no duplicate lines: one service per provider, patient and day
    keys = Counter((line.provider_npi, line.patient_name, line.service_date, line.service_code)
                   for line in lines)
    assert max(keys.values(), default=1) == 1
    assert len({(line.claim_id, line.line_no) for line in lines}) == len(lines)
    for line in lines:
        # providers bill services of their own specialty
        npi, _, services = PROVIDER_SERVICES[line.provider_name]
        assert line.provider_npi == npi and line.service_code in services, line
        # nothing is received, decided or paid after the period (the statement reports it)
        assert line.service_date <= line.received_date < statement.statement_date
        if line.paid_date is not None:
            assert line.received_date <= line.paid_date < statement.statement_date
        # preventive care in network has no cost share
        if line.service_code in PREVENTIVE_CODES and line.network == "in" and line.status == "paid":
            assert line.member_owes == 0, line
        # amounts reconcile and the adjustments are the amounts
        assert line.billed == (line.discount + line.denied + line.plan_paid + line.other_payer_paid
                               + line.member_owes + line.pending)
        assert (line.status == "pended") == (line.pending > 0)
        if line.status == "pended":
            assert not line.adjustments and not line.payee and line.paid_date is None
            continue
        by_code = {a.code: a.amount for a in line.adjustments}
        assert all(code in table.rows for code in by_code)
        for code, field in COST_SHARE.items():
            assert by_code.get(code, 0) == getattr(line, field), (code, line)
        assert by_code.get("CO-45", 0) == line.discount
        assert by_code.get("OA-23", 0) == line.other_payer_paid
        owed_elsewhere = sum(amount for code, amount in by_code.items()
                             if code.startswith("PR-") and code not in COST_SHARE)
        assert owed_elsewhere == line.not_covered
        written_off = sum(amount for code, amount in by_code.items()
                          if not code.startswith("PR-") and code not in ("CO-45", "OA-23"))
        assert written_off == line.denied
        if line.status == "adjusted":
            assert line.original_claim_id
        if line.plan_paid:
            assert line.payee and line.paid_date is not None
    # the deductible is used up in service-date order before coinsurance
    left = PLAN_GOLD.deductible_limit - DEDUCTIBLE_USED_BEFORE
    for line in sorted(lines, key=lambda line: (line.service_date, line.claim_id, line.line_no)):
        if line.coinsurance and left > 0:
            assert line.deductible == min(left, line.allowed), line
        left -= line.deductible
        assert left >= 0
    assert statement.has_adverse_determination == any(is_adverse(line) for line in lines)


def test_the_samples_show_every_kind_of_line_somewhere() -> None:
    lines = [line for statement, _ in sample_statements().values() for line in statement.lines]
    statuses = {line.status for line in lines}
    assert {"paid", "denied", "pended", "adjusted"} <= statuses
    assert any(line.status == "paid" and line.denied and is_adverse(line) for line in lines)  # a reduction
    assert {"90686", "90471", "99396"} <= {line.service_code for line in lines}
    assert any(line.no_surprises for line in lines) and any(line.other_payer_paid for line in lines)
    assert any(line.patient_relationship != "self" for line in lines)  # the family tier moves apart
