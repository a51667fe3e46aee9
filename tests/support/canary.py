"""A canary member: a recognisable name, street and date of birth planted in an extract, so a
test can search every log, task log, email and ledger row for them."""

from __future__ import annotations

import csv
from pathlib import Path

CANARY_FIRST, CANARY_LAST = "Zebedee", "Canaryphi"
CANARY_STREET = "77 Canarywharf Lane"
CANARY_DOB = "1957-04-03"
PAPER_CANARY_LAST, PAPER_CANARY_STREET = "Paperphi", "78 Canarywharf Lane"
HIDDEN_PROVIDER, HIDDEN_EMAIL, HIDDEN_DOB = ("Canaryhidden Counseling", "hidden.canary@private.example",
                                             "2003-05-06")
HIDDEN_AMOUNT, HIDDEN_CODE, HIDDEN_SERVED = "431.17", "90834", "2026-11-03"
HIDDEN_CLAIM = "CHIDDEN0001"
"""The canary's adult child, who asked for confidential communications (scope: sensitive
services), and their psychotherapy claim, one line paid and one denied (received early enough
that its prompt notice is due before the run): the statement and the notice must reach the child,
and no trace of either the canary."""
PLANTED_LINES = 2
"""Claim lines `plant_canary` adds to the generated extract."""
CANARY_STRINGS = [CANARY_FIRST, CANARY_LAST, CANARY_STREET, CANARY_DOB, "04031957",
                  PAPER_CANARY_LAST, PAPER_CANARY_LAST.upper(), "CANARYWHARF", HIDDEN_PROVIDER]

def canary_member(folder: Path) -> dict[str, str]:
    """The canary's row in the extract's members.csv (its member ID is the generator's)."""
    with (folder / "members.csv").open(newline="", encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if row["last_name"] == CANARY_LAST)


def paper_canary_member(folder: Path) -> dict[str, str]:
    """The paper canary's row in the extract's members.csv."""
    with (folder / "members.csv").open(newline="", encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if row["last_name"] == PAPER_CANARY_LAST)


def plant_canary(folder: Path) -> None:
    """Member 1 gets a recognisable name, street and date of birth, everywhere it appears, and
    is emailed; member 2, a recognisable name and street, and no e-delivery consent: paper."""
    path = folder / "members.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    rows[0].update(first_name=CANARY_FIRST, last_name=CANARY_LAST, address_line1=CANARY_STREET,
                   date_of_birth=CANARY_DOB, email="zebedee.canary0@gmail.com",
                   edelivery_consent="Y")
    rows[1].update(last_name=PAPER_CANARY_LAST, address_line1=PAPER_CANARY_STREET, edelivery_consent="N")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for claims in folder.glob("claims*.csv"):
        lines = list(csv.reader(claims.open(newline="", encoding="utf-8")))
        for line in lines[1:]:
            if line[2] == rows[0]["member_id"]:
                line[3] = f"{CANARY_FIRST} {CANARY_LAST}"
        with claims.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(lines)
    _plant_hidden_claim(folder, rows[0]["member_id"])


def _plant_hidden_claim(folder: Path, member_id: str) -> None:
    """The canary's child: a sensitive claim, and a request that it go to the child's own email."""
    claims = folder / "claims_part1.csv"
    with claims.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    line = dict.fromkeys(header, "") | {
        "claim_id": HIDDEN_CLAIM, "line_no": "1", "member_id": member_id, "patient_id": f"{member_id}-09",
        "patient_name": "Robin Canaryhidden", "patient_relationship": "child",
        "provider_name": HIDDEN_PROVIDER,
        "network": "in", "service_date": HIDDEN_SERVED, "received_date": HIDDEN_SERVED,
        "service_code": HIDDEN_CODE, "service_description": "Psychotherapy, 45 minutes", "status": "paid",
        "billed": HIDDEN_AMOUNT, "discount": "0.00", "plan_paid": "391.17", "other_payer_paid": "0.00",
        "deductible": "0.00", "copay": "40.00", "coinsurance": "0.00", "not_covered": "0.00",
        "diagnosis_codes": "F32.9", "place_of_service": "11"}
    denied = line | {"line_no": "2", "service_code": "90785", "service_description": "Interactive complexity",
                     "status": "denied", "reason_code": "CO-50", "billed": "80.00", "discount": "80.00",
                     "plan_paid": "0.00", "copay": "0.00"}
    with claims.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=header).writerows([line, denied])
    requests = folder / "confidential_requests.csv"
    names = ["member_id", "patient_id", "first_name", "last_name", "date_of_birth", "channel", "email",
             "address_line1", "address_line2", "city", "state", "postal_code", "language", "scope",
             "effective_from", "effective_to"]
    exists = requests.exists()
    with requests.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        if not exists:
            writer.writeheader()
        writer.writerow(dict.fromkeys(names, "") | {
            "member_id": member_id, "patient_id": f"{member_id}-09", "first_name": "Robin",
            "last_name": "Canaryhidden", "date_of_birth": HIDDEN_DOB, "channel": "email",
            "email": HIDDEN_EMAIL, "language": "en", "scope": "sensitive", "effective_from": "2026-01-01"})
