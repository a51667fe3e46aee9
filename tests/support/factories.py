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
    MEMBER_SHARE_FIELDS,
    MONEY_FIELDS,
    Accumulator,
    ClaimLine,
    Member,
    Plan,
    ReasonExplanation,
    Statement,
)
from pipeline.recipients import recipient_id

PERIOD = "2026-11"
PERIOD_START = date(2026, 11, 1)
STATEMENT_DATE = date(2026, 12, 1)

# code -> (member_may_owe, plan_provision, text_en, text_es); wording as in reason_codes.csv.
REASONS: dict[str, tuple[bool, str, str, str]] = {
    "PR-1": (
        True,
        "",
        "This amount was applied to your deductible: the amount you pay before your plan "
        "starts to pay.",
        "Esta cantidad se aplicó a su deducible: lo que usted paga antes de que su plan "
        "comience a pagar.",
    ),
    "PR-2": (
        True,
        "",
        "This is your coinsurance: your share of the cost after your deductible, as a "
        "percentage.",
        "Este es su coseguro: su parte del costo después del deducible, como porcentaje.",
    ),
    "PR-3": (
        True,
        "",
        "This is your copay: a fixed amount you pay for this kind of service.",
        "Este es su copago: una cantidad fija que paga por este tipo de servicio.",
    ),
    "CO-45": (
        False,
        "",
        "The provider charged more than the amount your plan allows. An in-network provider "
        "cannot bill you for the difference.",
        "El proveedor cobró más de lo que permite su plan. Un proveedor de la red no puede "
        "cobrarle la diferencia.",
    ),
    "CO-50": (
        False,
        "Certificate of Coverage, section 4.2 (Medical necessity)",
        "We did not pay because the information we received does not show this service was "
        "medically necessary. You do not owe the provider for this service.",
        "No pagamos porque la información recibida no muestra que este servicio fuera "
        "médicamente necesario. Usted no le debe al proveedor por este servicio.",
    ),
    "PR-204": (
        True,
        "Schedule of Benefits, section 2 (Covered services)",
        "This service is not covered under your current benefit plan. You may owe the "
        "provider for it.",
        "Este servicio no está cubierto por su plan de beneficios actual. Es posible que le "
        "deba al proveedor por él.",
    ),
    "OA-23": (
        False,
        "",
        "Another insurance plan paid first; this reflects their payment.",
        "Otro plan de seguro pagó primero; esto refleja su pago.",
    ),
}
DENIAL_CODES = ("PR-204", "CO-50")

# code, English description, Spanish description, typical charge (cents), copay (cents)
SERVICES: tuple[tuple[str, str, str, int, int], ...] = (
    ("99213", "Office visit, established patient", "Consulta, paciente establecido", 18000, 3000),
    ("80053", "Blood test, comprehensive metabolic panel", "Análisis de sangre, panel metabólico",
     9000, 0),
    ("85025", "Blood count, complete", "Hemograma completo", 4500, 0),
    ("71046", "Chest X-ray, two views", "Radiografía de tórax, dos vistas", 22000, 0),
    ("97110", "Physical therapy exercises, 15 minutes", "Ejercicios de fisioterapia, 15 minutos",
     14000, 4000),
    ("73721", "MRI of knee", "Resonancia magnética de rodilla", 185000, 0),
    ("90686", "Flu vaccine", "Vacuna contra la gripe", 4000, 0),
    ("11102", "Skin biopsy", "Biopsia de piel", 31000, 0),
)
EMERGENCY = ("99283", "Emergency department visit", "Visita a la sala de emergencias", 120000,
             15000)
PROVIDERS: tuple[tuple[str, str], ...] = (
    ("Riverside Family Medicine", "1245319599"),
    ("Lakeside Imaging Associates", "1609843210"),
    ("Metro Clinical Laboratory", "1093847561"),
    ("Valley Physical Therapy", "1720394856"),
    ("Northgate Urgent Care", "1487659302"),
)
OUT_OF_NETWORK_ER = ("St. Catherine Emergency Physicians Group", "1932147731")

PLAN_GOLD = Plan(
    plan_id="PPO-GOLD",
    plan_name="Evergreen PPO Gold",
    brand="default",
    deductible_limit=100000,
    out_of_pocket_limit=450000,
)
DEDUCTIBLE_USED_BEFORE = 40000
OUT_OF_POCKET_USED_BEFORE = 62000


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
        fields["billed"] = sum(fields[name] for name in MONEY_FIELDS if name != "billed")
    return ClaimLine(**fields)


def _spanish(member: Member) -> Member:
    return dataclasses.replace(
        member,
        first_name="María José",
        last_name="Hernández Gutiérrez",
        email="mj.hernandez@example.com",
        language="es",
    )


