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
    "denied",
    "pending",
)
"""Line amounts, in cents. billed = discount + plan_paid + other_payer_paid + member share + denied
+ pending (a pended line's billed amount, not decided yet: everything else on it is 0)."""

MEMBER_SHARE_FIELDS: tuple[str, ...] = ("deductible", "copay", "coinsurance", "not_covered")

LINE_STATUSES: tuple[str, ...] = ("paid", "denied", "partial", "pended", "adjusted")
"""pended: not decided yet (nothing paid or owed so far); adjusted: reprocessed, replacing the
decision on `original_claim_id`."""

PLAN_TYPES: tuple[str, ...] = ("erisa_group", "governmental", "church", "individual",
                               "medicare_advantage", "medicaid")
"""The rulebook a plan answers to: it picks the appeal wording, deadlines, the ERISA civil-action
sentence and the assistance contacts (an employer plan that is governmental or a church's is not
an ERISA plan)."""

ADJUSTMENT_GROUPS: tuple[str, ...] = ("PR", "CO", "OA", "PI")
"""X12 claim adjustment group codes: PR patient responsibility (the member may owe), CO
contractual (the provider writes it off), OA other, PI payer-initiated reduction."""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One reason part of a line's billed amount was not paid by the plan (an 835 CAS entry):
    group code, CARC, amount and an optional remark code (RARC)."""

    group: str  # one of ADJUSTMENT_GROUPS
    carc: str  # claim adjustment reason code, e.g. "45"
    amount: int  # cents
    rarc: str = ""  # remittance advice remark code, e.g. "N115"; "" when none

    @property
    def code(self) -> str:
        """Group-coded CARC, the reason table's key: "CO-45"."""
        return f"{self.group}-{self.carc}"


def parse_adjustments(text: str) -> tuple[Adjustment, ...]:
    """A canonical line's `adjustments` column back into Adjustment records.

    The canonical form (lines/*.parquet, written by ingest) is amounts in integer cents:
    `GROUP-CARC:CENTS[:RARC]`, entries separated by `;`, in the extract's order, e.g.
    `CO-45:12000;PR-2:2000;CO-50:30000:N115`; "" when the line has none. Ingest has validated
    it, so a malformed value is a programming error (ValueError), not a data problem. The error
    names the entry's position only: the entry holds claim amounts, and exceptions reach task
    logs.
    """
    if not text:
        return ()
    out = []
    for position, entry in enumerate(text.split(";"), 1):
        parts = entry.split(":")
        amount = parts[1] if len(parts) in (2, 3) else ""
        if "-" not in parts[0] or not amount.removeprefix("-").isdigit() or not amount.isascii():
            raise ValueError(f"not a canonical adjustment: entry {position} of the adjustments")
        group, carc = parts[0].split("-", 1)
        out.append(Adjustment(group, carc, int(amount), parts[2] if len(parts) == 3 else ""))
    return tuple(out)


def format_adjustments(adjustments: tuple[Adjustment, ...] | list[Adjustment]) -> str:
    """The canonical `adjustments` text of Adjustment records (the inverse of parse_adjustments)."""
    return ";".join(f"{a.code}:{a.amount}" + (f":{a.rarc}" if a.rarc else "") for a in adjustments)


LINE_OF_BUSINESS_PLAN_TYPES: dict[str, str] = {"commercial": "erisa_group",
                                               "medicare_advantage": "medicare_advantage",
                                               "medicaid": "medicaid"}
"""The plan type a plan without one is taken to be, from the member's line of business."""


