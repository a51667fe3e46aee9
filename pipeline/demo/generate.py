"""Synthetic monthly claim extracts with realistic shapes, for demos, tests and benchmarks.

Deterministic for a (members, period, seed): the same command writes the same bytes. A small,
known share of rows is malformed on purpose so ingest's quarantine path is always exercised.

Some members cover a spouse or children, whose claims carry their own `patient_id`
(`<member_id>-NN`: 01 the subscriber, 02 a spouse, 03 on children). Lines carry ordinary
diagnoses, a place of service and, on hospital lines, a revenue code; a small share of adults'
claims are sensitive services (psychotherapy, substance-use counselling, contraception, an STI
test) that the sensitive-services list recognises, and a few adult dependents have a
confidential-communication request (`confidential_requests.csv`), one in five of them expired
before the period, so the routing of every case can be seen in a demo.

Claims are plausible (`pipeline.demo.adjudicate`): providers bill their own specialty, preventive
care in network costs nothing, the deductible is met in date order before coinsurance, nothing is
received or paid after the period, no claim bills one service twice. Each line has its
adjustments list, payee, paid date and EFT or check reference; about one claim in a hundred is
pended and one adjusted (replacing a claim of the month before). Plans cover every plan type
(ERISA group, governmental, church, individual, Medicare Advantage, Medicaid) with family and
out-of-network limits; a few members ask for large print; the governmental plan's claims system
sends its accumulators (`accumulators.csv`).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from pipeline.demo.adjudicate import (
    EMERGENCY,
    PREVENTIVE_VISITS,
    PROVIDERS,
    SERVICES,
    Adjudicated,
    Benefits,
    Provider,
    Service,
    adjudicate,
    adjustments_text,
)
from pipeline.demo.coverage import (
    ACCUMULATOR_PLANS,
    FAMILY_YTD,
    PLAN_DESIGNS,
    accumulators,
    benefits,
    family_ytd,
    plan_for,
    plan_row,
    ytd,
)
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
OPTIONAL_CLAIM_COLUMNS = ["patient_id", "diagnosis_codes", "revenue_code", "place_of_service", "adjustments",
                          "payee", "paid_date", "payment_ref", "original_claim_id"]
CLAIM_FILE_COLUMNS = [*CLAIM_COLUMNS, *OPTIONAL_CLAIM_COLUMNS]
MEMBER_FILE_COLUMNS = [*MEMBER_COLUMNS, "alternate_format", *FAMILY_YTD]
PLAN_COLUMNS = ["plan_id", "plan_name", "brand", "deductible_limit", "out_of_pocket_limit"]
PLAN_LIMITS = ["family_deductible_limit", "family_out_of_pocket_limit", "oon_deductible_limit",
               "oon_out_of_pocket_limit", "oon_family_deductible_limit", "oon_family_out_of_pocket_limit"]
PLAN_FILE_COLUMNS = [*PLAN_COLUMNS, "plan_type", "funding", "plan_year_start", *PLAN_LIMITS]
ACCUMULATOR_COLUMNS = ["member_id", "patient_id", "accumulator", "tier", "network", "used", "limit", "as_of"]
REQUEST_COLUMNS = [
    "member_id", "patient_id", "first_name", "last_name", "date_of_birth", "channel", "email",
    "address_line1", "address_line2", "city", "state", "postal_code", "language", "scope",
    "effective_from", "effective_to",
]

PLANS = [
    ("PPO-GOLD", "Evergreen PPO Gold", "default", 100000, 450000),
    ("PPO-SILVER", "Evergreen PPO Silver", "default", 250000, 700000),
    ("HMO-BRONZE", "Evergreen HMO Bronze", "default", 500000, 900000),
]
"""The commercial plans a member is drawn from (the draw every seed has always made)."""


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


CHRONIC = ("I10", "E11.9", "E78.5")  # a second diagnosis on some lines
EMERGENCY_ROOM = "23"
SENSITIVE_CLINICS: list[tuple[Provider, tuple[Service, ...]]] = [
    (Provider("Harbor Counseling Associates", "1790563419", "in", "11"),
     (Service("90834", "Psychotherapy, 45 minutes", 16000, 3000, ("F32.9",)),)),
    (Provider("New Directions Recovery Center", "1417286535", "in", "57"),
     (Service("H0004", "Behavioral health counseling, 15 minutes", 6000, 0, ("F10.20",)),)),
    (Provider("Westside Women's Health", "1306728415", "in", "11"),
     (Service("58300", "Intrauterine device insertion", 42000, 0, ("Z30.430",)),
      Service("87491", "Chlamydia test", 9500, 0, ("Z11.3",)))),
]
_SENSITIVE_SERVICES = {s.code: s for _, services in SENSITIVE_CLINICS for s in services}
SENSITIVE_CODES = frozenset(s.code for _, services in SENSITIVE_CLINICS for s in services)
SENSITIVE_CLAIM_SHARE = {"self": 0.02, "spouse": 0.06, "child": 0.06}
"""Share of adults' claims that are a visit to one of the sensitive-services clinics: higher for
adult dependents, whose such claims the state laws keep off the subscriber's statement, so that
even a small demo has some to route (minors have none here)."""
REQUEST_SHARE = {True: 0.4, False: 0.08}
"""Share of adult dependents with claims this month who have a confidential-communication
request, by whether they had a sensitive service (such patients ask for one more often)."""
REQUEST_MIX = (("email", "sensitive", False), ("paper", "all", False), ("paper", "sensitive", False),
               ("email", "all", False), ("paper", "sensitive", True))
"""(channel, scope, expired before the period), taken in turn: any five requests in a row hold
each kind once."""
MALFORMED_SHARE = 0.006


@dataclass(frozen=True, slots=True)
class GeneratedExtract:
    folder: Path
    members: int
    claim_lines: int
    malformed_lines: int
    requests: int = 0  # rows of confidential_requests.csv (no file when there are none)
    accumulators: int = 0  # rows of accumulators.csv


def generate_extract(folder: Path, *, members: int, period: str, seed: int, claim_files: int = 2,
                     fmt: str = "csv") -> GeneratedExtract:
    """Write members.csv, plans.csv, `claim_files` claims files (csv or parquet) and, when any
    member's dependent asked for one, confidential_requests.csv into `folder`.

    Streams member by member with per-member random generators, so a million-line extract
    needs no more memory than a small one (requests, about one per hundred members, are kept
    until the end), and the same arguments always give the same bytes. Households, diagnoses,
    sensitive services and requests draw from a second generator, so a seed's claims, amounts and
    damaged rows stay as they were before the extract carried them, except for the members one of
    whose claims became a sensitive service (about one in twenty).
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown extract format {fmt!r} (csv or parquet)")
    start, end = parse_period(period)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "plans.csv", PLAN_FILE_COLUMNS, [plan_row(plan) for plan in PLAN_DESIGNS.values()])
    per_file = -(-members // max(1, claim_files))
    lines = malformed = 0
    requests: list[list[str]] = []
    reported: list[list[str]] = []
    with (folder / "members.csv").open("w", newline="", encoding="utf-8") as handle:
        member_writer = csv.writer(handle)
        member_writer.writerow(MEMBER_FILE_COLUMNS)
        for part, first in enumerate(range(1, members + 1, per_file), start=1):
            with _ClaimsWriter(folder / f"claims_part{part}.{fmt}") as claims:
                for index in range(first, min(members, first + per_file - 1) + 1):
                    rng = random.Random(f"{seed}:{period}:{index}")
                    care = random.Random(f"{seed}:{period}:{index}:care")
                    extra = random.Random(f"{seed}:{period}:{index}:claims")
                    member = _member(rng, extra, index, start)
                    household, rows, found = _claim_lines(rng, care, extra, member, start, end)
                    family_ytd(extra, member, len(household))
                    member_writer.writerow([member[c] for c in MEMBER_FILE_COLUMNS])
                    requests += _requests(care, member, household, rows, len(requests), start, end)
                    if member["plan_id"] in ACCUMULATOR_PLANS:
                        reported += accumulators(member, len(household), found, end)
                    rows, bad = _spoil(rng, rows)
                    claims.write(rows)
                    lines += len(rows)
                    malformed += bad
    if requests:
        _write(folder / "confidential_requests.csv", REQUEST_COLUMNS, requests)
    if reported:
        _write(folder / "accumulators.csv", ACCUMULATOR_COLUMNS, reported)
    return GeneratedExtract(folder, members, lines, malformed, len(requests), len(reported))


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
            self.writer.writerow(CLAIM_FILE_COLUMNS)
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

        schema = pa.schema([(name, pa.string()) for name in CLAIM_FILE_COLUMNS])
        columns: list[Any] = (list(zip(*self.pending, strict=True)) if self.pending
                              else [()] * len(CLAIM_FILE_COLUMNS))
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


def _write(path: Path, header: list[str], rows: list[list[object]] | list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _member(rng: random.Random, extra: random.Random, index: int, start: date) -> dict[str, object]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zip3 = rng.choice(CITIES)
    dob = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 64))
    plan = rng.choice(PLANS)
    design = plan_for(extra, PLAN_DESIGNS[plan[0]], start.year - dob.year, state)
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
        "plan_id": design.plan_id,
        "group_number": f"G{rng.randint(10000, 99999)}",
        "line_of_business": design.line_of_business,
        "edelivery_consent": "N" if rng.random() < 0.07 else "Y",
        **ytd(design, rng.randint(0, plan[3] // 2), rng.randint(0, plan[4] // 3)),
        "alternate_format": "large_print" if extra.random() < 0.03 else "",
        "_plan": design,
        "_date_of_birth": dob,
    }


@dataclass(frozen=True, slots=True)
class _Patient:
    """One person on a member's coverage: the subscriber or a dependent."""

    patient_id: str
    first_name: str
    name: str
    relationship: str
    date_of_birth: date
    adult: bool  # 18 or over on the period's first day

    @property
    def sensitive_share(self) -> float:
        return SENSITIVE_CLAIM_SHARE[self.relationship] if self.adult else 0.0


def _claim_lines(rng: random.Random, care: random.Random, extra: random.Random, member: dict[str, object],
                 start: date, end: date) -> tuple[list[_Patient], list[list[object]], Benefits]:
    """The member's household, this period's claim lines for its people, and what they used of
    the plan's deductible and out-of-pocket maximum."""
    count = min(20, max(1, int(rng.expovariate(1 / 3.5)) + 1))  # about 4 lines a member
    household = _household(rng, care, member, start)
    left = benefits(member)
    return household, list(_lines(rng, care, extra, member, household, count, start, end, left)), left


def _household(rng: random.Random, care: random.Random, member: dict[str, object],
               start: date) -> list[_Patient]:
    """The subscriber (-01) and, for about a quarter of members, a spouse (-02), children (-03 on)
    or both. Whether there is a dependent, and the first one's relationship and name, are drawn
    from the member's generator as they always were; the rest of the family from `care`."""
    member_id, last = str(member["member_id"]), str(member["last_name"])
    born = member["_date_of_birth"]
    assert isinstance(born, date)
    adult_by = start.replace(year=start.year - 18)
    people = [_Patient(f"{member_id}-01", str(member["first_name"]),
                       f"{member['first_name']} {last}", "self", born, born <= adult_by)]
    if rng.random() >= 0.25:
        return people
    relationship, first = rng.choice(["spouse", "child"]), rng.choice(FIRST)
    if relationship == "spouse" or care.random() < 0.5:
        name = first if relationship == "spouse" else care.choice(FIRST)
        dob = min(born + timedelta(days=care.randint(-2500, 2500)), adult_by)
        people.append(_Patient(f"{member_id}-02", name, f"{name} {last}", "spouse", dob, True))
    children = 1 + care.randrange(3) if relationship == "child" else care.randrange(3)
    for number in range(children):
        name = first if relationship == "child" and number == 0 else care.choice(FIRST)
        dob = start - timedelta(days=care.randrange(1, 26 * 365))  # dependents up to 26
        dob = min(max(dob, born + timedelta(days=18 * 366)), start - timedelta(days=1))
        people.append(_Patient(f"{member_id}-{3 + number:02d}", name, f"{name} {last}", "child", dob,
                               dob <= adult_by))
    return people


class _Draft(NamedTuple):
    """A claim line before adjudication: who, where, when and what."""

    day: date
    claim_no: int
    line_no: int
    provider: Provider
    patient: _Patient
    service: Service
    place: str


def _lines(rng: random.Random, care: random.Random, extra: random.Random, member: dict[str, object],
           household: list[_Patient], count: int, start: date, end: date,
           benefits: Benefits) -> Iterator[list[object]]:
    """Claims drawn first, then adjudicated in date-of-service order (the deductible is met by
    the earliest care); each claim is received, and decided, within the period."""
    drafts = sorted(_drafts(rng, care, extra, household, count, start, end), key=lambda d: (d.day, d.claim_no,
                                                                                             d.line_no))
    claims = {d.claim_no for d in drafts}
    pended = {n for n in claims if extra.random() < 0.012}
    adjusted = {n for n in claims - pended if extra.random() < 0.012}
    received_of: dict[int, date] = {}
    decided: dict[int, tuple[date, str, str]] = {}
    for draft in drafts:
        claim_id = f"C{member['member_id']}{start:%y%m}{draft.claim_no:02d}"
        if draft.claim_no not in received_of:
            received_of[draft.claim_no] = min(draft.day + timedelta(days=rng.randint(2, 25)), end)
            decided[draft.claim_no] = _payment(extra, received_of[draft.claim_no], end, draft.provider)
        received = received_of[draft.claim_no]
        if draft.claim_no in pended:
            result = Adjudicated({"billed": int(draft.service.base * rng.uniform(0.7, 1.6)),
                                  **dict.fromkeys(_AMOUNTS[1:], 0)}, "pended", "", [])
        else:
            result = adjudicate(rng, extra, draft.service, draft.provider.network, benefits)
        status = "adjusted" if draft.claim_no in adjusted and result.status == "paid" else result.status
        original = f"C{member['member_id']}{start - timedelta(days=1):%y%m}{draft.claim_no:02d}" \
            if status == "adjusted" else ""
        paid_day, payee, reference = decided[draft.claim_no]
        paid = result.amounts["plan_paid"] > 0
        yield [
            claim_id, draft.line_no, member["member_id"], draft.patient.name, draft.patient.relationship,
            draft.provider.name, draft.provider.npi, draft.provider.network, draft.day.isoformat(),
            received.isoformat(), draft.service.code, draft.service.description, status, result.reason,
            *(_money(result.amounts[name]) for name in _AMOUNTS),
            draft.patient.patient_id, _diagnoses(care, draft.service),
            draft.service.revenue if draft.provider.facility else "", draft.place,
            adjustments_text(result.adjustments), payee if paid else "",
            "" if status == "pended" else paid_day.isoformat(), reference if paid else "", original,
        ]


_AMOUNTS = ("billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay", "coinsurance",
            "not_covered")


def _payment(extra: random.Random, received: date, end: date, provider: Provider) -> tuple[date, str, str]:
    """When a claim was decided and paid, to whom, and the payment's reference: an EFT to the
    provider, or (for some out-of-network claims) a check to the member."""
    day = min(received + timedelta(days=extra.randint(3, 14)), end)
    if provider.network == "out" and extra.random() < 0.5:
        return day, "member", f"CHK{extra.randint(100000, 999999)}"
    return day, "provider", f"EFT{extra.randint(10**9, 10**10 - 1)}"


def _drafts(rng: random.Random, care: random.Random, extra: random.Random, household: list[_Patient],
            count: int, start: date, end: date) -> Iterator[_Draft]:
    """About `count` lines in claims of one patient, provider and day each; a provider bills its
    own specialty, a claim never bills one service twice, a flu shot comes with its administration."""
    claim_no, made = 0, 0
    while made < count:
        claim_no += 1
        provider = rng.choice(PROVIDERS)
        day = start + timedelta(days=rng.randrange(-20, (end - start).days - 5))
        patient = care.choice(household) if len(household) > 1 else household[0]
        day = max(day, patient.date_of_birth)  # no care before the patient was born
        sensitive = patient.adult and care.random() < patient.sensitive_share
        clinic = care.choice(SENSITIVE_CLINICS) if sensitive else None
        if clinic is not None:
            provider, menu = clinic[0], [s.code for s in clinic[1]]
        elif provider.facility and extra.random() < 0.35:
            provider, menu = EMERGENCY, list(EMERGENCY.services)
        else:
            menu = list(provider.services)
        more = int(rng.random() < 0.4) + int(rng.random() < 0.2)
        size = 1 if made + 1 >= count else min(count - made, 1 + more)
        codes: list[str] = []
        for pick in ([menu[0]] if provider is EMERGENCY else []) + [rng.choice(menu) for _ in range(size)]:
            codes += _expand(pick, patient, day)
        for line_no, code in enumerate(dict.fromkeys(codes), start=1):
            service = SERVICES.get(code) or _SENSITIVE_SERVICES[code]
            yield _Draft(day, claim_no, line_no, provider, patient, service,
                         EMERGENCY_ROOM if provider is EMERGENCY else provider.place)
            made += 1


def _expand(pick: str, patient: _Patient, day: date) -> list[str]:
    """A menu entry as the codes billed: a flu shot and its administration; the preventive visit
    of the patient's age."""
    if pick == "FLU":
        return ["90686", "90471"]
    if pick == "PREVENTIVE":
        age = max(0, (day - patient.date_of_birth).days // 365)
        return [next(code for (low, high), code in PREVENTIVE_VISITS.items() if low <= age <= high)]
    return [pick]


def _diagnoses(care: random.Random, service: Service) -> str:
    """One of the service's usual diagnoses, and on some lines a chronic condition as well."""
    first = care.choice(service.diagnoses)
    if len(service.diagnoses) > 1 and care.random() < 0.2:
        other = care.choice(CHRONIC)
        if other != first:
            return f"{first};{other}"
    return first


_PATIENT_ID = CLAIM_FILE_COLUMNS.index("patient_id")
_SERVICE_CODE = CLAIM_FILE_COLUMNS.index("service_code")


def _requests(care: random.Random, member: dict[str, object], household: list[_Patient],
              rows: list[list[object]], made: int, start: date, end: date) -> list[list[str]]:
    """Confidential-communication requests of the member's adult dependents who had claims;
    `made` requests came before, which sets the next one's kind (REQUEST_MIX)."""
    adults = [p for p in household[1:] if p.adult]
    if not adults:
        return []
    treated = {str(row[_PATIENT_ID]) for row in rows}
    sensitive = {str(row[_PATIENT_ID]) for row in rows if row[_SERVICE_CODE] in SENSITIVE_CODES}
    found: list[list[str]] = []
    for patient in adults:
        if (patient.patient_id in treated
                and care.random() < REQUEST_SHARE[patient.patient_id in sensitive]):
            kind = REQUEST_MIX[(made + len(found)) % len(REQUEST_MIX)]
            found.append(_request(care, member, patient, kind, start, end))
    return found


def _request(care: random.Random, member: dict[str, object], patient: _Patient,
             kind: tuple[str, str, bool], start: date, end: date) -> list[str]:
    """One request, for the patient's own email or postal address (an email request gives a
    postal address too, half the time, for the paper fallback)."""
    channel, scope, expired = kind
    email, postal = "", ["", "", "", "", ""]
    if channel == "email":
        local = f"{patient.first_name}.{member['last_name']}.{patient.patient_id}"
        email = f"{local}@{care.choice(DOMAINS)}".lower().replace("'", "").replace(" ", "")
    if channel == "paper" or care.random() < 0.5:
        city, state, zip3 = care.choice(CITIES)
        postal = [f"{care.randint(10, 9999)} {care.choice(STREETS)}",
                  care.choice(["", "", f"Apt {care.randint(1, 40)}"]), city, state,
                  f"{zip3}{care.randint(0, 99):02d}"]
    return [str(member["member_id"]), patient.patient_id, patient.first_name, str(member["last_name"]),
            patient.date_of_birth.isoformat(), channel, email, *postal, str(member["language"]), scope,
            *_effective(care, expired, start, end)]


def _effective(care: random.Random, expired: bool, start: date, end: date) -> tuple[str, str]:
    """From before the period, until withdrawn or a date after it; or, expired, ended before the
    period began (such a request must change nothing)."""
    if expired:
        return ((start - timedelta(days=care.randint(400, 800))).isoformat(),
                (start - timedelta(days=care.randint(5, 120))).isoformat())
    since = (start - timedelta(days=care.randint(20, 700))).isoformat()
    if care.random() < 0.3:
        return since, (end + timedelta(days=care.randint(30, 400))).isoformat()
    return since, ""


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

