"""Each extract source end to end: FHIR (CARIN BB samples, NDJSON, Bundles), Synthea, S3.

The S3 tests run against moto's server mode over real HTTP on 127.0.0.1 (a random port), with
boto3 as in production: S3 itself cannot be reached from here.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.clock import utc_now
from pipeline.compose import KEYED_IDS, StatementIds, iter_composed
from pipeline.deadlines import NoticeRule
from pipeline.ingest import ExtractFileError, ExtractSourceError, detect_format, ingest, locate_period
from pipeline.ingest.sources import open_extract
from pipeline.periods import statement_date

CARIN = "fhir/carin-bb/json-v1.1.0"
MONEY = ("billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay", "coinsurance",
         "not_covered")


def _statements(out: Path, period: str, shards: int = 2) -> list:  # type: ignore[type-arg]
    ids = StatementIds(KEYED_IDS, b"test statement id key")
    return [c for shard in range(shards)
            for c in iter_composed(out, shard, period, statement_ids=ids,
                                   notices=NoticeRule.leaving_on(30, statement_date(period)))]


def _accounts(result) -> dict[str, tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return {f.source_file: (f.rows_read, f.rows_accepted, f.rows_quarantined) for f in result.files}


# -- FHIR: the CARIN Blue Button examples ----------------------------------------------------
def test_carin_bb_examples_end_to_end(shared_data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fhir"
    shutil.copytree(shared_data_dir / CARIN, folder)
    assert detect_format(folder) == "fhir"
    result = ingest(folder, tmp_path / "out", 2, period="2020-10")
    accounts = _accounts(result)
    assert result.format == "fhir"
    assert accounts["ExplanationOfBenefit_ProfessionalEOBExample1.json"] == (6, 2, 4)  # two reversal pairs
    assert accounts["ExplanationOfBenefit_OutpatientEOBExample1.json"] == (2, 2, 0)
    assert accounts["ExplanationOfBenefit_InpatientEOBExample1.json"] == (1, 0, 1)  # header totals only
    reasons = Counter((q.source_file.split("_")[1], q.field, q.reason.split(":")[0])
                      for q in result.quarantined)
    assert reasons[("InpatientEOBExample1.json", "billed",
                    "billed does not equal discount + plan paid + other payer + member share")] == 1
    assert reasons[("ProfessionalEOBExample1.json", "(item)", "reversal pair")] == 4
    (statement,) = [c.statement for c in _statements(tmp_path / "out", "2020-10")]
    member = statement.member
    assert (member.member_id, member.last_name, member.city, member.state) == (
        "88800933501", "Test", "PITTSBURGH", "PA")
    assert member.line_of_business == "medicare_advantage"  # "MEDICARE HMO PLAN"
    assert {(line.claim_id, line.line_no, line.network) for line in statement.lines} == {
        ("OutpatientEOBExample1", 1, "out"), ("OutpatientEOBExample1", 2, "out"),
        ("ProfessionalEOBExample1", 3, "in"), ("ProfessionalEOBExample1", 5, "in")}
    professional = [line for line in statement.lines if line.claim_id == "ProfessionalEOBExample1"]
    assert sum(line.billed for line in professional) == 82000  # the EOB's submitted total, $820.00
    assert sum(line.billed - line.discount for line in professional) == 25891  # eligible total $258.91
    assert all(line.provider_name for line in statement.lines)
    quarantine = tmp_path / "out" / "quarantine" / "ExplanationOfBenefit_ProfessionalEOBExample1" \
        ".quarantine.csv"
    assert "ExplanationOfBenefit/ProfessionalEOBExample1 item 2" in quarantine.read_text()


# -- FHIR: NDJSON and Bundles (team-made, STU2-shaped) ---------------------------------------
def _coding(system: str, code: str) -> dict:  # type: ignore[type-arg]
    return {"coding": [{"system": system, "code": code}]}


ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
DISC = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
STATUS = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"


def _money(category: str, value: str, system: str = ADJ) -> dict:  # type: ignore[type-arg]
    return {"category": _coding(system, category), "amount": {"value": Decimal(value), "currency": "USD"}}


def _reason(kind: str, code: str) -> dict:  # type: ignore[type-arg]
    return {"category": _coding(DISC, kind), "reason": _coding(CARC, code)}


def _patient(pid: str, member: str, family: str) -> dict:  # type: ignore[type-arg]
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"type": _coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"),
                            "value": member}],
            "name": [{"family": family, "given": ["Team", "Made"]}], "birthDate": "1971-05-06",
            "address": [{"use": "home", "line": ["9 Fixture Way", "Unit 2"], "city": "Erie", "state": "PA",
                         "postalCode": "16501"}],
            "telecom": [{"system": "email", "value": f"{family.lower()}@example.org"}],
            "communication": [{"language": _coding("urn:ietf:bcp:47", "es-US"), "preferred": True}]}


def _coverage(pid: str) -> dict:  # type: ignore[type-arg]
    cls = "http://terminology.hl7.org/CodeSystem/coverage-class"
    return {"resourceType": "Coverage", "id": f"cov-{pid}", "status": "active",
            "beneficiary": {"reference": f"Patient/{pid}"},
            "relationship": _coding(RELATIONSHIP, "spouse"),
            "class": [{"type": _coding(cls, "plan"), "value": "PPO-1", "name": "Fixture PPO"},
                      {"type": _coding(cls, "group"), "value": "G-77", "name": "Fixture Employer"}],
            "payor": [{"reference": "Organization/payer"}]}


ORG = {"resourceType": "Organization", "id": "er-group", "name": "Lakeshore Emergency Physicians",
       "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1932147731"}]}


def _eob(eid: str, pid: str, network: str, items: list[dict]) -> dict:  # type: ignore[type-arg]
    return {"resourceType": "ExplanationOfBenefit", "id": eid,
            "identifier": [{"type": _coding("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType",
                                            "uc"), "value": f"CLM-{eid}"}],
            "type": _coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
            "patient": {"reference": f"Patient/{pid}"}, "created": "2026-11-20T00:00:00Z",
            "provider": {"reference": "Organization/er-group"},
            "insurance": [{"focal": True, "coverage": {"reference": f"Coverage/cov-{pid}"}}],
            "supportingInfo": [{"sequence": 1, "category": _coding("x", "clmrecvddate"),
                                "timingDate": "2026-11-12"}],
            "adjudication": [{"category": _coding(DISC, "billingnetworkstatus"),
                              "reason": _coding(STATUS, network)}],
            "item": items}


def _item(sequence: int, code: str, amounts: list[dict], reasons: list[dict] | None = None) -> dict:  # type: ignore[type-arg]
    return {"sequence": sequence, "servicedDate": "2026-11-10",
            "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code,
                                             "display": "LICENSED CPT DESCRIPTOR"}]},
            "adjudication": [*amounts, *(reasons or [])]}


def _write_fhir(folder: Path) -> None:
    folder.mkdir(parents=True)
    emergency = _eob("1", "p1", "outofnetwork", [
        _item(1, "99283", [_money("submitted", "500.00"), _money("eligible", "400.00"),
                           _money("paidtoprovider", "300.00", C4BB), _money("copay", "100.00")],
              [_reason("adjustmentreason", "45")]),
        _item(2, "71046", [_money("submitted", "220.00"), _money("eligible", "220.00"),
                           _money("paidtoprovider", "0.00", C4BB), _money("noncovered", "220.00", C4BB)],
              [_reason("denialreason", "50")]),
    ])
    unknown_patient = _eob("2", "nobody", "innetwork", [
        _item(1, "99213", [_money("submitted", "100.00"), _money("benefit", "100.00")])])
    lines = [json.dumps(r, default=str) for r in (emergency, unknown_patient)]
    lines.insert(1, '{"resourceType": "ExplanationOfBenefit", "id": "broken"')  # not JSON
    with gzip.open(folder / "ExplanationOfBenefit.ndjson.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": _patient("p1", "MBR-0001", "Fixture")},
        {"resource": _coverage("p1")}, {"resource": ORG}]}
    (folder / "supporting.json").write_text(json.dumps(bundle), encoding="utf-8")


def test_fhir_ndjson_and_bundle_map_amounts_reasons_and_problems(tmp_path: Path) -> None:
    _write_fhir(tmp_path / "fhir")
    result = ingest(tmp_path / "fhir", tmp_path / "out", 2, period="2026-11")
    assert _accounts(result)["ExplanationOfBenefit.ndjson.gz"] == (4, 2, 2)
    found = {q.row_number: (q.field, q.reason) for q in result.quarantined}
    assert found[3] == ("(resource)", "not valid JSON")
    assert found[4] == ("member_id",
                        "the EOB's patient reference does not resolve to a Patient in the export")
    (composed,) = _statements(tmp_path / "out", "2026-11")
    statement = composed.statement
    assert (statement.member.member_id, statement.member.language, statement.member.group_number) == (
        "MBR-0001", "es", "G-77")
    assert composed.channel == "paper" and composed.paper_reason == "no_consent"  # FHIR has no consent
    emergency, denied = statement.lines
    assert (emergency.reason_code, emergency.billed, emergency.discount, emergency.plan_paid,
            emergency.copay) == ("CO-45", 50000, 10000, 30000, 10000)
    assert (denied.status, denied.reason_code, denied.not_covered) == ("denied", "CO-50", 22000)
    assert (emergency.provider_name, emergency.provider_npi) == (ORG["name"], "1932147731")
    assert emergency.patient_relationship == "spouse" and emergency.network == "out"
    assert emergency.service_description == "Professional service"  # never the licensed descriptor
    assert statement.has_no_surprises_protection and statement.has_adverse_determination
    # every adjustment is explained: the copay too (PR-3, derived from the amounts)
    assert {r.code for r in statement.reasons} == {"CO-45", "CO-50", "PR-3"}


def test_fhir_adjudication_payment_pended_and_adjusted_map_onto_the_new_columns(tmp_path: Path) -> None:
    folder = tmp_path / "fhir"
    folder.mkdir()
    paid = _eob("10", "p1", "innetwork", [
        _item(1, "99214", [_money("submitted", "300.00"), _money("eligible", "200.00"),
                           _money("deductible", "50.00"), _money("coinsurance", "30.00"),
                           _money("paidtoprovider", "120.00", C4BB)],
              [{**_reason("adjustmentreason", "45"), "amount": {"value": Decimal("100.00")}}])])
    paid["payment"] = {"date": "2026-11-25", "identifier": {"value": "EFT-88812"}}
    paid["payee"] = {"type": _coding("http://terminology.hl7.org/CodeSystem/payeetype", "provider")}
    queued = _eob("11", "p1", "innetwork", [_item(1, "99213", [_money("submitted", "180.00")])])
    queued["outcome"] = "queued"
    adjusted = _eob("12", "p1", "innetwork", [
        _item(1, "99213", [_money("submitted", "180.00"), _money("eligible", "150.00"),
                           _money("paidtopatient", "150.00", C4BB)])])
    relationship = _coding("http://terminology.hl7.org/CodeSystem/related-claim-relationship", "prior")
    adjusted["related"] = [{"claim": {"identifier": {"value": "CLM-9"}}, "relationship": relationship}]
    adjusted["payment"] = {"date": "2026-11-26", "identifier": {"value": "CHK123456"}}
    lines = [json.dumps(r, default=str) for r in (paid, queued, adjusted)]
    (folder / "ExplanationOfBenefit.ndjson").write_text("\n".join(lines) + "\n")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _patient("p1", "MBR-0001", "Fixture")}, {"resource": _coverage("p1")},
        {"resource": ORG}]}
    (folder / "supporting.json").write_text(json.dumps(bundle), encoding="utf-8")
    result = ingest(folder, tmp_path / "out", 1, period="2026-11")
    assert _accounts(result)["ExplanationOfBenefit.ndjson"] == (3, 3, 0)
    table = pq.read_table(tmp_path / "out" / "lines").to_pandas().sort_values("claim_id")
    table = table.reset_index(drop=True)
    assert list(table["status"]) == ["paid", "pended", "adjusted"]
    assert list(table["adjustments"]) == ["PR-1:5000;PR-2:3000;CO-45:10000", "", "CO-45:3000"]
    assert list(table["payee"]) == ["provider", "", "member"]
    assert list(table["payment_ref"]) == ["EFT-88812", "", "CHK123456"]
    assert [d.isoformat() if isinstance(d, date) else "" for d in table["paid_date"]] == [
        "2026-11-25", "", "2026-11-26"]
    assert list(table["pending"]) == [0, 18000, 0] and list(table["original_claim_id"]) == ["", "", "CLM-9"]


def test_fhir_export_without_patients_fails_naming_the_problem(tmp_path: Path) -> None:
    folder = tmp_path / "fhir"
    folder.mkdir()
    (folder / "ExplanationOfBenefit.ndjson").write_text(json.dumps(_eob("1", "p1", "innetwork", [])) + "\n")
    with pytest.raises(ExtractFileError, match="no Patient resources"):
        ingest(folder, tmp_path / "out", 2, period="2026-11")


# -- Synthea --------------------------------------------------------------------------------
def test_synthea_sample_end_to_end(shared_data_dir: Path, tmp_path: Path) -> None:
    folder = shared_data_dir / "synthea"
    assert detect_format(folder) == "synthea"
    result = ingest(folder, tmp_path / "out", 2, period="2023-10")
    assert result.format == "synthea"
    for account in result.files:
        assert account.rows_read == account.rows_accepted + account.rows_quarantined
    claims = _accounts(result)["claims_transactions.csv"]
    assert claims[0] > 0 and claims[1] > 0
    assert any("left out" in note for note in result.notes)
    lines = pq.read_table(tmp_path / "out" / "lines").to_pylist()
    for line in lines:  # derived amounts still reconcile to the cent
        assert line["billed"] == sum(line[m] for m in MONEY[1:])
        assert line["network"] == "in" and line["status"] == "paid"
        # each patient is a member of their own; SNOMED CT codes never tell a sensitive service
        assert line["patient_id"] == line["member_id"] and not line["sensitive"]
        # the payer's ECHECK pays the provider, not before the claim was billed
        assert (line["payee"] == "provider") == (line["plan_paid"] > 0) == (line["paid_date"] is not None)
        assert line["paid_date"] is None or line["paid_date"] >= line["received_date"]
    assert any(line["payment_ref"] for line in lines)
    statements = _statements(tmp_path / "out", "2023-10")
    assert statements and all(c.statement.member.state == "MA" for c in statements)
    assert all(c.statement.accumulators == [] for c in statements)  # Synthea has no plan limits
    assert all(c.channel == "paper" for c in statements)  # and no e-mail addresses
    missing_zip = [q for q in result.quarantined if q.source_file == "patients.csv"]
    assert all(q.field == "postal_code" for q in missing_zip)


def test_synthea_files_are_streamed_in_chunks_with_the_same_result(shared_data_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 rows keep only the period's rows and number them like the whole file."""
    from pipeline.ingest.sources import synthea

    whole = ingest(shared_data_dir / "synthea", tmp_path / "whole", 2, period="2023-10")
    monkeypatch.setattr(synthea, "READ_ROWS", 7)
    chunked = ingest(shared_data_dir / "synthea", tmp_path / "chunked", 2, period="2023-10")
    assert chunked.files == whole.files and chunked.notes == whole.notes
    # the member file is checked alongside the claims: rows of different files may interleave
    def by_file(log) -> list:  # type: ignore[no-untyped-def,type-arg]
        return sorted(log, key=lambda q: (q.source_file, q.row_number, q.field, q.reason))

    assert by_file(chunked.quarantined) == by_file(whole.quarantined)
    columns = ["claim_id", "line_no", "source_row", "billed", "plan_paid", "copay", "line_hash"]
    assert (pq.read_table(tmp_path / "chunked" / "lines", columns=columns).sort_by("line_hash").to_pylist()
            == pq.read_table(tmp_path / "whole" / "lines", columns=columns).sort_by("line_hash").to_pylist())


