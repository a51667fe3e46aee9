"""Issue 17 (data): adjustments lists, denied apart from discounts, adverse = denied or reduced,
pended and adjusted lines, payments, plan types and limits, large print, the accumulators file.
Every check names file, row, field and reason; nothing is lost."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.ingest import ingest
from pipeline.model import Adjustment, format_adjustments, parse_adjustments, resolve_plan_type
from pipeline.reason_codes import reason_table, remark_table
from pipeline.storage import PLAN_SCHEMA, read_accumulators

PLAN = {"plan_id": "P1", "plan_name": "Plan one", "brand": "default", "deductible_limit": "1000.00",
        "out_of_pocket_limit": "4000.00"}
MEMBER = {"member_id": "M1", "first_name": "Ana", "last_name": "Lopez", "date_of_birth": "1980-02-03",
          "address_line1": "1 Main St", "address_line2": "", "city": "Salem", "state": "OR",
          "postal_code": "97301", "email": "ana@example.org", "language": "en", "plan_id": "P1",
          "group_number": "G1", "line_of_business": "commercial", "edelivery_consent": "Y",
          "ytd_deductible": "100.00", "ytd_out_of_pocket": "200.00"}
LINE = {"claim_id": "C1", "line_no": "1", "member_id": "M1", "patient_name": "Ana Lopez",
        "patient_relationship": "self", "provider_name": "Clinic", "provider_npi": "1245319599",
        "network": "in", "service_date": "2026-11-03", "received_date": "2026-11-05",
        "service_code": "99213", "service_description": "Office visit", "status": "paid",
        "reason_code": "PR-1", "billed": "500.00", "discount": "120.00", "plan_paid": "250.00",
        "other_payer_paid": "0.00", "deductible": "100.00", "copay": "0.00", "coinsurance": "30.00",
        "not_covered": "0.00", "adjustments": "CO-45:120.00;PR-1:100.00;PR-2:30.00", "payee": "provider",
        "paid_date": "2026-11-20", "payment_ref": "EFT1234567890", "original_claim_id": ""}


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _extract(folder: Path, lines: list[dict[str, str]], *, plans: list[dict[str, str]] | None = None,
             members: list[dict[str, str]] | None = None,
             accumulators: list[dict[str, str]] | None = None) -> Path:
    folder.mkdir(parents=True)
    _write(folder / "plans.csv", plans or [PLAN])
    _write(folder / "members.csv", members or [MEMBER])
    _write(folder / "claims.csv",
           [{**LINE, "line_no": str(n), **line} for n, line in enumerate(lines, start=1)])
    if accumulators:
        _write(folder / "accumulators.csv", accumulators)
    return folder


def _problems(result, source: str = "claims.csv") -> dict[int, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {q.row_number: (q.field, q.reason) for q in result.quarantined if q.source_file == source}


def _lines(out: Path):  # type: ignore[no-untyped-def]
    lines = pq.read_table(out / "lines").to_pandas()
    return lines.sort_values(["claim_id", "line_no"]).reset_index(drop=True)


# -- the canonical adjustments -------------------------------------------------------------
def test_adjustments_are_kept_in_cents_and_a_denial_is_not_a_discount(tmp_path: Path) -> None:
    denied = {"status": "partial", "reason_code": "CO-50", "billed": "800.00", "discount": "420.00",
              "plan_paid": "250.00", "adjustments": "CO-45:120.00;PR-1:100.00;PR-2:30.00;CO-50:300.00:N115"}
    result = ingest(_extract(tmp_path / "in", [{}, denied]), tmp_path / "out", 1, period="2026-11")
    assert result.rows_accepted == 2 and not _problems(result)
    lines = _lines(tmp_path / "out")
    assert list(lines["adjustments"]) == ["CO-45:12000;PR-1:10000;PR-2:3000",
                                          "CO-45:12000;PR-1:10000;PR-2:3000;CO-50:30000:N115"]
    assert list(lines["discount"]) == [12000, 12000] and list(lines["denied"]) == [0, 30000]
    for _, line in lines.iterrows():  # every canonical line reconciles, denied and pending included
        assert line["billed"] == sum(line[n] for n in ("discount", "denied", "pending", "plan_paid",
                                                         "other_payer_paid", "deductible", "copay",
                                                         "coinsurance", "not_covered"))
    assert parse_adjustments(lines["adjustments"][1]) == (
        Adjustment("CO", "45", 12000), Adjustment("PR", "1", 10000), Adjustment("PR", "2", 3000),
        Adjustment("CO", "50", 30000, "N115"))
    assert format_adjustments(parse_adjustments(lines["adjustments"][1])) == lines["adjustments"][1]
    assert list(lines["payee"]) == ["provider"] * 2 and list(lines["payment_ref"]) == ["EFT1234567890"] * 2
    assert list(lines["paid_date"]) == [date(2026, 11, 20)] * 2
    members = pq.read_table(tmp_path / "out" / "members.parquet").to_pylist()
    assert members[0]["lines_denied"] == 30000 and members[0]["lines_discount"] == 24000


def test_a_paid_line_with_a_reduction_code_is_adverse(tmp_path: Path) -> None:
    reduced = {"claim_id": "C2", "received_date": "2026-11-04", "billed": "500.00", "discount": "170.00",
               "plan_paid": "200.00", "reason_code": "CO-59",
               "adjustments": "CO-45:120.00;CO-59:50.00;PR-1:100.00;PR-2:30.00"}
    result = ingest(_extract(tmp_path / "in", [{}, reduced]), tmp_path / "out", 1, period="2026-11")
    assert not _problems(result)
    lines = _lines(tmp_path / "out")
    assert list(lines["status"]) == ["paid", "paid"] and list(lines["adverse"]) == [False, True]
    assert list(lines["denied"]) == [0, 5000]
    (member,) = pq.read_table(tmp_path / "out" / "members.parquet").to_pylist()
    assert member["lines_adverse"] and member["earliest_adverse_received"] == date(2026, 11, 4)


def test_a_paid_line_with_only_cost_share_is_not_adverse(tmp_path: Path) -> None:
    ingest(_extract(tmp_path / "in", [{}]), tmp_path / "out", 1, period="2026-11")
    (member,) = pq.read_table(tmp_path / "out" / "members.parquet").to_pylist()
    assert not member["lines_adverse"] and member["earliest_adverse_received"] is None


def test_without_a_list_a_denial_books_the_discount_as_denied_and_a_list_is_derived(tmp_path: Path) -> None:
    denied = {"status": "denied", "reason_code": "CO-50", "billed": "300.00", "discount": "300.00",
              "plan_paid": "0.00", "deductible": "0.00", "coinsurance": "0.00", "adjustments": ""}
    paid = {"reason_code": "PR-1", "adjustments": ""}
    result = ingest(_extract(tmp_path / "in", [denied, paid]), tmp_path / "out", 1, period="2026-11")
    assert not _problems(result)
    lines = _lines(tmp_path / "out")
    assert list(lines["discount"]) == [0, 12000] and list(lines["denied"]) == [30000, 0]
    # the paid line's discount is left out of its derived list: no code states it
    assert list(lines["adjustments"]) == ["CO-50:30000", "PR-1:10000;PR-2:3000"]
    assert list(lines["adverse"]) == [True, False]


@pytest.mark.parametrize(("values", "expected"), [
    ({"adjustments": "CO45:120.00"},
     ("adjustments", "not a list of adjustments like CO-45:120.00;PR-2:20.00 (group-CARC:amount[:RARC], "
                     "separated by ';')")),
    ({"adjustments": "CO-45:120.00;PR-1:100.00;PR-2:30.0.0"},
     ("adjustments", "not a list of adjustments like CO-45:120.00;PR-2:20.00 (group-CARC:amount[:RARC], "
                     "separated by ';')")),
    ({"adjustments": "XX-45:120.00;PR-1:100.00;PR-2:30.00"},
     ("adjustments", "an adjustment's group code is not PR, CO, OA or PI")),
    ({"adjustments": "CO-999:120.00;PR-1:100.00;PR-2:30.00", "reason_code": ""},
     ("adjustments", "an adjustment's code has no plain-language text in templates/reason_codes.csv")),
    ({"adjustments": "CO-45:120.00:ZZ99;PR-1:100.00;PR-2:30.00"},
     ("adjustments", "a remark code has no plain-language text in templates/remark_codes.csv")),
    ({"adjustments": "CO-45:100.00;PR-1:100.00;PR-2:30.00"},
     ("adjustments", "billed does not equal plan paid + other payer + the adjustments")),
    ({"adjustments": "CO-45:120.00;PR-1:30.00;PR-2:100.00"},
     ("adjustments", "the adjustments do not match the amounts: PR-1 = deductible, PR-2 = coinsurance, "
                     "PR-3 = copay, other PR = not covered")),
    ({"adjustments": "CO-45:120.00;PR-1:100.00;PR-2:30.00;OA-23:10.00", "discount": "110.00",
      "other_payer_paid": "10.00"},
     ("adjustments", "billed does not equal plan paid + other payer + the adjustments")),
    ({"reason_code": "CO-97"}, ("reason_code", "reason code is not among the line's adjustments")),
    ({"status": "denied", "reason_code": "", "plan_paid": "0.00", "discount": "370.00",
      "adjustments": "CO-45:370.00;PR-1:100.00;PR-2:30.00"},
     ("reason_code", "a denied or reduced line needs a reason code: the member must be told why")),
    ({"status": "adjusted", "original_claim_id": ""},
     ("original_claim_id", "an adjusted line needs original_claim_id: the claim whose decision it replaces")),
    ({"status": "pended", "reason_code": "", "adjustments": "", "payee": "", "paid_date": "",
      "payment_ref": ""},
     ("plan_paid", "a pended line shows amounts besides billed: a claim not decided yet has no payment, "
                   "write-off or member share")),
    ({"status": "pended", "reason_code": "", "adjustments": "", "discount": "0.00", "plan_paid": "0.00",
      "deductible": "0.00", "coinsurance": "0.00", "payee": "", "payment_ref": ""},
     ("paid_date", "a pended line names a payment (paid_date, payment_ref or payee)")),
    ({"paid_date": "2026-11-01"}, ("paid_date", "paid before the claim was received")),
    ({"paid_date": "2026-12-01"}, ("paid_date", "paid after the statement period")),
    ({"payee": "clinic"}, ("payee", "must be provider or member")),
    ({"payment_ref": "EFT 12/3"},
     ("payment_ref", "not a check number or EFT trace (letters, digits and '-')")),
    ({"status": "queued"}, ("status", "must be paid, denied, partial, pended or adjusted")),
], ids=["shape", "amount", "group", "unknown-code", "unknown-remark", "reconcile", "cost-share",
        "informational-does-not-count", "reason-not-listed", "denied-without-reason",
        "adjusted-without-original", "pended-with-amounts", "pended-with-payment", "paid-before-received",
        "paid-after-period", "payee", "payment-ref", "status"])
def test_each_claim_rule_names_file_row_and_field(tmp_path: Path, values: dict[str, str],
                                                  expected: tuple[str, str]) -> None:
    result = ingest(_extract(tmp_path / "in", [{}, values]), tmp_path / "out", 1, period="2026-11")
    assert _problems(result) == {3: expected}  # the header is row 1: the second line is row 3
    assert result.rows_read == result.rows_accepted + result.rows_quarantined == 2
    quarantined = (tmp_path / "out" / "quarantine" / "claims.quarantine.csv").read_text()
    assert expected[1].split(":")[0].split(" (")[0] in quarantined  # the data team sees the reason and values


def test_pended_and_adjusted_lines_are_accepted_and_booked(tmp_path: Path) -> None:
    pended = {"claim_id": "C2", "status": "pended", "reason_code": "", "adjustments": "", "discount": "0.00",
              "plan_paid": "0.00", "deductible": "0.00", "coinsurance": "0.00", "payee": "", "paid_date": "",
              "payment_ref": ""}
    adjusted = {"claim_id": "C3", "status": "adjusted", "original_claim_id": "C0-2026-10"}
    result = ingest(_extract(tmp_path / "in", [{}, pended, adjusted]), tmp_path / "out", 1, period="2026-11")
    assert not _problems(result)
    lines = _lines(tmp_path / "out")
    assert list(lines["status"]) == ["paid", "pended", "adjusted"]
    assert list(lines["pending"]) == [0, 50000, 0] and lines["adjustments"][1] == ""
    assert list(lines["adverse"]) == [False, False, False]
    assert lines["original_claim_id"][2] == "C0-2026-10" and lines["paid_date"].isna()[1]


# -- plans, members and the accumulators file ------------------------------------------------
def test_plan_types_funding_and_limits_are_stored(tmp_path: Path) -> None:
    plans = [{**PLAN, "plan_type": "governmental", "funding": "self_funded", "plan_year_start": "2026-07-01",
              "family_deductible_limit": "2000.00", "family_out_of_pocket_limit": "8000.00",
              "oon_deductible_limit": "2000.00", "oon_out_of_pocket_limit": "",
              "oon_family_deductible_limit": "", "oon_family_out_of_pocket_limit": ""},
             {**PLAN, "plan_id": "P2", "plan_type": "erisa", "funding": "", "plan_year_start": "",
              "family_deductible_limit": "", "family_out_of_pocket_limit": "", "oon_deductible_limit": "",
              "oon_out_of_pocket_limit": "", "oon_family_deductible_limit": "",
              "oon_family_out_of_pocket_limit": ""}]
    members = [{**MEMBER, "alternate_format": "large_print", "ytd_family_deductible": "150.00"}]
    result = ingest(_extract(tmp_path / "in", [{}], plans=plans, members=members), tmp_path / "out", 1,
                    period="2026-11")
    assert _problems(result, "plans.csv") == {3: ("plan_type", "must be erisa_group, governmental, church, "
                                                                "individual, medicare_advantage or medicaid")}
    (plan,) = pq.read_table(tmp_path / "out" / "plans.parquet", schema=PLAN_SCHEMA).to_pylist()
    assert (plan["plan_type"], plan["funding"], plan["plan_year_start"]) == ("governmental", "self_funded",
                                                                             date(2026, 7, 1))
    limits = ("family_deductible_limit", "oon_deductible_limit", "oon_out_of_pocket_limit")
    assert tuple(plan[name] for name in limits) == (200000, 200000, None)
    (member,) = pq.read_table(tmp_path / "out" / "members.parquet").to_pylist()
    assert member["alternate_format"] == "large_print" and member["ytd_family_deductible"] == 15000
    assert member["ytd_oon_deductible"] is None


def test_plan_type_is_derived_from_the_line_of_business_when_empty() -> None:
    assert resolve_plan_type("", "") == resolve_plan_type("", "commercial") == "erisa_group"
    assert resolve_plan_type("", "medicare_advantage") == "medicare_advantage"
    assert resolve_plan_type("", "medicaid") == "medicaid"
    assert resolve_plan_type("church", "commercial") == "church"


ACCUMULATOR = {"member_id": "M1", "patient_id": "", "accumulator": "deductible", "tier": "individual",
               "network": "in", "used": "1250.00", "limit": "", "as_of": "2026-11-30"}


def test_accumulators_file_rows_are_checked_and_stored(tmp_path: Path) -> None:
    rows = [ACCUMULATOR,  # row 2: accepted; used over the plan's limit is an overrun, not a quarantine
            {**ACCUMULATOR, "accumulator": "out_of_pocket", "used": "400.00", "limit": "4000.00"},
            {**ACCUMULATOR, "tier": "family", "patient_id": "M1-02"},  # row 4
            {**ACCUMULATOR, "network": "outside"},  # row 5
            {**ACCUMULATOR, "member_id": "M9"},  # row 6
            {**ACCUMULATOR, "as_of": "2026-12-01", "tier": "family"},  # row 7
            {**ACCUMULATOR, "network": "out", "used": "12.5O"},  # row 8
            {**ACCUMULATOR, "network": "out", "accumulator": "out_of_pocket"},  # rows 9, 10: the same twice
            {**ACCUMULATOR, "network": "out", "accumulator": "out_of_pocket", "used": "99.00"}]
    result = ingest(_extract(tmp_path / "in", [{}], accumulators=rows), tmp_path / "out", 1, period="2026-11")
    assert _problems(result, "accumulators.csv") == {
        4: ("patient_id", "a family accumulator is the member's, not a patient's: leave patient_id empty"),
        5: ("network", "must be in or out"),
        6: ("member_id", "member is not in the member file (or its member row was quarantined)"),
        7: ("as_of", "as_of is after the statement period"),
        8: ("used", "not an amount in dollars and cents (e.g. 123.45)"),
        9: ("accumulator", "the same accumulator (member, patient, tier, network) is given more than once: "
                           "every copy set aside"),
        10: ("accumulator", "the same accumulator (member, patient, tier, network) is given more than once: "
                            "every copy set aside")}
    (account,) = [f for f in result.files if f.kind == "accumulators"]
    assert (account.rows_read, account.rows_accepted, account.rows_quarantined) == (9, 2, 7)
    stored = read_accumulators(tmp_path / "out", ["M1"]).to_pylist()
    assert [(r["accumulator"], r["used"], r["limit"], r["as_of"]) for r in stored] == [
        ("deductible", 125000, None, date(2026, 11, 30)),
        ("out_of_pocket", 40000, 400000, date(2026, 11, 30))]
    assert read_accumulators(tmp_path / "out", ["M2"]).num_rows == 0


def test_without_an_accumulators_file_none_are_read(tmp_path: Path) -> None:
    ingest(_extract(tmp_path / "in", [{}]), tmp_path / "out", 1, period="2026-11")
    assert not (tmp_path / "out" / "accumulators.parquet").exists()
    assert read_accumulators(tmp_path / "out").num_rows == 0


# -- the tables ------------------------------------------------------------------------------
def test_reason_table_says_what_kind_each_code_is_and_who_pays() -> None:
    table = reason_table()
    assert table.version == remark_table().version == "2026.3"
    codes = ("PR-1", "PR-2", "PR-3", "CO-45", "CO-50", "PR-96", "OA-23")
    assert {c: table.rows[c]["kind"] for c in codes} == {
        "PR-1": "cost_share", "PR-2": "cost_share", "PR-3": "cost_share", "CO-45": "contractual",
        "CO-50": "adverse", "PR-96": "adverse", "OA-23": "informational"}
    assert {table.rows[c]["who_pays"] for c in table.codes if c.startswith("CO-")} == {"provider"}
    assert table.rows["OA-23"]["who_pays"] == "other_payer" and table.rows["PI-50"]["who_pays"] == "payer"
    assert "do not owe" not in table.rows["OA-23"]["text_en"]  # the member may still owe cost share
    codes = ("PR-1", "PR-2", "PR-3", "PR-96", "CO-45", "CO-50", "PI-50", "OA-23")
    assert [table.booked_as(c) for c in codes] == [
        "deductible", "coinsurance", "copay", "not_covered", "discount", "denied", "denied", None]
    assert all(table.rows[c]["plan_provision"] for c in table.of_kind("adverse"))
    assert all(remark_table().text(code, "es") for code in remark_table().codes)


def test_the_kernels_read_and_write_adjustments_as_python_would() -> None:
    """split_adjustments and join_adjustments against a plain Python reading of random lists."""
    import random

    import numpy as np
    import pyarrow as pa

    from pipeline.column_kernels import adjustments_array, split_adjustments, string_buffers, text_key

    rng = random.Random(17)
    codes = ["CO-45", "PR-1", "PR-2", "PR-3", "CO-50", "OA-23", "PI-9999"]
    remarks = ["", "", "N115", "MA130", "M1234567"]
    values = []
    for _ in range(300):
        entries = [(rng.choice(codes), rng.randrange(0, 10**8), rng.choice(remarks))
                   for _ in range(rng.randint(1, 5))]
        values.append(entries)
    text = [";".join(f"{c}:{a // 100}" + (f".{a % 100:02d}" if a % 100 or rng.random() < 0.5 else "")
                     + (f":{r}" if r else "") for c, a, r in entries) for entries in values]
    rows = np.arange(len(text), dtype=np.int64)
    parent, keys, cents, remark_keys = split_adjustments(*string_buffers(pa.array(text)), rows)
    flat = [(row, c, a, r) for row, entries in enumerate(values) for c, a, r in entries]
    assert list(parent) == [row for row, *_ in flat]
    assert list(keys) == [text_key(c) for _, c, _, _ in flat]
    assert list(cents) == [a for _, _, a, _ in flat]
    assert list(remark_keys) == [text_key(r) for *_, r in flat]
    starts = np.append(np.searchsorted(parent, rows), len(parent))
    code_at = np.array([codes.index(c) for _, c, _, _ in flat])
    remark_at = np.array([remarks.index(r) if r else -1 for *_, r in flat])
    joined = adjustments_array(starts, code_at, cents, remark_at, pa.array(codes), pa.array(remarks))
    expected = [";".join(f"{c}:{a}" + (f":{r}" if r else "") for c, a, r in entries) for entries in values]
    assert joined.to_pylist() == expected
    assert [parse_adjustments(t) for t in expected] == [
        tuple(Adjustment(*c.split("-"), a, r) for c, a, r in entries) for entries in values]


def test_the_tally_kernel_looks_up_and_sums_as_python_would() -> None:
    """tally_adjustments (table look-ups, flags and sums per row in one pass) against a plain
    Python reading of random entries: unknown codes and remarks, foreign groups, reason codes."""
    import random

    import numpy as np

    from pipeline.column_kernels import (
        ADJUSTMENT_ADVERSE,
        ADJUSTMENT_BAD_GROUP,
        ADJUSTMENT_REASON_LISTED,
        ADJUSTMENT_UNKNOWN_CODE,
        ADJUSTMENT_UNKNOWN_REMARK,
        tally_adjustments,
        text_key,
    )

    rng = random.Random(23)
    table = ["CO-45", "PR-1", "PR-2", "CO-50", "OA-23", "PI-A1"]  # CO-50 adverse
    booked = [4, 0, 1, 5, 6, 4]
    adverse = [False, False, False, True, False, False]
    remarks = ["N115", "MA130"]
    groups = ["CO", "PR", "OA", "PI"]
    rows = 60
    entries = sorted((rng.randrange(rows), rng.choice([*table, "CO-999", "XX-45", "PR-2222"]),
                      rng.randrange(10**6), rng.choice(["", "", "N115", "ZZ9", "MA130"]))
                     for _ in range(400))
    reasons = [rng.choice(["", "CO-50", "PR-1", "CO-97"]) for _ in range(rows)]

    def lookup(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        keys = np.array([text_key(n) for n in names], np.uint64)
        order = np.argsort(keys)
        return keys[order], order.astype(np.int64)

    code_keys, code_at = lookup(table)
    remark_keys, remark_at = lookup(remarks)
    codes, found_remarks, flags, sums = tally_adjustments(
        np.array([e[0] for e in entries], np.int64), np.array([text_key(e[1]) for e in entries], np.uint64),
        np.array([e[2] for e in entries], np.int64),
        np.array([text_key(e[3]) if e[3] else 0 for e in entries], np.uint64), rows, code_keys, code_at,
        np.array(booked, np.int64), np.array(adverse, bool), remark_keys, remark_at,
        np.array([text_key(g) for g in groups], np.uint64),
        np.array([text_key(r) if r else 0 for r in reasons], np.uint64), 7)
    expected_flags, expected_sums = [0] * rows, np.zeros(7 * rows, np.int64)
    for (row, code, cents, remark), got_code, got_remark in zip(entries, codes, found_remarks, strict=True):
        assert got_code == (table.index(code) if code in table else -1)
        assert got_remark == (remarks.index(remark) if remark in remarks else -1)
        if code[:2] not in groups:
            expected_flags[row] |= ADJUSTMENT_BAD_GROUP
        if code not in table:
            expected_flags[row] |= ADJUSTMENT_UNKNOWN_CODE
        else:
            expected_sums[booked[table.index(code)] * rows + row] += cents
            if adverse[table.index(code)]:
                expected_flags[row] |= ADJUSTMENT_ADVERSE
        if remark and remark not in remarks:
            expected_flags[row] |= ADJUSTMENT_UNKNOWN_REMARK
        if code == reasons[row]:
            expected_flags[row] |= ADJUSTMENT_REASON_LISTED
    assert flags.tolist() == expected_flags and sums.tolist() == expected_sums.tolist()
    # every kind of flag turns up in these entries
    for bit in (ADJUSTMENT_BAD_GROUP, ADJUSTMENT_UNKNOWN_CODE, ADJUSTMENT_UNKNOWN_REMARK, ADJUSTMENT_ADVERSE,
                ADJUSTMENT_REASON_LISTED):
        assert any(f & bit for f in expected_flags)


@pytest.mark.parametrize("text", ["CO-45:12000;PR-2:20.00", "CO-45:12000;PR2:2000",
                                  "CO-45:12000;PR-2", "CO-45:12000;PR-2:2000:N1:9999",
                                  "CO-45:12000;PR-2:--2000"])
def test_a_malformed_adjustment_names_its_position_never_the_claim_amounts(text: str) -> None:
    """The error reaches task logs: before, it quoted the entry (amounts) or int()'s message."""
    with pytest.raises(ValueError, match="entry 2 of the adjustments") as caught:
        parse_adjustments(text)
    message = str(caught.value)
    assert not any(figure in message for figure in ("12000", "2000", "20.00", "PR", "N1"))
    assert parse_adjustments("CO-45:12000;PR-2:-2000:N1") == (
        Adjustment("CO", "45", 12000), Adjustment("PR", "2", -2000, "N1"))