def resolve_plan_type(plan_type: str, line_of_business: str) -> str:
    """The plan's own type when the extract gives one, else derived from the member's line of
    business (empty = commercial = an ERISA group plan)."""
    return plan_type or LINE_OF_BUSINESS_PLAN_TYPES.get(line_of_business or "commercial", "erisa_group")


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
    language: str  # statement language: "en", "es", "zh-Hant"
    plan_id: str
    group_number: str
    line_of_business: str  # "commercial", "medicare_advantage", ...
    edelivery_consent: bool
    large_print: bool = False  # the member asked for large print (alternate format)


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
    status: str  # one of LINE_STATUSES
    reason_code: str  # the line's main group-coded CARC, e.g. "CO-50"; "" when none (see adjustments)
    billed: int
    discount: int
    plan_paid: int
    other_payer_paid: int
    deductible: int
    copay: int
    coinsurance: int
    not_covered: int
    denied: int = 0  # not paid because of a denial or reduction the member does not owe (never a discount)
    pending: int = 0  # a pended line's billed amount: not decided yet, neither paid nor owed
    adjustments: tuple[Adjustment, ...] = ()  # every adjustment of the line, in the extract's order
    no_surprises: bool = False  # protected by the No Surprises Act (in-network cost sharing, no balance bill)
    payee: str = ""  # who the plan paid: "provider", "member" or "" (nothing paid)
    paid_date: date | None = None  # the day the claim was processed and paid
    payment_ref: str = ""  # check or EFT trace number of the payment
    original_claim_id: str = ""  # for an adjusted line: the claim whose decision it replaces

    @property
    def allowed(self) -> int:
        return self.billed - self.discount - self.denied - self.pending

    @property
    def member_owes(self) -> int:
        return self.deductible + self.copay + self.coinsurance + self.not_covered


@dataclass(frozen=True, slots=True)
class ReasonExplanation:
    code: str  # e.g. "CO-50"
    text: str  # plain-language meaning
    member_may_owe: bool  # PR group: the member may owe; CO group: provider write-off
    plan_provision: str  # plan document section relied on, for adverse determinations


ACCUMULATOR_NAMES: tuple[str, ...] = ("deductible", "out_of_pocket")
ACCUMULATOR_TIERS: tuple[str, ...] = ("individual", "family")
NETWORKS: tuple[str, ...] = ("in", "out")
ACCUMULATOR_KEYS: tuple[tuple[str, str, str], ...] = tuple(
    (name, tier, network) for name in ACCUMULATOR_NAMES for tier in ACCUMULATOR_TIERS for network in NETWORKS)
"""Every accumulator (name, tier, network) a statement can show, in the order it shows them."""


@dataclass(frozen=True, slots=True)
class Accumulator:
    name: str  # "deductible" or "out_of_pocket"
    used: int  # cents, plan year to date including this statement; never capped at the limit
    limit: int  # cents
    as_of: date
    tier: str = "individual"  # one of ACCUMULATOR_TIERS
    network: str = "in"  # one of NETWORKS
    plan_year: tuple[date, date] | None = None  # first and last day of the plan year
    source: str = "computed"  # "extract" (the claims system's figure) or "computed"

    @property
    def overrun(self) -> bool:
        """More used than the limit allows: a data problem for the claims system, never hidden."""
        return self.limit > 0 and self.used > self.limit


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    plan_name: str
    brand: str  # selects templates/brands/<brand>.toml
    deductible_limit: int  # individual, in network
    out_of_pocket_limit: int  # individual, in network
    plan_type: str = ""  # one of PLAN_TYPES; "" = from the member's line of business
    funding: str = "insured"  # or "self_funded": a state insurance department oversees insured plans
    plan_year_start: date | None = None  # first day of the current plan year; None = January 1
    limits: tuple[tuple[str, int], ...] = ()  # other tiers: ("deductible.family.in", cents), ...

    def limit(self, name: str, tier: str = "individual", network: str = "in") -> int:
        """A limit in cents, 0 when the plan does not know it."""
        if (tier, network) == ("individual", "in"):
            return self.deductible_limit if name == "deductible" else self.out_of_pocket_limit
        return dict(self.limits).get(f"{name}.{tier}.{network}", 0)


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
    plan_type: str = "erisa_group"  # resolved from the plan, else the member's line of business
    replaces_date: date | None = None  # statement date of the version this one corrects
    held: str = ""  # why it must not be sent (e.g. "accumulator_overrun"); "" = send it

    def total(self, money_field: str) -> int:
        return sum(getattr(line, money_field) for line in self.lines)

    @property
    def total_member_owes(self) -> int:
        return sum(line.member_owes for line in self.lines)

    @property
    def total_allowed(self) -> int:
        return sum(line.allowed for line in self.lines)