def test_synthea_needs_the_period(shared_data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExtractFileError, match="needs the statement period"):
        ingest(shared_data_dir / "synthea", tmp_path / "out", 2)


# -- whose care a line is, and the codes that tell a sensitive service -----------------------
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
NUBC = "https://www.nubc.org/CodeSystem/RevenueCodes"
PLACE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
PAID = [_money("submitted", "100.00"), _money("benefit", "100.00")]


def _mapped(folder: Path, work: Path, period: str) -> dict[tuple[str, str], dict[str, str]]:
    """The canonical rows a mapped extract hands to ingest, by claim and line."""
    extract = open_extract(folder, work, period=period)
    return {(row["claim_id"], row["line_no"]): row
            for item in extract.claims for row in pq.read_table(item.path).to_pylist()}


def _diagnosis(sequence: int, *codings: tuple[str, str]) -> dict:  # type: ignore[type-arg]
    return {"sequence": sequence,
            "diagnosisCodeableConcept": {"coding": [{"system": s, "code": c} for s, c in codings]}}


def _codes(row: dict[str, str]) -> tuple[str, str, str]:
    return row["diagnosis_codes"], row["revenue_code"], row["place_of_service"]


def test_carin_bb_examples_name_the_patient_and_carry_diagnoses_revenue_and_place(
        shared_data_dir: Path, tmp_path: Path) -> None:
    rows = _mapped(shared_data_dir / CARIN, tmp_path / "work", "2020-10")
    assert {row["patient_id"] for row in rows.values()} == {"ExamplePatient1"}
    # no diagnosisSequence on the items: the claim's codes, once each
    assert _codes(rows[("OutpatientEOBExample1", "1")]) == ("I95.1;L97.529;I73.9", "0551", "12")
    # amounts from the totals, codes from the first item
    assert _codes(rows[("InpatientEOBExample1", "1")]) == ("I21.4;I25.118;E78.5;M19.90", "0301", "21")
    # a professional claim bills no revenue code
    assert _codes(rows[("ProfessionalEOBExample1", "3")]) == ("I70.249;L97.929", "", "21")


