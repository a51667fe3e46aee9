"""The canonical records the stages hand to each other.

Amounts are integer cents everywhere: money must reconcile exactly, and floats cannot.
These records carry PHI; they never go into logs or exception messages (use ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

MONEY_FIELDS: tuple[str, ...] = (
    "billed",
    "discount",
    "plan_paid",
    "other_payer_paid",
    "deductible",
    "copay",
    "coinsurance",
    "not_covered",
)
"""Line amounts, in cents. billed = discount + plan_paid + other_payer_paid + member share."""

MEMBER_SHARE_FIELDS: tuple[str, ...] = ("deductible", "copay", "coinsurance", "not_covered")


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    first_name: str
    last_name: str
    date_of_birth: date
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    email: str | None
    language: str  # ISO 639-1: "en", "es"
    plan_id: str
    group_number: str
    line_of_business: str  # "commercial", "medicare_advantage", ...
    edelivery_consent: bool


@dataclass(frozen=True, slots=True)
class ClaimLine:
    claim_id: str
    line_no: int
    member_id: str
    patient_name: str
    patient_relationship: str  # "self", "spouse", "child"
    provider_name: str
    provider_npi: str
    network: str  # "in" or "out"
    service_date: date
    received_date: date
    service_code: str
    service_description: str
    status: str  # "paid", "denied", "partial"
    reason_code: str  # CARC with group code, e.g. "PR-1", "CO-45"; "" when none
    billed: int
    discount: int
    plan_paid: int
    other_payer_paid: int
    deductible: int
    copay: int
    coinsurance: int
    not_covered: int

    @property
    def allowed(self) -> int:
        return self.billed - self.discount

    @property
    def member_owes(self) -> int:
        return self.deductible + self.copay + self.coinsurance + self.not_covered


@dataclass(frozen=True, slots=True)
class ReasonExplanation:
    code: str  # e.g. "CO-50"
    text: str  # plain-language meaning
    member_may_owe: bool  # PR group: the member may owe; CO group: provider write-off
    plan_provision: str  # plan document section relied on, for adverse determinations


@dataclass(frozen=True, slots=True)
class Accumulator:
    name: str  # "deductible" or "out_of_pocket"
    used: int  # cents, year to date including this statement
    limit: int  # cents
    as_of: date


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    plan_name: str
    brand: str  # selects templates/brands/<brand>.toml
    deductible_limit: int
    out_of_pocket_limit: int


@dataclass(frozen=True, slots=True)
class SeparateNotice:
    """A notice about one of the statement's claims sent apart from it (the prompt notice of an
    adverse benefit determination whose deadline the statement misses), and the day it leaves."""

    claim_id: str
    leaves: date


@dataclass(slots=True)
class Statement:
    """One member's EOB for one period: what render turns into a PDF."""

    statement_id: str
    version: int
    period: str  # "YYYY-MM"
    statement_date: date
    member: Member
    plan: Plan
    lines: list[ClaimLine]
    reasons: list[ReasonExplanation] = field(default_factory=list)
    accumulators: list[Accumulator] = field(default_factory=list)
    has_adverse_determination: bool = False
    has_no_surprises_protection: bool = False
    replaces: str | None = None  # statement_id of the version this one corrects (a reissue)
    reason_table_version: str = ""  # templates/reason_codes.csv version the reasons came from
    separate_notices: list[SeparateNotice] = field(default_factory=list)  # said near the appeal rights
    own_statement: str = ""  # "request" or "policy": a patient's own statement (pipeline.recipients)

    def total(self, money_field: str) -> int:
        return sum(getattr(line, money_field) for line in self.lines)

    @property
    def total_member_owes(self) -> int:
        return sum(line.member_owes for line in self.lines)

    @property
    def total_allowed(self) -> int:
        return sum(line.allowed for line in self.lines)