def _cost_share(
    rng: random.Random, billed: int, copay: int, deductible_left: int
) -> dict[str, int | str]:
    """Split a paid line the way a PPO adjudicates it; returns amounts and the reason code."""
    allowed = round(billed * rng.uniform(0.45, 0.8))
    share: dict[str, int | str] = {"discount": billed - allowed, "other_payer_paid": 0,
                                   "deductible": 0, "copay": 0, "coinsurance": 0,
                                   "not_covered": 0}
    if copay:
        share["copay"] = min(copay, allowed)
        share["reason_code"] = "PR-3"
    else:
        deductible = min(deductible_left, allowed)
        coinsurance = round((allowed - deductible) * 0.2)
        share["deductible"], share["coinsurance"] = deductible, coinsurance
        share["reason_code"] = "PR-1" if deductible else ("PR-2" if coinsurance else "CO-45")
    member = sum(int(share[name]) for name in MEMBER_SHARE_FIELDS)
    share["plan_paid"] = allowed - member
    return share


def _denied_share(code: str, billed: int) -> dict[str, int | str]:
    allowed = round(billed * 0.6)
    if REASONS[code][0]:  # patient responsibility: the member may owe the allowed amount
        return {"discount": billed - allowed, "plan_paid": 0, "other_payer_paid": 0,
                "deductible": 0, "copay": 0, "coinsurance": 0, "not_covered": allowed,
                "reason_code": code}
    return {"discount": billed, "plan_paid": 0, "other_payer_paid": 0, "deductible": 0,
            "copay": 0, "coinsurance": 0, "not_covered": 0, "reason_code": code}


def _make_lines(
    member: Member, n_lines: int, denied: int, spanish: bool, rng: random.Random
) -> list[ClaimLine]:
    patient = f"{member.first_name} {member.last_name}"
    step = n_lines // denied if denied else 0
    denied_at = {i * step + step // 2 for i in range(denied)}
    deductible_left = PLAN_GOLD.deductible_limit - DEDUCTIBLE_USED_BEFORE
    lines: list[ClaimLine] = []
    index, claim_no, denials = 0, 0, 0
    while index < n_lines:
        claim_no += 1
        emergency = n_lines >= 6 and claim_no == 2
        provider, npi = OUT_OF_NETWORK_ER if emergency else PROVIDERS[claim_no % len(PROVIDERS)]
        day = PERIOD_START + timedelta(days=(claim_no * 3) % 28)
        size = 1 if emergency else min(rng.choice((1, 1, 2, 3)), n_lines - index)
        for line_no in range(1, size + 1):
            service = EMERGENCY if emergency else SERVICES[rng.randrange(len(SERVICES))]
            code, desc_en, desc_es, typical, copay = service
            billed = round(typical * rng.uniform(0.85, 1.25))
            if index in denied_at:
                reason = DENIAL_CODES[denials % len(DENIAL_CODES)]
                denials += 1
                share, status = _denied_share(reason, billed), "denied"
            else:
                share, status = _cost_share(rng, billed, copay, deductible_left), "paid"
                deductible_left -= int(share["deductible"])
                if n_lines >= 8 and index == n_lines - 1 and share["plan_paid"]:
                    # coordination of benefits: another plan paid part of the plan's share
                    other = int(share["plan_paid"]) // 2
                    share["other_payer_paid"], share["plan_paid"] = other, int(share["plan_paid"]) - other
                    share["reason_code"] = "OA-23"
            lines.append(make_line(
                claim_id=f"C2611{claim_no:06d}", line_no=line_no, member_id=member.member_id,
                patient_name=patient, provider_name=provider, provider_npi=npi,
                network="out" if emergency else "in", service_date=day,
                received_date=day + timedelta(days=4), service_code=code,
                service_description=desc_es if spanish else desc_en, status=status, **share,
            ))
            index += 1
    return lines


def _reasons(lines: list[ClaimLine], spanish: bool) -> list[ReasonExplanation]:
    explained = []
    for code in sorted({line.reason_code for line in lines if line.reason_code}):
        may_owe, provision, text_en, text_es = REASONS[code]
        explained.append(ReasonExplanation(code=code, text=text_es if spanish else text_en,
                                           member_may_owe=may_owe, plan_provision=provision))
    return explained


def _accumulators(plan: Plan, lines: list[ClaimLine]) -> list[Accumulator]:
    deductible = DEDUCTIBLE_USED_BEFORE + sum(line.deductible for line in lines)
    out_of_pocket = OUT_OF_POCKET_USED_BEFORE + sum(
        line.deductible + line.copay + line.coinsurance for line in lines
    )
    return [
        Accumulator("deductible", min(deductible, plan.deductible_limit), plan.deductible_limit,
                    STATEMENT_DATE),
        Accumulator("out_of_pocket", min(out_of_pocket, plan.out_of_pocket_limit),
                    plan.out_of_pocket_limit, STATEMENT_DATE),
    ]


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
        has_adverse_determination=any(line.status != "paid" for line in lines),
        has_no_surprises_protection=any(line.network == "out" for line in lines),
    )
    return dataclasses.replace(statement, **overrides)