def _write_coded_fhir(folder: Path) -> None:
    """Two EOBs for patient p1: one with codes of several systems, one with malformed codes."""
    coded = _eob("a", "p1", "innetwork", [
        {**_item(1, "90834", PAID), "diagnosisSequence": [2], "locationCodeableConcept": _coding(PLACE, "11"),
         "revenue": _coding("http://example.org/local-revenue", "R1")},
        {**_item(2, "99213", PAID),
         "revenue": _coding("https://bluebutton.cms.gov/resources/variables/rev_cntr", "0510"),
         "locationCodeableConcept": _coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "HOSP")},
        {**_item(3, "36415", PAID), "diagnosisSequence": [3], "revenue": _coding(NUBC, "0300")},
    ])
    coded["diagnosis"] = [_diagnosis(1, (ICD10CM, "J06.9")),
                          _diagnosis(2, (SNOMED, "35489007"), (ICD10CM, "F32.9")),
                          _diagnosis(3, (SNOMED, "44054006"))]
    malformed = _eob("b", "p1", "innetwork", [
        {**_item(1, "99213", PAID), "diagnosisSequence": [1]},
        {**_item(2, "99213", PAID), "diagnosisSequence": [2],
         "locationCodeableConcept": _coding(PLACE, "111")},
        {**_item(3, "99213", PAID), "diagnosisSequence": [2], "revenue": _coding(NUBC, "51")},
    ])
    malformed["diagnosis"] = [_diagnosis(1, (ICD10CM, "F32.9!")), _diagnosis(2, (ICD10CM, "J06.9"))]
    folder.mkdir(parents=True)
    (folder / "ExplanationOfBenefit.ndjson").write_text(
        "\n".join(json.dumps(eob, default=str) for eob in (coded, malformed)) + "\n", encoding="utf-8")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": resource} for resource in (_patient("p1", "MBR-0001", "Fixture"), _coverage("p1"), ORG)]}
    (folder / "supporting.json").write_text(json.dumps(bundle), encoding="utf-8")


