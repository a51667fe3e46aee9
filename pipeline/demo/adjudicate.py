"""The demo's providers, services and claims adjudication: plausible claims with their 835-style
adjustments lists.

- Each provider bills services of its own specialty (`_Provider.services`).
- Preventive care (a flu vaccine with its administration, 90686 + 90471; a preventive visit,
  99391-99397 by age) in network costs the member nothing: a contractual discount and the plan
  pays the rest.
- A member's lines are adjudicated in date-of-service order: the deductible first, until met,
  then coinsurance on what is left; cost sharing stops at the out-of-pocket maximum.
- Every line carries its adjustments (`CO-45:120.00;PR-1:50.00;PR-2:14.00`), both cost shares when
  it has both; a small share are denied (CO write-off or PR not covered), partial (PR-204), paid
  with a reduction (CO-59, a multiple-procedure reduction, as well as the contractual CO-45), or
  with another plan's payment (OA-23, which explains the other payer's part).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["PREVENTIVE_VISITS", "PROVIDERS", "SERVICES", "Adjudicated", "Benefits", "Provider", "Service",
           "adjudicate"]


class Service(NamedTuple):
    code: str
    description: str
    base: int  # cents
    copay: int  # cents
    diagnoses: tuple[str, ...]  # ICD-10-CM codes it is billed with, one picked per line
    revenue: str = ""  # the revenue code a facility bills it under
    preventive: bool = False  # no cost share in network (ACA preventive services)


class Provider(NamedTuple):
    name: str
    npi: str
    network: str
    place: str  # CMS place of service of its claims
    facility: bool = False  # bills UB-04 revenue codes
    services: tuple[str, ...] = ()  # the codes of its specialty


_SERVICES = [
    Service("99213", "Office visit, established patient", 18000, 3000,
            ("J06.9", "I10", "E11.9", "M54.50", "J02.9"), "0510"),
    Service("99214", "Office visit, established patient, moderate complexity", 26000, 3000,
            ("I10", "E11.9", "E78.5", "K21.9", "J45.909"), "0510"),
    Service("80053", "Blood test, comprehensive metabolic panel", 9000, 0, ("E11.9", "I10", "E78.5"), "0301"),
    Service("85025", "Blood count, complete", 4500, 0, ("D64.9", "R53.83"), "0305"),
    Service("83036", "Blood test, hemoglobin A1c", 5000, 0, ("E11.9",), "0301"),
    Service("71046", "Chest X-ray, two views", 22000, 0, ("J18.9", "R05.9", "J06.9"), "0324"),
    Service("97110", "Physical therapy exercises, 15 minutes", 14000, 4000,
            ("M54.50", "M25.561", "S83.241A"), "0420"),
    Service("97140", "Manual therapy, 15 minutes", 13000, 4000, ("M54.50", "M25.561"), "0420"),
    Service("73721", "MRI of knee", 185000, 0, ("M25.561", "S83.241A", "M17.11"), "0610"),
    Service("20610", "Joint injection, major joint", 34000, 0, ("M17.11", "M25.561"), "0510"),
    Service("99283", "Emergency department visit", 120000, 15000,
            ("R07.9", "S93.401A", "R10.9", "J06.9"), "0450"),
    Service("90686", "Flu vaccine", 4000, 0, ("Z23",), "0771", preventive=True),
    Service("90471", "Vaccine administration", 2500, 0, ("Z23",), "0771", preventive=True),
    Service("11102", "Skin biopsy", 31000, 0, ("D48.5", "L57.0", "L82.1"), "0361"),
    Service("17000", "Removal of a skin lesion", 15000, 0, ("L57.0", "L82.1"), "0361"),
]
PREVENTIVE_VISITS = {  # (age from, age to): the preventive visit of an established patient
    (0, 4): "99392", (5, 11): "99393", (12, 17): "99394", (18, 39): "99395", (40, 64): "99396",
    (65, 200): "99397",
}
_SERVICES += [Service(code, "Preventive visit, established patient", 25000, 0, ("Z00.00",), "0510",
                      preventive=True) for code in PREVENTIVE_VISITS.values()]
SERVICES = {service.code: service for service in _SERVICES}
PROVIDERS = [
    Provider("Riverside Family Medicine", "1245319599", "in", "11",
             services=("99213", "99214", "99213", "PREVENTIVE", "FLU", "85025", "83036")),
    Provider("St. Catherine Regional Medical Center", "1932147731", "in", "22", facility=True,
             services=("71046", "73721", "80053", "85025")),
    Provider("Lakeside Imaging Associates", "1609843210", "in", "11", services=("71046", "73721")),
    Provider("Northgate Urgent Care", "1487659302", "in", "20", services=("99213", "99214", "71046", "FLU")),
    Provider("Dr. Alexandra Whitfield-Montgomery, Orthopaedic Surgery and Sports Medicine",
             "1356098741", "out", "11", services=("99213", "99214", "20610")),
    Provider("Valley Physical Therapy", "1720394856", "in", "11", services=("97110", "97140")),
    Provider("Metro Clinical Laboratory", "1093847561", "in", "81", services=("80053", "85025", "83036")),
    Provider("Summit Dermatology", "1568302947", "out", "11", services=("11102", "17000", "99213")),
]
EMERGENCY = Provider("St. Catherine Regional Medical Center", "1932147731", "in", "23", facility=True,
                     services=("99283", "71046", "85025"))
DENIALS_WRITE_OFF = ["CO-50", "CO-97", "CO-16", "CO-29"]
DENIALS_MEMBER = ["PR-96", "PR-204"]


@dataclass(slots=True)
class Benefits:
    """What is left of a member's deductible and out-of-pocket maximum, in network and out,
    as their lines are adjudicated in date order."""

    deductible_left: dict[str, int]
    oop_left: dict[str, int]
    used: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})  # cost share this period
    deductible_used: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})  # of it, deductible


@dataclass(frozen=True, slots=True)
class Adjudicated:
    amounts: dict[str, int]  # the extract's amounts, cents (discount includes denied amounts)
    status: str
    reason: str
    adjustments: list[tuple[str, int]]  # (group-coded CARC, cents), in 835 order


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def adjustments_text(adjustments: list[tuple[str, int]]) -> str:
    """The extract's adjustments column: `CODE:dollars`, ';'-separated, zero amounts left out."""
    return ";".join(f"{code}:{_money(cents)}" for code, cents in adjustments if cents > 0)


