"""Synthetic, reconciling statements for tests: realistic enough to render and send.

Every line reconciles (billed = discount + plan_paid + other_payer_paid + deductible + copay +
coinsurance + not_covered). Output is deterministic for the same arguments, so tests that
compare bytes or counts are stable. Keep this module generic: other stages' tests use it.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.model import (
    MONEY_FIELDS,
    Accumulator,
    Adjustment,
    ClaimLine,
    Member,
    Plan,
    ReasonExplanation,
    Statement,
)
from pipeline.recipients import recipient_id

PERIOD = "2026-11"
PERIOD_START = date(2026, 11, 1)
PERIOD_END = date(2026, 11, 30)
STATEMENT_DATE = date(2026, 12, 1)


def _reason_rows() -> dict[str, tuple[bool, str, str, str]]:
    """code -> (member_may_owe, plan_provision, text_en, text_es), from the versioned table
    (templates/reason_codes.csv) the statements cite, so the factory never words a code itself."""
    from pipeline.reason_codes import reason_table

    return {code: (row["member_may_owe"] == "1", row["plan_provision"], row["text_en"],
                   row.get("text_es") or row["text_en"])
            for code, row in reason_table().rows.items()}


REASONS: dict[str, tuple[bool, str, str, str]] = _reason_rows()
DENIAL_CODES = ("PR-204", "CO-50")
REDUCTION_CODE = "CO-151"  # frequency limit: a paid line reduced, an adverse determination
PREVENTIVE_CODES = frozenset({"90686", "90471", "99396"})
"""ACA preventive services: covered in network with no cost share."""

# code -> (English description, Spanish description, typical charge (cents), copay (cents))
SERVICE_CATALOG: dict[str, tuple[str, str, int, int]] = {
    "99213": ("Office visit, established patient", "Consulta, paciente establecido", 18000, 3000),
    "99396": ("Preventive visit, age 40-64", "Consulta preventiva, 40 a 64 años", 26000, 0),
    "90686": ("Flu vaccine", "Vacuna contra la gripe", 4000, 0),
    "90471": ("Vaccine administration", "Administración de vacuna", 2500, 0),
    "80053": ("Blood test, comprehensive metabolic panel", "Análisis de sangre, panel metabólico",
              9000, 0),
    "85025": ("Blood count, complete", "Hemograma completo", 4500, 0),
    "80061": ("Blood test, lipid panel", "Análisis de sangre, perfil de lípidos", 7000, 0),
    "71046": ("Chest X-ray, two views", "Radiografía de tórax, dos vistas", 22000, 0),
    "73721": ("MRI of knee", "Resonancia magnética de rodilla", 185000, 0),
    "97110": ("Physical therapy exercises, 15 minutes", "Ejercicios de fisioterapia, 15 minutos",
              14000, 4000),
    "97140": ("Manual therapy, 15 minutes", "Terapia manual, 15 minutos", 12000, 0),
    "11102": ("Skin biopsy", "Biopsia de piel", 31000, 0),
    "99283": ("Emergency department visit", "Visita a la sala de emergencias", 120000, 15000),
}
# provider -> (NPI, specialty, the services of that specialty it bills)
PROVIDER_SERVICES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Riverside Family Medicine": ("1245319599", "family medicine", ("99213", "99396", "90686", "90471")),
    "Lakeside Imaging Associates": ("1609843210", "radiology", ("71046", "73721")),
    "Metro Clinical Laboratory": ("1093847561", "laboratory", ("80053", "85025", "80061")),
    "Valley Physical Therapy": ("1720394856", "physical therapy", ("97110", "97140")),
    "Northgate Dermatology": ("1487659302", "dermatology", ("11102", "99213")),
    "St. Catherine Emergency Physicians Group": ("1932147731", "emergency medicine", ("99283",)),
}
# the claims a statement is made of, in turn: (provider, services, patient: self or spouse)
CLAIM_PATTERNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Riverside Family Medicine", ("99396", "90686", "90471"), "self"),
    ("Metro Clinical Laboratory", ("80053", "85025"), "self"),
    ("Lakeside Imaging Associates", ("71046",), "spouse"),
    ("Valley Physical Therapy", ("97110", "97140"), "self"),
    ("Riverside Family Medicine", ("99213",), "spouse"),
    ("Lakeside Imaging Associates", ("73721",), "self"),
    ("Northgate Dermatology", ("11102",), "self"),
    ("Metro Clinical Laboratory", ("80061",), "spouse"),
    ("Valley Physical Therapy", ("97110",), "spouse"),
)
EMERGENCY_PROVIDER = "St. Catherine Emergency Physicians Group"
# kept for other tests: the services and providers as (code, en, es, charge, copay) / (name, npi)
SERVICES: tuple[tuple[str, str, str, int, int], ...] = tuple(
    (code, *values) for code, values in SERVICE_CATALOG.items() if code != "99283")
EMERGENCY = ("99283", *SERVICE_CATALOG["99283"])
PROVIDERS: tuple[tuple[str, str], ...] = tuple(
    (name, npi) for name, (npi, _, _) in PROVIDER_SERVICES.items() if name != EMERGENCY_PROVIDER)
OUT_OF_NETWORK_ER = (EMERGENCY_PROVIDER, PROVIDER_SERVICES[EMERGENCY_PROVIDER][0])

PLAN_GOLD = Plan(
    plan_id="PPO-GOLD",
    plan_name="Evergreen PPO Gold",
    brand="default",
    deductible_limit=100000,
    out_of_pocket_limit=450000,
    plan_type="erisa_group",
    plan_year_start=date(2026, 1, 1),
    limits=(("deductible.family.in", 200000), ("out_of_pocket.family.in", 900000),
            ("deductible.individual.out", 200000), ("out_of_pocket.individual.out", 900000),
            ("deductible.family.out", 400000), ("out_of_pocket.family.out", 1800000)),
)
DEDUCTIBLE_USED_BEFORE = 40000
OUT_OF_POCKET_USED_BEFORE = 62000
FAMILY_DEDUCTIBLE_USED_BEFORE = 65000
FAMILY_OUT_OF_POCKET_USED_BEFORE = 98000
COINSURANCE = 0.2


def make_member(**overrides: Any) -> Member:
    """A consenting e-delivery member on the Gold PPO; override any field."""
    fields: dict[str, Any] = {
        "member_id": "M000481234",
        "first_name": "Jordan",
        "last_name": "Alvarez",
        "date_of_birth": date(1984, 3, 7),
        "address_line1": "1428 Maple Ave",
        "address_line2": "Apt 3B",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62704-1185",
        "email": "jordan.alvarez@example.com",
        "language": "en",
        "plan_id": PLAN_GOLD.plan_id,
        "group_number": "GRP-004417",
        "line_of_business": "commercial",
        "edelivery_consent": True,
    }
    fields.update(overrides)
    return Member(**fields)


def extract_member_password(row: dict[str, str], policy: str) -> str:
    """The PDF password of a member as an extract's members.csv gives it, under `policy`."""
    from pipeline.render import member_password

    member = make_member(member_id=row["member_id"],
                         date_of_birth=date.fromisoformat(row["date_of_birth"]),
                         postal_code=row["postal_code"])
    return member_password(member, policy)