def test_fhir_lines_take_their_own_icd10cm_diagnoses_revenue_and_place_of_service(tmp_path: Path) -> None:
    _write_coded_fhir(tmp_path / "fhir")
    rows = _mapped(tmp_path / "fhir", tmp_path / "work", "2026-11")
    codes = {key: (row["patient_id"], row["diagnosis_codes"], row["revenue_code"], row["place_of_service"])
             for key, row in rows.items() if key[0] == "CLM-a"}
    assert codes == {
        ("CLM-a", "1"): ("p1", "F32.9", "", "11"),  # its diagnosis pointer; SNOMED and a local code dropped
        ("CLM-a", "2"): ("p1", "J06.9;F32.9", "0510", ""),  # no pointer: all the claim's ICD-10-CM codes
        ("CLM-a", "3"): ("p1", "", "0300", ""),  # a diagnosis coded in SNOMED CT only
    }
    result = ingest(tmp_path / "fhir", tmp_path / "out", 2, period="2026-11")
    assert {q.row_number: (q.field, q.reason) for q in result.quarantined} == {
        4: ("diagnosis_codes", "not a list of ICD-10-CM codes separated by ';'"),
        5: ("place_of_service", "not a two-digit CMS place-of-service code"),
        6: ("revenue_code", "not a UB-04 revenue code (3 or 4 digits)"),
    }
    lines = {(r["claim_id"], r["line_no"]): r for r in pq.read_table(tmp_path / "out" / "lines").to_pylist()}
    assert {key: (r["patient_id"], r["sensitive"]) for key, r in lines.items()} == {
        ("CLM-a", 1): ("p1", True), ("CLM-a", 2): ("p1", True), ("CLM-a", 3): ("p1", False)}


