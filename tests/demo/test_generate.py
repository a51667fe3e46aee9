"""The synthetic extract is deterministic and shaped like a real month of claims."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from pipeline.demo.generate import OPTIONAL_CLAIM_COLUMNS, generate_extract
from pipeline.ingest.schema import Column, file_spec
from pipeline.sensitive_services import sensitive_services
from pipeline.storage import EXTRACT_MONEY_COLUMNS


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_extract(tmp_path / "a", members=50, period="2026-11", seed=3)
    b = generate_extract(tmp_path / "b", members=50, period="2026-11", seed=3)
    c = generate_extract(tmp_path / "c", members=50, period="2026-11", seed=4)
    for name in ("members.csv", "claims_part1.csv", "claims_part2.csv"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()
    assert (a.folder / "claims_part1.csv").read_bytes() != (c.folder / "claims_part1.csv").read_bytes()


def test_lines_per_member_and_amounts_reconcile(tmp_path: Path) -> None:
    extract = generate_extract(tmp_path, members=300, period="2026-11", seed=11)
    rows = _read(tmp_path / "claims_part1.csv") + _read(tmp_path / "claims_part2.csv")
    assert len(rows) == extract.claim_lines
    per_member = Counter(row["member_id"] for row in rows if row["member_id"].startswith("M0"))
    assert min(per_member.values()) >= 1 and max(per_member.values()) <= 21  # 20 + a duplicate
    reconciled = 0
    for row in rows:
        try:
            cents = [round(float(row[c]) * 100) for c in EXTRACT_MONEY_COLUMNS]
        except ValueError:
            continue
        pended = row["status"] == "pended" and not any(cents[1:])  # billed alone: not decided yet
        reconciled += cents[0] == sum(cents[1:]) or pended
    assert reconciled >= len(rows) - extract.malformed_lines
    statuses = Counter(row["status"] for row in rows)
    assert statuses["denied"] > 0 and statuses["paid"] > statuses["denied"]


def test_members_include_missing_and_invalid_emails_and_both_languages(tmp_path: Path) -> None:
    generate_extract(tmp_path, members=600, period="2026-11", seed=5)
    members = _read(tmp_path / "members.csv")
    emails = [m["email"] for m in members]
    assert any(e == "" for e in emails)
    assert any(e and ("@" not in e or e.endswith("@") or "@@" in e) for e in emails)
    assert {m["language"] for m in members} == {"en", "es"}
    assert {m["edelivery_consent"] for m in members} == {"Y", "N"}


def test_parquet_extract_matches_the_csv_one(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from pipeline.ingest import ingest

    as_csv = generate_extract(tmp_path / "csv", members=80, period="2026-11", seed=9)
    as_parquet = generate_extract(tmp_path / "pq", members=80, period="2026-11", seed=9, fmt="parquet",
                                  claim_files=3)
    assert as_parquet.claim_lines == as_csv.claim_lines
    assert sorted(p.name for p in as_parquet.folder.glob("claims*")) == [
        "claims_part1.parquet", "claims_part2.parquet", "claims_part3.parquet"]
    assert sum(pq.read_metadata(p).num_rows for p in as_parquet.folder.glob("claims*")) == as_csv.claim_lines
    a = ingest(as_csv.folder, tmp_path / "out_csv", 2)
    b = ingest(as_parquet.folder, tmp_path / "out_pq", 2)
    assert (a.rows_read, a.rows_accepted) == (b.rows_read, b.rows_accepted)


# -- households, codes, sensitive services and confidential requests (the demo's defaults) -----
DEMO_PERIOD_START, DEMO_PERIOD_END = date(2026, 11, 1), date(2026, 11, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_extract(tmp_path_factory.mktemp("demo") / "in", members=1000, period="2026-11",
                            seed=7).folder


def _claims(folder: Path) -> list[dict[str, str]]:
    """The claim lines, less the ones damaged on purpose to name a member that is not there."""
    rows = [row for path in sorted(folder.glob("claims*.csv")) for row in _read(path)]
    return [row for row in rows if row["member_id"].startswith("M0")]


def _fits(column: Column, value: str) -> bool:
    if not value:
        return not column.required
    if column.type == "date":
        return date.fromisoformat(value) > date(1900, 1, 1)
    return (column.pattern is None or re.fullmatch(column.pattern, value) is not None) and (
        not column.values or value in column.values)


def _ended(request: dict[str, str]) -> bool:
    """Ended before the period began: such a request must change nothing."""
    return bool(request["effective_to"]) and date.fromisoformat(request["effective_to"]) < DEMO_PERIOD_START


def _sensitive(row: dict[str, str]) -> frozenset[str]:
    return sensitive_services().categories(
        procedure=row["service_code"], diagnoses=row["diagnosis_codes"].split(";"),
        revenue=row["revenue_code"], place_of_service=row["place_of_service"])


def test_claim_lines_say_whose_care_they_are_and_carry_valid_codes(demo: Path) -> None:
    columns = {c.name: c for c in file_spec("claims").columns}
    rows = _claims(demo)
    assert list(_read(demo / "claims_part1.csv")[0])[-len(OPTIONAL_CLAIM_COLUMNS):] == OPTIONAL_CLAIM_COLUMNS
    assert all(columns[name].optional_column for name in OPTIONAL_CLAIM_COLUMNS)
    for row in rows:
        for name in OPTIONAL_CLAIM_COLUMNS:
            assert _fits(columns[name], row[name]), (name, row[name])
        assert row["patient_id"] and row["diagnosis_codes"] and row["place_of_service"]
        assert row["patient_id"].startswith(f"{row['member_id']}-")
        assert (row["patient_id"] == f"{row['member_id']}-01") == (row["patient_relationship"] == "self")
    assert {row["patient_relationship"] for row in rows} == {"self", "spouse", "child"}
    assert {row["place_of_service"] for row in rows} >= {"11", "22", "23"}
    assert 0 < sum(bool(row["revenue_code"]) for row in rows) < len(rows) / 4  # the hospital's lines
    patients_of_claim = Counter(claim for claim, _ in {(r["claim_id"], r["patient_id"]) for r in rows})
    assert set(patients_of_claim.values()) == {1}  # a claim is one patient's care
    family = Counter(member for member, _ in {(r["member_id"], r["patient_id"]) for r in rows})
    assert max(family.values()) > 1  # some members' month holds claims of several people


def test_a_small_share_of_lines_are_sensitive_services_of_subscribers_and_dependents(demo: Path) -> None:
    rows = _claims(demo)
    sensitive = [row for row in rows if _sensitive(row)]
    assert 20 <= len(sensitive) <= len(rows) * 0.05
    assert {row["patient_relationship"] for row in sensitive} == {"self", "spouse", "child"}
    assert {"behavioral_health", "substance_use", "reproductive_sexual_health"} <= set().union(
        *(_sensitive(row) for row in sensitive))
    # ordinary diagnoses, places and revenue codes never make an ordinary visit look sensitive
    assert all(sensitive_services().categories(procedure=row["service_code"]) for row in sensitive)


def test_requests_are_adult_dependents_own_addresses_in_every_kind(demo: Path, tmp_path: Path) -> None:
    requests = _read(demo / "confidential_requests.csv")
    columns = file_spec("requests").columns
    assert list(requests[0]) == [c.name for c in columns] and len(requests) >= 5
    members = {m["member_id"]: m for m in _read(demo / "members.csv")}
    relationship = {r["patient_id"]: r["patient_relationship"] for r in _claims(demo)}
    for request in requests:
        assert all(_fits(c, request[c.name]) for c in columns), request
        assert relationship[request["patient_id"]] in ("spouse", "child")  # with claims this month
        assert request["patient_id"].startswith(f"{request['member_id']}-")
        assert date.fromisoformat(request["date_of_birth"]) <= date(2008, 11, 1)  # 18 or over
        assert date.fromisoformat(request["effective_from"]) < DEMO_PERIOD_START
        subscriber = members[request["member_id"]]
        if request["channel"] == "email":
            assert "@" in request["email"] and request["email"] != subscriber["email"]
        else:
            assert all(request[f] for f in ("address_line1", "city", "state", "postal_code"))
            assert request["address_line1"] != subscriber["address_line1"]
    assert {(r["channel"], r["scope"]) for r in requests} == {
        ("email", "all"), ("email", "sensitive"), ("paper", "all"), ("paper", "sensitive")}
    ended = [r for r in requests if _ended(r)]
    assert 1 <= len(ended) < len(requests)
    assert all(not r["effective_to"] or date.fromisoformat(r["effective_to"]) > DEMO_PERIOD_END
               for r in requests if not _ended(r))  # the others cover the whole period
    again = generate_extract(tmp_path / "again", members=1000, period="2026-11", seed=7).folder
    name = "confidential_requests.csv"
    assert (again / name).read_bytes() == (demo / name).read_bytes()


def test_the_demo_shows_requested_and_unrequested_sensitive_care_of_dependents(demo: Path) -> None:
    requested = {r["patient_id"]: r for r in _read(demo / "confidential_requests.csv")}
    treated = {row["patient_id"] for row in _claims(demo)
               if row["patient_relationship"] != "self" and _sensitive(row)}
    assert any(requested[p]["scope"] == "sensitive" and not _ended(requested[p])
               for p in treated & set(requested))  # lines that move by request
    assert treated - set(requested)  # lines that the sensitive-services policy decides


def test_ingest_accepts_the_new_columns_and_every_request(demo: Path, tmp_path: Path) -> None:
    from pipeline.ingest import ingest

    result = ingest(demo, tmp_path / "out", 2, period="2026-11")
    (requests,) = [f for f in result.files if f.kind == "requests"]
    assert requests.rows_read == requests.rows_accepted >= 5
    assert not [q for q in result.quarantined if q.field in OPTIONAL_CLAIM_COLUMNS]


def test_a_small_extract_without_requests_writes_no_requests_file(tmp_path: Path) -> None:
    extract = generate_extract(tmp_path, members=3, period="2026-11", seed=2)
    assert extract.requests == 0 and not (tmp_path / "confidential_requests.csv").exists()


# -- issue 17: plausible claims and the extract's new columns ---------------------------------
def test_claims_are_plausible(demo: Path) -> None:
    from pipeline.demo.adjudicate import EMERGENCY, PREVENTIVE_VISITS, PROVIDERS

    rows = _claims(demo)
    specialty: dict[str, set[str]] = {}
    for provider in [*PROVIDERS, EMERGENCY]:  # the hospital's emergency room bills under its name
        specialty.setdefault(provider.name, set()).update(provider.services)
        specialty[provider.name] |= ({"90686", "90471"} if "FLU" in provider.services else set()) | (
            set(PREVENTIVE_VISITS.values()) if "PREVENTIVE" in provider.services else set())
    for row in rows:
        assert date.fromisoformat(row["received_date"]) <= DEMO_PERIOD_END
        assert not row["paid_date"] or row["received_date"] <= row["paid_date"] <= DEMO_PERIOD_END.isoformat()
        if row["provider_name"] in specialty:  # the sensitive-services clinics bill only their own
            assert row["service_code"] in specialty[row["provider_name"]], row
        preventive = row["service_code"] in {"90686", "90471", *PREVENTIVE_VISITS.values()}
        if preventive and row["network"] == "in" and row["status"] == "paid":
            assert row["deductible"] == row["copay"] == row["coinsurance"] == "0.00", row
    codes_per_claim = Counter((row["claim_id"], row["service_code"]) for row in rows)
    lines_per_claim = Counter((row["claim_id"], row["line_no"]) for row in rows)
    repeated = {key for key, n in lines_per_claim.items() if n > 1}  # the damaged copies, set aside by ingest
    assert all(n == 1 for key, n in codes_per_claim.items()
               if not any(key[0] == claim for claim, _ in repeated))
    every = [row for path in sorted(demo.glob("claims*.csv")) for row in _read(path)]  # damaged ones too
    flu = {row["claim_id"] for row in every if row["service_code"] == "90686"}
    assert flu and flu <= {row["claim_id"] for row in every if row["service_code"] == "90471"}
    # the deductible is met in date order: no deductible after coinsurance began, per member and network
    by_member: dict[tuple[str, str], list[dict[str, str]]] = {}
    once = {(row["claim_id"], row["line_no"]): row for row in reversed(rows)}.values()  # damaged copies out
    for row in sorted(once, key=lambda r: (r["service_date"], r["claim_id"], int(r["line_no"]))):
        by_member.setdefault((row["member_id"], row["network"]), []).append(row)
    for lines in by_member.values():
        began = False
        for row in lines:
            assert not (began and float(row["deductible"]) > 0), row
            began = began or float(row["coinsurance"]) > 0


def test_the_extract_carries_adjustments_payments_plan_types_accumulators(demo: Path, tmp_path: Path) -> None:
    from pipeline.ingest import ingest

    rows = _claims(demo)
    statuses = Counter(row["status"] for row in rows)
    assert statuses["pended"] and statuses["adjusted"]
    assert all(row["original_claim_id"] for row in rows if row["status"] == "adjusted")
    assert any("PR-1:" in row["adjustments"] and "PR-2:" in row["adjustments"] for row in rows)
    assert any(row["status"] == "paid" and "CO-59:" in row["adjustments"] for row in rows)  # a reduction
    assert {row["payee"] for row in rows} == {"provider", "member", ""}
    assert any(row["payment_ref"].startswith("EFT") for row in rows)
    plans = _read(demo / "plans.csv")
    assert {p["plan_type"] for p in plans} == {"erisa_group", "governmental", "church", "individual",
                                               "medicare_advantage", "medicaid"}
    assert any(p["family_deductible_limit"] and p["oon_out_of_pocket_limit"] for p in plans)
    members = _read(demo / "members.csv")
    assert 0 < sum(m["alternate_format"] == "large_print" for m in members) < len(members) / 10
    assert {m["line_of_business"] for m in members} == {"commercial", "medicare_advantage", "medicaid"}
    result = ingest(demo, tmp_path / "out", 2, period="2026-11")
    accounts = {f.kind: f for f in result.files}
    assert accounts["accumulators"].rows_read == accounts["accumulators"].rows_accepted > 0
    assert accounts["plans"].rows_quarantined == accounts["members"].rows_quarantined == 0
    new_fields = {"adjustments", "payee", "paid_date", "payment_ref", "original_claim_id"}
    assert not [q for q in result.quarantined if q.field in new_fields or "pended" in q.reason]