def test_the_one_pass_kernel_agrees_with_split_tally_and_join() -> None:
    """read_adjustments (what ingest runs) against split_adjustments, tally_adjustments and
    join_adjustments one after the other, on random lists with unknown codes, remarks and groups,
    rows not given (""), amounts with 0, 1 or 2 decimals, and more distinct codes than its memo
    of recent codes holds."""
    import random

    import numpy as np
    import pyarrow as pa

    from pipeline.column_kernels import (
        adjustments_array,
        read_adjustments,
        split_adjustments,
        string_buffers,
        tally_adjustments,
        text_key,
    )

    rng = random.Random(31)
    table = ["CO-45", "PR-1", "PR-2", "PR-3", "CO-50", "OA-23", "PI-A1",
             *(f"CO-{n}" for n in range(300, 700))]
    booked = [rng.randrange(7) for _ in table]
    adverse = [rng.random() < 0.3 for _ in table]
    remarks = ["N115", "MA130", "M1234567"]
    groups = ["CO", "PR", "OA", "PI"]
    candidates = [*table, "CO-999", "XX-45", "PR-2222"]
    values, reasons = [], []
    for _ in range(500):
        entries = [(rng.choice(candidates), rng.randrange(0, 10**9),
                    rng.choice(["", "", "N115", "ZZ9", "MA130"])) for _ in range(rng.randint(1, 6))]
        values.append(";".join(
            f"{c}:{a // 100}" + rng.choice(["", f".{a % 100 // 10}", f".{a % 100:02d}"])
            + (f":{r}" if r else "") for c, a, r in entries))
        reasons.append(rng.choice(["", "CO-50", "PR-1", "CO-97", "CO-450"]))
    text = pa.array(values, pa.string())
    rows = np.array(sorted(rng.sample(range(len(values)), 400)), np.int64)

    def lookup(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        keys = np.array([text_key(n) for n in names], np.uint64)
        order = np.argsort(keys)
        return keys[order], order.astype(np.int64)

    code_keys, code_at = lookup(table)
    remark_keys, remark_at = lookup(remarks)
    tables = (code_keys, code_at, np.array(booked, np.int64), np.array(adverse, bool), remark_keys, remark_at,
              np.array([text_key(g) for g in groups], np.uint64))
    reason_keys = np.array([text_key(r) if r else 0 for r in reasons], np.uint64)
    n = len(values)
    parent, keys, cents, entry_remarks = split_adjustments(*string_buffers(text), rows)
    codes, found_remarks, flags, sums = tally_adjustments(parent, keys, cents, entry_remarks, n, *tables[:3],
                                                          *tables[3:], reason_keys, 7)
    joined = adjustments_array(np.searchsorted(parent, np.arange(n + 1)), codes, cents, found_remarks,
                               pa.array(table), pa.array(remarks))
    got_flags, got_sums, offsets, data = read_adjustments(*string_buffers(text), rows, *tables,
                                                          reason_keys, 7)
    assert got_flags.tolist() == flags.tolist() and got_sums.tolist() == sums.tolist()
    got = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    assert got.to_pylist() == joined.to_pylist()
    assert all(got[i].as_py() == "" for i in sorted(set(range(n)) - set(rows.tolist())))