def adjudicate(rng: random.Random, extra: random.Random, service: Service, network: str,
               benefits: Benefits) -> Adjudicated:
    """Amounts that always reconcile (billed = discount + paid + other payer + member share) and
    the adjustments that explain them."""
    billed = int(service.base * rng.uniform(0.7, 1.6))
    a = dict.fromkeys(("discount", "plan_paid", "other_payer_paid", "deductible", "copay", "coinsurance",
                       "not_covered"), 0)
    a["billed"] = billed
    roll = rng.random()
    if roll < 0.02:
        a["billed"] = 0
        return Adjudicated(a, "paid", "", [])
    if roll < 0.06:
        a["discount"] = billed
        code = rng.choice(DENIALS_WRITE_OFF)
        return Adjudicated(a, "denied", code, [(code, billed)])
    if roll < 0.09:
        a["discount"] = billed // 5 if network == "in" else 0
        a["not_covered"] = billed - a["discount"]
        code = rng.choice(DENIALS_MEMBER)
        return Adjudicated(a, "denied", code, [("CO-45", a["discount"]), (code, a["not_covered"])])
    a["discount"] = int(billed * rng.uniform(0.2, 0.5)) if network == "in" else 0
    allowed = billed - a["discount"]
    adjustments = [("CO-45", a["discount"])]
    status, reason = "paid", "CO-45" if a["discount"] else ""
    if roll < 0.14 and not service.preventive:
        a["not_covered"] = allowed // 4
        allowed -= a["not_covered"]
        status, reason = "partial", "PR-204"
        adjustments.append(("PR-204", a["not_covered"]))
    elif extra.random() < 0.03 and network == "in" and not service.preventive:
        reduction = allowed // 2  # a paid line reduced under the multiple-procedure rule
        a["discount"] += reduction
        allowed -= reduction
        reason = "CO-59"
        adjustments.append(("CO-59", reduction))
    if not (service.preventive and network == "in"):
        _cost_share(a, service, network, benefits, allowed)
        allowed -= a["copay"] + a["deductible"] + a["coinsurance"]
    adjustments += [("PR-1", a["deductible"]), ("PR-2", a["coinsurance"]), ("PR-3", a["copay"])]
    if rng.random() < 0.05:
        a["other_payer_paid"] = allowed // 3
        allowed -= a["other_payer_paid"]
        adjustments.append(("OA-23", a["other_payer_paid"]))
    a["plan_paid"] = allowed
    if status == "paid" and reason in ("", "CO-45"):
        reason = "PR-1" if a["deductible"] else "PR-2" if a["coinsurance"] else reason
    return Adjudicated(a, status, reason, adjustments)


def _cost_share(a: dict[str, int], service: Service, network: str, benefits: Benefits, allowed: int) -> None:
    """Copay, then the deductible until it is met, then coinsurance on the rest, none of it past
    the out-of-pocket maximum."""
    oop = benefits.oop_left[network]
    a["copay"] = min(service.copay, allowed, oop)
    oop -= a["copay"]
    rest = allowed - a["copay"]
    a["deductible"] = min(benefits.deductible_left[network], rest, oop)
    benefits.deductible_left[network] -= a["deductible"]
    oop -= a["deductible"]
    rest -= a["deductible"]
    a["coinsurance"] = min(rest * (20 if network == "in" else 40) // 100, oop)
    oop -= a["coinsurance"]
    benefits.oop_left[network] = oop
    benefits.used[network] += a["copay"] + a["deductible"] + a["coinsurance"]
    benefits.deductible_used[network] += a["deductible"]
