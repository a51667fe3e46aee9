"""Synthetic monthly claim extracts with realistic shapes, for demos, tests and benchmarks.

Deterministic for a (members, period, seed): the same command writes the same bytes. A small,
known share of rows is malformed on purpose so ingest's quarantine path is always exercised.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from pipeline.periods import parse_period

MEMBER_COLUMNS = [
    "member_id", "first_name", "last_name", "date_of_birth", "address_line1", "address_line2",
    "city", "state", "postal_code", "email", "language", "plan_id", "group_number",
    "line_of_business", "edelivery_consent", "ytd_deductible", "ytd_out_of_pocket",
]
CLAIM_COLUMNS = [
    "claim_id", "line_no", "member_id", "patient_name", "patient_relationship", "provider_name",
    "provider_npi", "network", "service_date", "received_date", "service_code",
    "service_description", "status", "reason_code", "billed", "discount", "plan_paid",
    "other_payer_paid", "deductible", "copay", "coinsurance", "not_covered",
]
PLAN_COLUMNS = ["plan_id", "plan_name", "brand", "deductible_limit", "out_of_pocket_limit"]

PLANS = [
    ("PPO-GOLD", "Evergreen PPO Gold", "default", 100000, 450000),
    ("PPO-SILVER", "Evergreen PPO Silver", "default", 250000, 700000),
    ("HMO-BRONZE", "Evergreen HMO Bronze", "default", 500000, 900000),
]
FIRST = ["Maria", "James", "Wei", "Aisha", "Carlos", "Olivia", "Noah", "Fatima", "Liam", "Sofia",
         "Ethan", "Mei", "Diego", "Emma", "Kwame", "Ana", "Lucas", "Priya", "Mateo", "Grace",
         "Hiroshi", "Isabella", "Omar", "Chloe", "Santiago", "Nia", "Benjamin", "Lucia"]
LAST = ["Garcia", "Smith", "Nguyen", "Johnson", "Hernandez", "Brown", "Patel", "Williams",
        "Lopez", "Kim", "Martinez", "Davis", "Okafor", "Rodriguez", "Chen", "Wilson", "Anderson",
        "Gonzalez-Villanueva", "Thompson", "Ramirez", "O'Connor", "Baptiste", "Kowalski"]
STREETS = ["Maple Ave", "Oak St", "Cedar Ln", "Harbor Blvd", "Pine Ridge Rd", "Elm St",
           "Sunset Dr", "Lakeview Ter", "Mill Creek Pkwy", "Washington St"]
CITIES = [("Springfield", "IL", "627"), ("Riverside", "CA", "925"), ("Fairview", "TX", "750"),
          ("Madison", "WI", "537"), ("Salem", "OR", "973"), ("Franklin", "TN", "370"),
          ("Clinton", "NY", "133"), ("Greenville", "SC", "296")]
DOMAINS = ["gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com",
           "icloud.com", "aol.com", "comcast.net", "example-isp.net"]
PROVIDERS = [
    ("Riverside Family Medicine", "1245319599", "in"),
    ("St. Catherine Regional Medical Center", "1932147731", "in"),
    ("Lakeside Imaging Associates", "1609843210", "in"),
    ("Northgate Urgent Care", "1487659302", "in"),
    ("Dr. Alexandra Whitfield-Montgomery, Orthopaedic Surgery and Sports Medicine", "1356098741",
     "out"),
    ("Valley Physical Therapy", "1720394856", "in"),
    ("Metro Clinical Laboratory", "1093847561", "in"),
    ("Summit Dermatology", "1568302947", "out"),
]
SERVICES = [
    ("99213", "Office visit, established patient", 18000, 3000),
    ("99214", "Office visit, established patient, moderate complexity", 26000, 3000),
    ("80053", "Blood test, comprehensive metabolic panel", 9000, 0),
    ("85025", "Blood count, complete", 4500, 0),
    ("71046", "Chest X-ray, two views", 22000, 0),
    ("97110", "Physical therapy exercises, 15 minutes", 14000, 4000),
    ("73721", "MRI of knee", 185000, 0),
    ("99283", "Emergency department visit", 120000, 15000),
    ("90686", "Flu vaccine", 4000, 0),
    ("11102", "Skin biopsy", 31000, 0),
]
DENIALS_WRITE_OFF = ["CO-50", "CO-97", "CO-16", "CO-29"]
DENIALS_MEMBER = ["PR-96", "PR-204"]
MALFORMED_SHARE = 0.006


@dataclass(frozen=True, slots=True)
class GeneratedExtract:
    folder: Path
    members: int
    claim_lines: int
    malformed_lines: int


def generate_extract(folder: Path, *, members: int, period: str, seed: int, claim_files: int = 2,
                     fmt: str = "csv") -> GeneratedExtract:
    """Write members.csv, plans.csv and `claim_files` claims files (csv or parquet) into `folder`.

    Streams member by member with a per-member random generator, so a million-line extract
    needs no more memory than a small one, and the same arguments always give the same bytes.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown extract format {fmt!r} (csv or parquet)")
    start, end = parse_period(period)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "plans.csv", PLAN_COLUMNS,
           [[*plan[:3], _money(plan[3]), _money(plan[4])] for plan in PLANS])
    per_file = -(-members // max(1, claim_files))
    lines = malformed = 0
    with (folder / "members.csv").open("w", newline="", encoding="utf-8") as handle:
        member_writer = csv.writer(handle)
        member_writer.writerow(MEMBER_COLUMNS)
        for part, first in enumerate(range(1, members + 1, per_file), start=1):
            with _ClaimsWriter(folder / f"claims_part{part}.{fmt}") as claims:
                for index in range(first, min(members, first + per_file - 1) + 1):
                    rng = random.Random(f"{seed}:{period}:{index}")
                    member = _member(rng, index)
                    member_writer.writerow([member[c] for c in MEMBER_COLUMNS])
                    rows, bad = _spoil(rng, list(_claim_lines(rng, member, start, end)))
                    claims.write(rows)
                    lines += len(rows)
                    malformed += bad
    return GeneratedExtract(folder, members, lines, malformed)


class _ClaimsWriter:
    """Claim rows to CSV, or to Parquet (all-string columns, like a warehouse export) in batches."""

    BATCH = 50_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[list[object]] = []
        self.handle: TextIO | None = None
        self.writer: Any = None
        self.parquet: Any = None

    def __enter__(self) -> _ClaimsWriter:
        if self.path.suffix == ".csv":
            self.handle = self.path.open("w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(CLAIM_COLUMNS)
        return self

    def write(self, rows: list[list[object]]) -> None:
        if self.writer is not None:
            self.writer.writerows(rows)
            return
        self.pending.extend(rows)
        if len(self.pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, pa.string()) for name in CLAIM_COLUMNS])
        columns: list[Any] = (list(zip(*self.pending, strict=True)) if self.pending
                              else [()] * len(CLAIM_COLUMNS))
        table = pa.table([pa.array([str(v) for v in col], pa.string()) for col in columns], schema=schema)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.path, schema)
        self.parquet.write_table(table)
        self.pending = []

    def __exit__(self, *_exc: object) -> None:
        if self.handle is not None:
            self.handle.close()
            return
        if self.pending or self.parquet is None:
            self._flush()
        assert self.parquet is not None
        self.parquet.close()


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _member(rng: random.Random, index: int) -> dict[str, object]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zip3 = rng.choice(CITIES)
    dob = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 64))
    plan = rng.choice(PLANS)
    roll = rng.random()
    if roll < 0.05:
        email = ""
    elif roll < 0.06:
        email = rng.choice([f"{first}.{last}@", f"{first}{last}.mail.com", f"{first}@@mail.com"])
    elif roll < 0.065:
        email = f"{first}.{last}{index}@unknown-domain.example"
    else:
        email = f"{first}.{last}{index}@{rng.choice(DOMAINS)}"
    email = email.lower().replace("'", "").replace(" ", "")
    return {
        "member_id": f"M{index:09d}",
        "first_name": first,
        "last_name": last,
        "date_of_birth": dob.isoformat(),
        "address_line1": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
        "address_line2": rng.choice(["", "", "", f"Apt {rng.randint(1, 40)}"]),
        "city": city,
        "state": state,
        "postal_code": f"{zip3}{rng.randint(0, 99):02d}",
        "email": email,
        "language": "es" if rng.random() < 0.18 else "en",
        "plan_id": plan[0],
        "group_number": f"G{rng.randint(10000, 99999)}",
        "line_of_business": "commercial",
        "edelivery_consent": "N" if rng.random() < 0.07 else "Y",
        "ytd_deductible": _money(rng.randint(0, plan[3] // 2)),
        "ytd_out_of_pocket": _money(rng.randint(0, plan[4] // 3)),
        "_deductible_left": plan[3],
    }


def _claim_lines(
    rng: random.Random, member: dict[str, object], start: date, end: date
) -> Iterator[list[object]]:
    count = min(20, max(1, int(rng.expovariate(1 / 3.5)) + 1))  # about 4 lines a member
    relationship, patient = "self", f"{member['first_name']} {member['last_name']}"
    if rng.random() < 0.25:
        relationship = rng.choice(["spouse", "child"])
        patient = f"{rng.choice(FIRST)} {member['last_name']}"
    deductible_left = int(member["_deductible_left"]) // 2  # type: ignore[call-overload]
    claim_no, line_no = 0, 0
    provider = rng.choice(PROVIDERS)
    for index in range(count):
        if index == 0 or rng.random() < 0.4:
            claim_no += 1
            line_no = 0
            provider = rng.choice(PROVIDERS)
            service_day = start + timedelta(days=rng.randrange(-20, (end - start).days - 5))
        line_no += 1
        code, description, base, copay_amount = rng.choice(SERVICES)
        amounts, status, reason, deductible_left = _adjudicate(
            rng, base, copay_amount, provider[2], deductible_left)
        received = min(service_day + timedelta(days=rng.randint(2, 25)), end)
        yield [
            f"C{member['member_id']}{start:%y%m}{claim_no:02d}", line_no, member["member_id"],
            patient, relationship, provider[0], provider[1], provider[2],
            service_day.isoformat(), received.isoformat(), code, description, status, reason,
            *(_money(amounts[name]) for name in (
                "billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
                "coinsurance", "not_covered")),
        ]


def _adjudicate(
    rng: random.Random, base: int, copay_amount: int, network: str, deductible_left: int
) -> tuple[dict[str, int], str, str, int]:
    """Amounts in cents that always reconcile: billed = discount + paid + other + member share."""
    billed = int(base * rng.uniform(0.7, 1.6))
    a = dict.fromkeys(("discount", "plan_paid", "other_payer_paid", "deductible", "copay",
                       "coinsurance", "not_covered"), 0)
    a["billed"] = billed
    roll = rng.random()
    if roll < 0.02:
        a["billed"] = 0
        return a, "paid", "", deductible_left
    if roll < 0.06:
        a["discount"] = billed
        return a, "denied", rng.choice(DENIALS_WRITE_OFF), deductible_left
    if roll < 0.09:
        a["discount"] = billed // 5 if network == "in" else 0
        a["not_covered"] = billed - a["discount"]
        return a, "denied", rng.choice(DENIALS_MEMBER), deductible_left
    a["discount"] = int(billed * rng.uniform(0.2, 0.5)) if network == "in" else 0
    allowed = billed - a["discount"]
    reason = "CO-45" if a["discount"] else ""
    status = "paid"
    if roll < 0.14:
        a["not_covered"] = allowed // 4
        allowed -= a["not_covered"]
        status, reason = "partial", "PR-204"
    a["copay"] = min(copay_amount, allowed)
    allowed -= a["copay"]
    a["deductible"] = min(deductible_left, allowed // 2)
    deductible_left -= a["deductible"]
    allowed -= a["deductible"]
    a["coinsurance"] = allowed * (20 if network == "in" else 40) // 100
    allowed -= a["coinsurance"]
    if rng.random() < 0.05:
        a["other_payer_paid"] = allowed // 3
        allowed -= a["other_payer_paid"]
    a["plan_paid"] = allowed
    if status == "paid" and not reason:
        reason = "PR-1" if a["deductible"] else "PR-2" if a["coinsurance"] else ""
    return a, status, reason, deductible_left


def _spoil(rng: random.Random, rows: list[list[object]]) -> tuple[list[list[object]], int]:
    """Damage a small share of rows the way real extracts go wrong."""
    spoiled = 0
    out = []
    for row in rows:
        if rng.random() >= MALFORMED_SHARE:
            out.append(row)
            continue
        spoiled += 1
        row = list(row)
        kind = rng.randrange(6)
        if kind == 0:
            row[8] = "2026-13-45"  # impossible service date
        elif kind == 1:
            row[14] = "12O.00"  # letter O in an amount
        elif kind == 2:
            row[2] = ""  # member id missing
        elif kind == 3:
            row[16] = _money(int(round(float(str(row[16])) * 100)) + 1234)  # does not reconcile
        elif kind == 4:
            row[2] = "M999999999"  # member not in the member file
        else:
            out.append(list(row))  # the same claim line twice: the copy is the bad row
        out.append(row)
    return out, spoiled


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