REQUEST = {"member_id": "MBR-0001", "patient_id": "p1", "first_name": "Team", "last_name": "Fixture",
           "date_of_birth": "1971-05-06", "channel": "paper", "email": "", "address_line1": "12 Quiet Rd",
           "address_line2": "", "city": "Erie", "state": "PA", "postal_code": "16502", "language": "en",
           "scope": "sensitive", "effective_from": "2026-01-01", "effective_to": ""}


def _write_requests(folder: Path, *rows: dict[str, str]) -> None:
    with (folder / "confidential_requests.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REQUEST))
        writer.writeheader()
        writer.writerows(rows)


def test_fhir_and_synthea_extracts_carry_the_period_s_confidential_requests(shared_data_dir: Path,
                                                                            tmp_path: Path) -> None:
    fhir = tmp_path / "fhir"
    _write_fhir(fhir)
    _write_requests(fhir, REQUEST)
    assert detect_format(fhir) == "fhir"
    result = ingest(fhir, tmp_path / "out", 2, period="2026-11")
    assert _accounts(result)["confidential_requests.csv"] == (1, 1, 0)
    synthea = tmp_path / "synthea"
    shutil.copytree(shared_data_dir / "synthea", synthea)
    _write_requests(synthea, REQUEST)
    assert detect_format(synthea) == "synthea"
    requests = open_extract(synthea, tmp_path / "work", period="2023-10").requests
    assert requests is not None and requests.source_name == "confidential_requests.csv"
    assert open_extract(shared_data_dir / "synthea", tmp_path / "bare", period="2023-10").requests is None
    # a requests file that would go unread stops the run, naming it
    (fhir / "confidential_requests.csv").rename(fhir / "confidential_requests.csv.gz")
    with pytest.raises(ExtractFileError, match=r"^confidential_requests\.csv\.gz: the file is compressed"):
        ingest(fhir, tmp_path / "again", 2, period="2026-11")


# -- S3 (moto server over real HTTP) ---------------------------------------------------------
@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _upload(endpoint: str, folder: Path, prefix: str) -> None:
    from pipeline.ingest.sources.s3 import make_client

    client = make_client(endpoint)
    client.create_bucket(Bucket="eob-extracts")
    for path in sorted(folder.iterdir()):
        client.upload_file(str(path), "eob-extracts", f"{prefix}{path.name}")
    client.put_object(Bucket="eob-extracts", Key=f"{prefix}notes/readme.txt", Body=b"ignored")


def test_s3_prefix_is_discovered_downloaded_and_ingested(s3: str, tmp_path: Path) -> None:
    """Over HTTP to a moto server: list the period's prefix, download, ingest."""
    from pipeline.demo.generate import generate_extract
    from pipeline.ingest.sources.s3 import S3Location, list_periods, make_client

    extract = generate_extract(tmp_path / "local", members=60, period="2026-11", seed=2)
    _upload(s3, extract.folder, "insurer/2026-11/")
    client = make_client(s3)
    client.put_object(Bucket="eob-extracts", Key="insurer/2026-10/members.csv", Body=b"x")
    assert list_periods(S3Location.parse("s3://eob-extracts/insurer"), client) == ["2026-10", "2026-11"]
    folder = locate_period("s3://eob-extracts/insurer/", tmp_path / "unused", "2026-11", tmp_path / "dl",
                           endpoint_url=s3)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in extract.folder.iterdir())
    manifest = json.loads((folder / ".s3-manifest.json").read_text())
    assert {m["key"] for m in manifest} == {f"insurer/2026-11/{p.name}" for p in extract.folder.iterdir()}
    result = ingest(folder, tmp_path / "out", 2, period="2026-11")
    assert result.rows_read == extract.claim_lines
    from types import SimpleNamespace

    from pipeline.settings import Settings
    from pipeline.stages.ingest import extract_ready_stage

    ctx = SimpleNamespace(settings=Settings(workspace=tmp_path, extracts_url="s3://eob-extracts/insurer",
                                            s3_endpoint_url=s3, extract_quiet_minutes=0), now=utc_now)
    assert extract_ready_stage(ctx, "2026-11") and not extract_ready_stage(ctx, "2026-12")  # type: ignore[arg-type]


