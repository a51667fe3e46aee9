"""Confidential communications: a patient's claims reach the patient, and leave no trace on the
subscriber's statement; a dependent's sensitive service without a request follows the policy."""

from __future__ import annotations

import csv
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.compose import KEYED_IDS, Composed, StatementIds, iter_composed
from pipeline.deadlines import NoticeRule
from pipeline.ingest import ingest
from pipeline.ingest.schema import file_spec
from pipeline.periods import statement_date
from pipeline.render import encrypt_pdf, member_password, render_statement

PERIOD = "2026-11"
NOTICES = NoticeRule.leaving_on(30, statement_date(PERIOD))
IDS = StatementIds(KEYED_IDS, b"test-key")
CANARY_PROVIDER = "Canary Counseling Center"
CANARY_AMOUNT = "431.17"
CANARY_CODE = "90834"


def _write(path: Path, kind: str, rows: list[dict[str, str]]) -> None:
    names = file_spec(kind).names
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: row.get(name, "") for name in names})


def _member(member_id: str, email: str, **extra: str) -> dict[str, str]:
    return {"member_id": member_id, "first_name": "Pat", "last_name": "Subscriber",
            "date_of_birth": "1970-01-02",
            "address_line1": "1 Family Way", "city": "Sacramento", "state": "CA", "postal_code": "95814",
            "email": email, "language": "en", "plan_id": "P1", "edelivery_consent": "Y",
            "ytd_deductible": "100.00", "ytd_out_of_pocket": "150.00", **extra}


def _line(claim: str, member: str, patient: str, relationship: str, provider: str, code: str,
          billed: str, served: str, **extra: str) -> dict[str, str]:
    return {"claim_id": claim, "line_no": "1", "member_id": member, "patient_id": patient,
            "patient_name": f"Name {patient}", "patient_relationship": relationship,
            "provider_name": provider, "network": "in", "service_date": served, "received_date": served,
            "service_code": code, "status": "paid", "billed": billed, "discount": "0.00",
            "plan_paid": billed, "other_payer_paid": "0.00", "deductible": "0.00", "copay": "0.00",
            "coinsurance": "0.00", "not_covered": "0.00", **extra}


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    folder = tmp_path / "in" / PERIOD
    folder.mkdir(parents=True)
    _write(folder / "plans.csv", "plans", [{"plan_id": "P1", "plan_name": "Gold", "brand": "default",
                                            "deductible_limit": "1000.00", "out_of_pocket_limit": "5000.00"}])
    _write(folder / "members.csv", "members", [_member("S1", "s1@family.example"),
                                               _member("S2", "s2@family.example")])
    _write(folder / "claims.csv", "claims", [
        _line("C1", "S1", "S1-01", "self", "Ordinary Clinic", "99213", "80.00", "2026-11-03",
              diagnosis_codes="J06.9", deductible="20.00", plan_paid="60.00"),
        _line("C2", "S1", "S1-02", "child", CANARY_PROVIDER, CANARY_CODE, CANARY_AMOUNT, "2026-11-19",
              diagnosis_codes="F32.9", place_of_service="11", deductible="50.00", plan_paid="381.17"),
        _line("C2", "S1", "S1-02", "child", CANARY_PROVIDER, "99213", "66.66", "2026-11-19", line_no="2",
              diagnosis_codes="Z00.00"),  # not sensitive itself: it moves with its claim
        _line("C3", "S1", "S1-02", "child", "Ordinary Clinic", "99213", "75.00", "2026-11-04",
              diagnosis_codes="J06.9"),
        _line("C4", "S2", "S2-01", "self", "Ordinary Clinic", "99213", "70.00", "2026-11-05"),
        _line("C5", "S2", "S2-02", "spouse", "Canary Recovery House", "H0004", "210.00", "2026-11-21",
              diagnosis_codes="F10.20"),
    ])
    _write(folder / "confidential_requests.csv", "requests", [
        {"member_id": "S1", "patient_id": "S1-02", "first_name": "Dana", "last_name": "Dependent",
         "date_of_birth": "2004-03-09", "channel": "email", "email": "dana@private.example",
         "scope": "sensitive", "effective_from": "2026-01-01"},
        {"member_id": "S2", "patient_id": "S2-03", "last_name": "Gone", "date_of_birth": "2000-01-01",
         "channel": "paper", "address_line1": "9 Elsewhere", "city": "Denver", "state": "CO",
         "postal_code": "80202", "scope": "all", "effective_from": "2025-01-01",
         "effective_to": "2025-12-31"},
        {"member_id": "S2", "patient_id": "S2-04", "last_name": "Nomail", "date_of_birth": "2001-01-01",
         "channel": "email", "scope": "all", "effective_from": "2026-01-01"},
        {"member_id": "S9", "patient_id": "S9-02", "last_name": "Unknown", "date_of_birth": "2001-01-01",
         "channel": "paper", "address_line1": "1 Nowhere", "city": "Austin", "state": "TX",
         "postal_code": "73301", "scope": "all", "effective_from": "2026-01-01"},
    ])
    return folder