def extract_recipients(folder: Path) -> dict[str, dict[str, str]]:
    """Every statement recipient an extract's members.csv and confidential_requests.csv give,
    by recipient id, as rows `extract_member_password` takes: a patient's own statement has the
    card's member id and the patient's birth date (and postal code, when the request has one)."""
    with (folder / "members.csv").open(newline="", encoding="utf-8") as handle:
        members = {row["member_id"]: row for row in csv.DictReader(handle)}
    found = dict(members)
    requests = folder / "confidential_requests.csv"
    if requests.exists():
        with requests.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                card = members.get(row["member_id"])
                if card is not None:
                    found[recipient_id(row["member_id"], row["patient_id"])] = {
                        **card, "date_of_birth": row["date_of_birth"], "email": row["email"],
                        "postal_code": row["postal_code"] or card["postal_code"]}
    return found


def make_line(**overrides: Any) -> ClaimLine:
    """One paid in-network office visit with a copay.

    `billed` defaults to the sum of the other amounts, so overriding any amount still
    reconciles; pass `billed` explicitly to build a line that does not.
    """
    fields: dict[str, Any] = {
        "claim_id": "C2611000001",
        "line_no": 1,
        "member_id": "M000481234",
        "patient_name": "Jordan Alvarez",
        "patient_relationship": "self",
        "provider_name": "Riverside Family Medicine",
        "provider_npi": "1245319599",
        "network": "in",
        "service_date": date(2026, 11, 4),
        "received_date": date(2026, 11, 8),
        "service_code": "99213",
        "service_description": "Office visit, established patient",
        "status": "paid",
        "reason_code": "PR-3",
        "discount": 6000,
        "plan_paid": 9000,
        "other_payer_paid": 0,
        "deductible": 0,
        "copay": 3000,
        "coinsurance": 0,
        "not_covered": 0,
    }
    fields.update(overrides)
    if "billed" not in overrides:
        fields["billed"] = sum(fields.get(name, 0) for name in MONEY_FIELDS if name != "billed")
    return ClaimLine(**fields)