def test_s3_extract_ready_waits_for_files_and_names_a_wrong_bucket(s3: str, tmp_path: Path) -> None:
    """Over HTTP to a moto server: the sensor's check, before and after the extract arrives: extract
    objects, none changed for the quiet period (LastModified), and the marker object."""
    from types import SimpleNamespace

    from pipeline.ingest.sources.s3 import make_client
    from pipeline.settings import Settings
    from pipeline.stages import extract_ready_stage

    def ready(url: str, minutes_later: int = 15) -> bool:
        settings = Settings(workspace=tmp_path, extracts_url=url, s3_endpoint_url=s3,
                            extract_ready_marker="_SUCCESS")
        ctx = SimpleNamespace(settings=settings, now=lambda: utc_now() + timedelta(minutes=minutes_later))
        return extract_ready_stage(ctx, "2026-11")  # type: ignore[arg-type]

    client = make_client(s3)  # a bucket of its own: moto keeps buckets across servers in a process
    client.create_bucket(Bucket="eob-drop")
    assert not ready("s3://eob-drop/insurer")
    client.put_object(Bucket="eob-drop", Key="insurer/2026-11/notes/readme.txt", Body=b"ignored")
    client.put_object(Bucket="eob-drop", Key="insurer/2026-11/manifest.txt", Body=b"ignored")
    client.put_object(Bucket="eob-drop", Key="insurer/2026-11/notes/_SUCCESS", Body=b"")  # not the period's
    assert not ready("s3://eob-drop/insurer/")  # nothing an ingest would read
    client.put_object(Bucket="eob-drop", Key="insurer/2026-11/members.csv", Body=b"member_id\n")
    assert not ready("s3://eob-drop/insurer/")  # no marker yet
    client.put_object(Bucket="eob-drop", Key="insurer/2026-11/_SUCCESS", Body=b"")
    assert ready("s3://eob-drop/insurer/")
    assert not ready("s3://eob-drop/insurer/", minutes_later=0)  # members.csv changed just now
    wrong = "s3://no-such-bucket/insurer/2026-11/: the bucket does not exist"
    with pytest.raises(ExtractSourceError, match=wrong):
        ready("s3://no-such-bucket/insurer")