def _by_recipient(run_dir: Path) -> dict[str, Composed]:
    members = pq.read_table(run_dir / "members.parquet", columns=["member_id"])["member_id"].to_pylist()
    composed = [c for shard in range(2)
                for c in iter_composed(run_dir, shard, PERIOD, notices=NOTICES, statement_ids=IDS)]
    by_id = {IDS(m, PERIOD): m for m in members}
    return {by_id[c.statement.statement_id]: c for c in composed}


def _pdf_text(composed: Composed, tmp_path: Path) -> str:
    path = tmp_path / f"{composed.statement.statement_id}.pdf"
    path.write_bytes(render_statement(composed.statement).pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils")
def test_a_requesting_dependent_gets_their_own_statement_and_the_subscriber_sees_no_trace(
        extract: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ingest(extract, run_dir, shards=2, period=PERIOD)
    statements = _by_recipient(run_dir)
    assert set(statements) == {"S1", "S1~S1-02", "S2", "S2~S2-02"}

    own = statements["S1~S1-02"]
    # scope sensitive: the claim with a sensitive line moves whole, C3 stays
    assert [(line.claim_id, line.line_no) for line in own.statement.lines] == [("C2", 1), ("C2", 2)]
    assert (own.channel, own.email) == ("email", "dana@private.example")
    assert own.statement.member.last_name == "Dependent"
    assert own.statement.accumulators == []  # the family's figures are not the patient's to read
    # the password is the card's member id and the patient's own birth date
    assert member_password(own.statement.member, "member_id_dob") == "S103092004"

    subscriber = statements["S1"]
    assert sorted(line.claim_id for line in subscriber.statement.lines) == ["C1", "C3"]
    (deductible,) = [a.used for a in subscriber.statement.accumulators  # the member's own, in network
                     if (a.name, a.tier, a.network) == ("deductible", "individual", "in")]
    assert deductible == 10_000 + 2_000  # year to date + the 20.00 shown, not the withheld 50.00
    text = _pdf_text(subscriber, tmp_path)
    for trace in (CANARY_PROVIDER, CANARY_AMOUNT, CANARY_CODE, "381.17", "50.00", "66.66", "11/19/2026",
                  "Dependent"):
        assert trace not in text, f"the subscriber's statement shows {trace!r}"
    assert "Ordinary Clinic" in text
    assert "sent to you alone" not in " ".join(text.split())
    own_text = _pdf_text(own, tmp_path)
    assert "This statement is sent to you alone, as you asked" in " ".join(own_text.split())
    assert CANARY_PROVIDER in own_text and CANARY_AMOUNT in own_text
    assert "1 Family Way" not in own_text  # an email-only request: not even the family's address
    assert own.statement.statement_id != subscriber.statement.statement_id


def test_a_sensitive_service_without_a_request_follows_the_policy(extract: Path, tmp_path: Path) -> None:
    ingest(extract, tmp_path / "separate", shards=2, period=PERIOD)
    separate = _by_recipient(tmp_path / "separate")
    patient = separate["S2~S2-02"]
    assert [line.claim_id for line in patient.statement.lines] == ["C5"]
    # by paper: the email on file is the subscriber's, not theirs
    assert (patient.channel, patient.paper_reason) == ("paper", "no_consent")
    assert patient.statement.member.last_name == "Name S2-02"
    assert patient.statement.own_statement == "policy"
    assert "is sent to you in your name" in " ".join(_pdf_text(patient, tmp_path).split())
    assert [line.claim_id for line in separate["S2"].statement.lines] == ["C4"]

    ingest(extract, tmp_path / "include", shards=2, period=PERIOD, sensitive_policy="include")
    include = _by_recipient(tmp_path / "include")
    assert "S2~S2-02" not in include
    assert sorted(line.claim_id for line in include["S2"].statement.lines) == ["C4", "C5"]
    assert {line.claim_id for line in include["S1~S1-02"].statement.lines} == {"C2"}  # a request still holds


def test_every_request_row_is_accounted_for_with_its_field(extract: Path, tmp_path: Path) -> None:
    result = ingest(extract, tmp_path / "run", shards=2, period=PERIOD)
    account = next(f for f in result.files if f.kind == "requests")
    assert (account.rows_read, account.rows_accepted, account.rows_quarantined) == (4, 2, 2)
    set_aside = {(q.row_number, q.field) for q in result.quarantined
                 if q.source_file == "confidential_requests.csv"}
    assert set_aside == {(4, "email"), (5, "member_id")}
    members = pq.read_table(tmp_path / "run" / "members.parquet").to_pylist()
    assert not any(m["member_id"].startswith("S2~S2-03") for m in members)  # expired: no effect
    assert {m["member_id"]: m["recipient"] for m in members if m["recipient"]} == {
        "S1~S1-02": "request", "S2~S2-02": "policy"}


def test_an_extract_without_requests_or_sensitive_lines_is_unchanged(extract: Path, tmp_path: Path) -> None:
    (extract / "confidential_requests.csv").unlink()
    result = ingest(extract, tmp_path / "run", shards=2, period=PERIOD, sensitive_policy="include")
    members = pq.read_table(tmp_path / "run" / "members.parquet")["member_id"].to_pylist()
    assert sorted(members) == ["S1", "S2"]
    assert result.rows_accepted == 6


def test_the_encrypted_own_statement_opens_with_the_patients_password(extract: Path, tmp_path: Path) -> None:
    ingest(extract, tmp_path / "run", shards=2, period=PERIOD)
    own = _by_recipient(tmp_path / "run")["S1~S1-02"]
    path = tmp_path / "own.pdf"
    path.write_bytes(encrypt_pdf(render_statement(own.statement), owner_password="owner",
                                 user_password=member_password(own.statement.member, "member_id_dob")))
    opened = subprocess.run(["qpdf", "--password=S103092004", "--check", str(path)], capture_output=True)
    assert opened.returncode == 0
    subscriber_password = subprocess.run(["qpdf", "--password=S101021970", "--check", str(path)],
                                         capture_output=True)
    assert subscriber_password.returncode != 0
    assert date(2004, 3, 9) == own.statement.member.date_of_birth


def _append(path: Path, kind: str, rows: list[dict[str, str]]) -> None:
    names = file_spec(kind).names
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        for row in rows:
            writer.writerow({name: row.get(name, "") for name in names})


def _request(patient: str, channel: str, start: str, end: str = "", **extra: str) -> dict[str, str]:
    return {"member_id": patient.split("-")[0], "patient_id": patient, "first_name": "",
            "last_name": "Dependent",
            "date_of_birth": "2004-03-09", "channel": channel, "email": "dana@private.example",
            "address_line1": "5 Own Street", "city": "Oakland", "state": "CA", "postal_code": "94607",
            "scope": "all", "effective_from": start, "effective_to": end, **extra}


def test_a_request_replaced_mid_period_hands_over_and_overlapping_ones_hold_the_claims(
        extract: Path, tmp_path: Path) -> None:
    requests = extract / "confidential_requests.csv"
    _write(requests, "requests", [_request("S1-02", "paper", "2026-01-01", "2026-11-10"),
                                  _request("S1-02", "email", "2026-11-11")])
    ingest(extract, tmp_path / "handover", shards=2, period=PERIOD)
    own = _by_recipient(tmp_path / "handover")["S1~S1-02"]
    assert own.channel == "email"  # the request in effect at the period's end
    assert own.statement.member.first_name == ""  # the request's name, never the subscriber's
    assert sorted({line.claim_id for line in own.statement.lines}) == ["C2", "C3"]  # scope all

    _write(requests, "requests", [_request("S1-02", "paper", "2026-01-01", "2026-11-20"),
                                  _request("S1-02", "email", "2026-11-11")])
    result = ingest(extract, tmp_path / "clash", shards=2, period=PERIOD)
    statements = _by_recipient(tmp_path / "clash")
    assert "S1~S1-02" not in statements
    assert [line.claim_id for line in statements["S1"].statement.lines] == ["C1"]  # nothing of S1-02's
    held = {(q.source_file, q.row_number, q.field) for q in result.quarantined}
    assert {("confidential_requests.csv", row, "patient_id") for row in (2, 3)} <= held
    reasons = {q.reason for q in result.quarantined if q.source_file == "claims.csv"}
    assert reasons == {file_spec("claims").rule("patient_request_held")[1]}
    assert result.rows_read == result.rows_accepted + result.rows_quarantined


def test_a_subscribers_own_request_and_a_dependent_without_a_patient_id(extract: Path,
                                                                        tmp_path: Path) -> None:
    _append(extract / "claims.csv", "claims", [
        _line("C6", "S2", "", "self", "Ordinary Clinic", "99214", "90.00", "2026-11-06"),
        _line("C7", "S2", "", "spouse", "Canary Recovery House", "H0004", "120.00", "2026-11-07",
              diagnosis_codes="F10.20")])
    _append(extract / "confidential_requests.csv", "requests", [
        _request("S2", "paper", "2026-01-01", member_id="S2", last_name="Subscriber")])
    result = ingest(extract, tmp_path / "run", shards=2, period=PERIOD)
    statements = _by_recipient(tmp_path / "run")
    # the subscriber's lines without a patient_id are theirs: their request takes them
    assert [line.claim_id for line in statements["S2~S2"].statement.lines] == ["C6"]
    assert statements["S2~S2"].channel == "paper"
    # a dependent's sensitive claim with no patient_id cannot have a statement of its own: held
    set_aside = [q for q in result.quarantined if q.source_file == "claims.csv"]
    assert [(q.field, q.reason) for q in set_aside] == [("patient_id", file_spec("claims").rule(
        "sensitive_needs_patient")[1])]
    assert all("C7" not in [line.claim_id for line in c.statement.lines] for c in statements.values())


def test_an_email_only_request_has_no_postal_fallback_to_the_family(extract: Path, tmp_path: Path) -> None:
    ingest(extract, tmp_path / "run", shards=2, period=PERIOD)
    rows = {m["member_id"]: m for m in pq.read_table(tmp_path / "run" / "members.parquet").to_pylist()}
    own = rows["S1~S1-02"]
    assert (own["address_line1"], own["city"], own["email"]) == ("", "", "dana@private.example")
    assert rows["S2~S2-02"]["address_line1"] == "1 Family Way"  # no request: in their name, on file