def _spanish(member: Member) -> Member:
    return dataclasses.replace(
        member,
        first_name="María José",
        last_name="Hernández Gutiérrez",
        email="mj.hernandez@example.com",
        language="es",
    )


def _dependant(member: Member) -> str:
    return f"{'Luis' if member.language == 'es' else 'Alex'} {member.last_name}"


def _claim_plan(n_lines: int) -> list[tuple[str, tuple[str, ...], str, int]]:
    """The claims of an `n_lines` statement: (provider, services, patient, turn); with 6+ lines
    the second is out-of-network emergency care. `turn` picks the claim's pattern and its day."""
    claims: list[tuple[str, tuple[str, ...], str, int]] = []
    count = turn = 0
    while count < n_lines:
        if n_lines >= 6 and len(claims) == 1:
            pattern: tuple[str, tuple[str, ...], str] = (EMERGENCY_PROVIDER, ("99283",), "self")
            key = 1
        else:
            pattern, key = CLAIM_PATTERNS[turn % len(CLAIM_PATTERNS)], turn
            turn += 1
        provider, codes, patient = pattern
        codes = codes[: n_lines - count]
        claims.append((provider, codes, patient, key))
        count += len(codes)
    return claims


def _service_day(index: int, claims: int) -> date:
    """Distinct days over the period's first 23 days when there are few claims; a long
    statement reuses days, never for the same provider and service (the claim patterns and the
    days cycle with coprime periods, 9 and 23). Received within six days, so before the
    statement date."""
    return PERIOD_START + timedelta(days=index * 23 // claims if claims <= 23 else index % 23)


def _share(charge: int, allowed: int, code: str, copay: int, deductible_left: int,
           preventive: bool, in_network: bool) -> tuple[dict[str, int], list[Adjustment]]:
    """Adjudicate a paid line: the discount, then the deductible, then a copay or coinsurance."""
    amounts = dict.fromkeys(("discount", "denied", "plan_paid", "other_payer_paid", "deductible",
                             "copay", "coinsurance", "not_covered"), 0)
    amounts["discount"] = charge - allowed
    adjustments = [Adjustment("CO", "45", charge - allowed)] if charge > allowed else []
    if not (preventive and in_network):
        if copay:
            amounts["copay"] = min(copay, allowed)
        else:
            amounts["deductible"] = min(deductible_left, allowed)
            amounts["coinsurance"] = round((allowed - amounts["deductible"]) * COINSURANCE)
    for carc, name in (("1", "deductible"), ("2", "coinsurance"), ("3", "copay")):
        if amounts[name]:
            adjustments.append(Adjustment("PR", carc, amounts[name]))
    amounts["plan_paid"] = allowed - amounts["deductible"] - amounts["copay"] - amounts["coinsurance"]
    return amounts, adjustments


def _line_fields(rng: random.Random, code: str, deductible_left: int, *, preventive: bool,
                 in_network: bool, denial: str | None, reduce: bool, other_plan: bool,
                 ) -> tuple[dict[str, Any], int]:
    """One line's status, amounts and adjustments; returns the deductible it used too."""
    charge = round(SERVICE_CATALOG[code][2] * rng.uniform(0.9, 1.2))
    allowed = round(charge * rng.uniform(0.5, 0.75))
    if denial is not None:
        amounts = dict.fromkeys(("plan_paid", "other_payer_paid", "deductible", "copay",
                                 "coinsurance", "not_covered", "denied"), 0)
        amounts["discount"] = charge - allowed
        booked = "not_covered" if denial.startswith("PR-") else "denied"
        amounts[booked] = allowed
        group, carc = denial.split("-")
        adjustments = [Adjustment("CO", "45", charge - allowed), Adjustment(group, carc, allowed)]
        return {**amounts, "status": "denied", "reason_code": denial,
                "adjustments": tuple(adjustments)}, 0
    if reduce:  # one unit of several over the plan's limit: paid, reduced (CO-151)
        reduced = allowed // 4
        amounts, adjustments = _share(charge - reduced, allowed - reduced, code, 0, deductible_left,
                                      preventive, in_network)
        amounts["denied"] = reduced
        adjustments.append(Adjustment("CO", REDUCTION_CODE.split("-")[1], reduced, "N130"))
        return {**amounts, "status": "paid", "reason_code": REDUCTION_CODE,
                "adjustments": tuple(adjustments)}, amounts["deductible"]
    amounts, adjustments = _share(charge, allowed, code, SERVICE_CATALOG[code][3], deductible_left,
                                  preventive, in_network)
    if other_plan and amounts["plan_paid"]:  # coordination of benefits: the other plan paid first
        other = amounts["plan_paid"] // 2
        amounts["other_payer_paid"], amounts["plan_paid"] = other, amounts["plan_paid"] - other
        adjustments.append(Adjustment("OA", "23", other))
    main = next((a.code for a in adjustments if a.group in ("PR", "OA")), "CO-45" if adjustments else "")
    return {**amounts, "status": "paid", "reason_code": main, "adjustments": tuple(adjustments)}, (
        amounts["deductible"])


def _make_lines(
    member: Member, n_lines: int, denied: int, spanish: bool, rng: random.Random
) -> list[ClaimLine]:
    """Plausible claims: providers bill their own specialty, preventive care costs nothing in
    network, the deductible is used up in service-date order before coinsurance, every claim is
    received and paid within the period, no line repeats; adjustments match the amounts. With
    8+ lines: another plan's payment and a paid line reduced by a frequency limit (an adverse
    determination); with 10+ lines a pended claim and an adjusted one."""
    planned = _claim_plan(n_lines)
    days = [_service_day(claim[3], len(planned)) for claim in planned]
    order = sorted(range(len(planned)), key=lambda index: (days[index], index))
    plan = [(*planned[index][:3], days[index]) for index in order]  # claim ids follow service dates
    positions = [(c, i) for c, claim in enumerate(plan) for i in range(len(claim[1]))]
    eligible = [p for p in positions if plan[p[0]][0] != EMERGENCY_PROVIDER
                and plan[p[0]][1][p[1]] not in PREVENTIVE_CODES]
    if denied > len(eligible):  # more denials than ordinary lines: preventive ones too
        eligible = positions
    step = len(eligible) / denied if denied else 0
    denied_at = {eligible[int(k * step + step / 2)] for k in range(min(denied, len(eligible)))}
    ordinary = [p for p in eligible if p not in denied_at]
    special = {"reduce": ordinary[(len(ordinary) - 1) // 2] if n_lines >= 8 and ordinary else None,
               "other": (0, 0) if n_lines >= 8 else None}  # the preventive visit: the other plan paid first
    untouched = [c for c in range(len(plan)) if not any(p[0] == c for p in denied_at)
                 and all(special[k] is None or special[k][0] != c for k in special)
                 and plan[c][0] != EMERGENCY_PROVIDER]
    pended_claim = untouched[-1] if n_lines >= 10 and len(untouched) >= 2 else None
    adjusted_claim = untouched[-2] if n_lines >= 10 and len(untouched) >= 2 else None
    deductible_left = PLAN_GOLD.deductible_limit - DEDUCTIBLE_USED_BEFORE
    lines: list[ClaimLine] = []
    denials = 0
    for number, (provider, codes, patient, day) in enumerate(plan):
        claim_id = f"C2611{number + 1:06d}"
        emergency = provider == EMERGENCY_PROVIDER
        received = day + timedelta(days=3 + number % 4)
        for index, code in enumerate(codes):
            if number == pended_claim:
                charge = round(SERVICE_CATALOG[code][2] * rng.uniform(0.9, 1.2))
                fields: dict[str, Any] = {**dict.fromkeys(MONEY_FIELDS, 0), "pending": charge,
                                          "status": "pended", "reason_code": "", "adjustments": ()}
                del fields["billed"]  # billed = pending, as make_line adds it up
            else:
                denial = None
                if (number, index) in denied_at:
                    denial = DENIAL_CODES[denials % len(DENIAL_CODES)]
                    denials += 1
                fields, used = _line_fields(
                    rng, code, deductible_left, preventive=code in PREVENTIVE_CODES, in_network=True,
                    denial=denial, reduce=(number, index) == special["reduce"],
                    other_plan=(number, index) == special["other"])
                deductible_left -= used
                if number == adjusted_claim:
                    fields["status"] = "adjusted"
            paid = fields["plan_paid"] > 0
            lines.append(make_line(
                claim_id=claim_id, line_no=index + 1, member_id=member.member_id,
                patient_name=(f"{member.first_name} {member.last_name}" if patient == "self"
                              else _dependant(member)),
                patient_relationship=patient, provider_name=provider,
                provider_npi=PROVIDER_SERVICES[provider][0],
                network="out" if emergency else "in", no_surprises=emergency, service_date=day,
                received_date=received, service_code=code,
                service_description=SERVICE_CATALOG[code][1 if spanish else 0],
                payee="provider" if paid else "",
                paid_date=min(received + timedelta(days=5), PERIOD_END) if paid else None,
                payment_ref=f"EFT{claim_id[-6:]}{index + 1}" if paid else "",
                original_claim_id=f"C2610{number + 1:06d}" if fields["status"] == "adjusted" else "",
                **fields,
            ))
    return lines


def _reasons(lines: list[ClaimLine], spanish: bool) -> list[ReasonExplanation]:
    """Every adjustment code of every line, explained from the versioned table."""
    codes = {a.code for line in lines for a in line.adjustments}
    codes |= {line.reason_code for line in lines if line.reason_code}
    explained = []
    for code in sorted(codes):
        may_owe, provision, text_en, text_es = REASONS[code]
        explained.append(ReasonExplanation(code=code, text=text_es if spanish else text_en,
                                           member_may_owe=may_owe, plan_provision=provision))
    return explained


def _accumulators(plan: Plan, lines: list[ClaimLine]) -> list[Accumulator]:
    """Individual and family, in and out of network, for the plan year; never capped."""
    before = {("deductible", "individual", "in"): DEDUCTIBLE_USED_BEFORE,
              ("out_of_pocket", "individual", "in"): OUT_OF_POCKET_USED_BEFORE,
              ("deductible", "family", "in"): FAMILY_DEDUCTIBLE_USED_BEFORE,
              ("out_of_pocket", "family", "in"): FAMILY_OUT_OF_POCKET_USED_BEFORE}
    year = (plan.plan_year_start or date(PERIOD_START.year, 1, 1), date(PERIOD_START.year, 12, 31))
    out = []
    for name in ("deductible", "out_of_pocket"):
        for tier in ("individual", "family"):
            for network in ("in", "out"):
                limit = plan.limit(name, tier, network)
                if limit <= 0:
                    continue
                used = before.get((name, tier, network), 0)
                for line in lines:
                    counted = "in" if line.network == "in" or line.no_surprises else "out"
                    if counted != network or (tier == "individual" and line.patient_relationship != "self"):
                        continue
                    used += line.deductible
                    if name == "out_of_pocket":
                        used += line.copay + line.coinsurance
                out.append(Accumulator(name, used, limit, PERIOD_END, tier, network, year))
    return out


def is_adverse_line(line: ClaimLine) -> bool:
    """What makes a line adverse in these samples: denied, partly paid, a denied amount, or a
    reduction code (compose's rule, pipeline.compose.reasons.is_adverse, kept free of pyarrow)."""
    routine = {"PR-1", "PR-2", "PR-3", "CO-45", "OA-23"}
    return line.status != "pended" and (
        line.status in ("denied", "partial") or line.denied > 0
        or any(a.code not in routine for a in line.adjustments))


def _statement_id(member_id: str, period: str, version: int = 1) -> str:
    """Shaped like compose.make_statement_id (an opaque hash: ids never carry member data);
    not imported from there because compose pulls in pandas, which slows every test."""
    digest = hashlib.sha256(f"{member_id}|{period}|{version}".encode()).hexdigest()[:16]
    return f"st-{period}-{digest}"


def make_statement(
    n_lines: int = 8, language: str = "en", denied: int = 1, **overrides: Any
) -> Statement:
    """A November 2026 statement with `n_lines` lines, `denied` of them denied.

    With 6+ lines one claim is out-of-network emergency care (No Surprises Act protected);
    with 8+ lines one line shows another insurer's payment. Overrides replace Statement
    fields (`member`, `plan`, `lines`, ...); flags are derived from the generated lines.
    """
    denied = max(0, min(denied, n_lines))
    member = overrides.pop("member", None)
    if member is None:
        member = make_member(language=language)
        if language == "es":
            member = _spanish(member)
    plan = overrides.pop("plan", PLAN_GOLD)
    spanish = member.language == "es"
    rng = random.Random(f"{n_lines}/{denied}/{member.member_id}/{member.language}")
    lines = _make_lines(member, n_lines, denied, spanish, rng)
    statement = Statement(
        statement_id=_statement_id(member.member_id, PERIOD),
        version=1,
        period=PERIOD,
        statement_date=STATEMENT_DATE,
        member=member,
        plan=plan,
        lines=lines,
        reasons=_reasons(lines, spanish),
        accumulators=_accumulators(plan, lines),
        has_adverse_determination=any(is_adverse_line(line) for line in lines),
        has_no_surprises_protection=any(line.no_surprises for line in lines),
    )
    return dataclasses.replace(statement, **overrides)


SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "statement-en": ("email", {}),
    "statement-es": ("email", {"language": "es"}),
    "statement-multipage-en": ("email", {"n_lines": 60, "denied": 4}),
    "statement-print-en": ("print", {}),
}
"""The published samples (docs/samples/<name>.pdf, see docs/statements.md): variant and the
make_statement arguments."""


def sample_statements() -> dict[str, tuple[Statement, str]]:
    """The published samples: name -> (statement, variant)."""
    return {name: (make_statement(**arguments), variant) for name, (variant, arguments) in SAMPLES.items()}


def write_samples(folder: Path, dpi: int = 80) -> list[Path]:
    """Render the published samples into `folder` with a PNG of each page (pdftoppm)."""
    import subprocess

    from pipeline.render import render_statement

    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, (statement, variant) in sample_statements().items():
        pdf = folder / f"{name}.pdf"
        pdf.write_bytes(render_statement(statement, variant=variant).pdf)
        for old in folder.glob(f"{name}-*.png"):
            old.unlink()
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(folder / name)], check=True)
        written.append(pdf)
    return written


if __name__ == "__main__":  # .venv/bin/python -m tests.support.factories docs/samples
    import sys

    for path in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/samples")):
        print(path)