def test_s3_multipart_upload_in_progress_holds_the_extract_back_until_abandoned(s3: str) -> None:
    """A big object appears only when its upload completes, dated from when the upload began: an
    upload in progress means the delivery is not complete, unless it was abandoned a day ago."""
    from pipeline.ingest.sources.s3 import S3Location, make_client, period_arrival

    client = make_client(s3)
    client.create_bucket(Bucket="eob-uploads")
    client.put_object(Bucket="eob-uploads", Key="insurer/2026-11/members.csv", Body=b"member_id\n")
    location = S3Location.parse("s3://eob-uploads/insurer")
    client.create_multipart_upload(Bucket="eob-uploads", Key="insurer/2026-11/notes/big.csv")  # a sub-folder
    assert period_arrival(location, "2026-11", client, None, utc_now()).uploading == 0
    client.create_multipart_upload(Bucket="eob-uploads", Key="insurer/2026-11/claims_part2.csv")
    began = max(u["Initiated"] for u in client.list_multipart_uploads(Bucket="eob-uploads")["Uploads"])
    arrival = period_arrival(location, "2026-11", client, None, began + timedelta(hours=2))
    assert arrival.uploading == 1 and arrival.waiting_for(began + timedelta(hours=2), timedelta(0)) == (
        "1 upload(s) still in progress")
    later = period_arrival(location, "2026-11", client, None, began + timedelta(days=2))
    assert (later.uploading, later.abandoned) == (0, 1)  # ready, with a warning in the task log


def test_s3_problems_name_bucket_and_prefix(s3: str, tmp_path: Path) -> None:
    """Over HTTP to a moto server: a missing bucket and an empty period fail with a clear message."""
    from pipeline.ingest.sources.s3 import fetch_period, make_client

    with pytest.raises(ExtractSourceError, match="s3://no-such-bucket/x/2026-11/: the bucket does not exist"):
        fetch_period("s3://no-such-bucket/x", "2026-11", tmp_path / "dl", endpoint_url=s3)
    make_client(s3).create_bucket(Bucket="eob-extracts")
    with pytest.raises(ExtractSourceError, match="no extract files for period 2026-11"):
        fetch_period("s3://eob-extracts/x", "2026-11", tmp_path / "dl", endpoint_url=s3)
    with pytest.raises(ExtractSourceError, match="not an s3://bucket/prefix"):
        fetch_period("https://example.com", "2026-11", tmp_path / "dl", endpoint_url=s3)


def test_s3_that_does_not_answer_in_time_is_worth_a_retry_not_a_refusal(  # type: ignore[no-untyped-def]
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An S3 endpoint that takes the connection and never answers: ExtractUnavailable (the task
    retries it), not an ExtractSourceError (a refused extract, failed at once), naming the prefix."""
    import socket

    import boto3
    from botocore.config import Config

    from pipeline.ingest import ExtractUnavailable
    from pipeline.ingest.sources.s3 import fetch_period

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as silent:  # the kernel completes the handshake; no one ever reads
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = boto3.client("s3", endpoint_url=endpoint, config=Config(
            connect_timeout=1, read_timeout=1, retries={"max_attempts": 1, "mode": "standard"}))
        with pytest.raises(ExtractUnavailable) as caught:
            fetch_period("s3://eob-drop/insurer", "2026-11", tmp_path / "dl", client=client)
    assert str(caught.value) == ("s3://eob-drop/insurer/2026-11/: S3 could not be reached or did not "
                                 "answer in time (ReadTimeoutError); a retry may succeed")
    assert not isinstance(caught.value, ExtractFileError)


def test_local_extract_root(tmp_path: Path) -> None:
    download = tmp_path / "dl"
    root = tmp_path / "extracts"
    assert locate_period(None, root, "2026-11", download) == root / "2026-11"
    assert locate_period(f"file://{tmp_path}/x", tmp_path, "2026-11", download) == tmp_path / "x" / "2026-11"
    with pytest.raises(ExtractSourceError, match="does not exist"):
        ingest(tmp_path / "missing", tmp_path / "out", 2)
