"""Compose: group a shard's accepted claim lines into one statement per member and period.

Pure and deterministic: the same lines give the same statements and the same statement_id, so
compose and render can both derive statements from the canonical Parquet without an extra copy.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pandas as pd

from pipeline.ingest import read_shard_lines
from pipeline.model import Accumulator, ClaimLine, Member, Plan, ReasonExplanation, Statement
from pipeline.periods import statement_date

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_LINE_FIELDS = [f for f in ClaimLine.__slots__]  # type: ignore[attr-defined]
NO_SURPRISES_CODES = frozenset({"99283"})  # emergency services: protected out of network


class UnknownReasonCode(LookupError):
    """A line carries a reason code the plain-language table does not explain."""


@dataclass(frozen=True, slots=True)
class Composed:
    statement: Statement
    channel: str  # "email" or "paper"
    paper_reason: str | None
    email: str | None
    email_domain: str | None
    prompt_notice: bool


def make_statement_id(member_id: str, period: str, version: int = 1) -> str:
    digest = hashlib.sha256(f"{member_id}|{period}|{version}".encode()).hexdigest()[:16]
    return f"st-{period}-{digest}"


@cache
def reason_table(path: Path = TEMPLATES_DIR / "reason_codes.csv") -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row for row in csv.DictReader(handle)}


def explain(code: str, language: str) -> ReasonExplanation:
    table = reason_table()
    if code not in table:
        raise UnknownReasonCode(
            f"reason code {code} has no plain-language text in templates/reason_codes.csv")
    row = table[code]
    text = row.get(f"text_{language}") or row["text_en"]
    return ReasonExplanation(code, text, row["member_may_owe"] == "1", row["plan_provision"])


def paper_reason(email: str, email_valid: bool, consent: str, suppressed: bool) -> str | None:
    """Why a member gets paper instead of email, or None when email is allowed."""
    if consent != "Y":
        return "no_consent"
    if not email:
        return "no_email"
    if not email_valid:
        return "invalid_email"
    if suppressed:
        return "suppressed"
    return None


def load_members(run_dir: Path, shard: int) -> pd.DataFrame:
    members = pd.read_parquet(run_dir / "members.parquet", filters=[("shard", "==", shard)])
    return members.set_index("member_id", drop=False)


def load_plans(run_dir: Path) -> dict[str, Plan]:
    plans = pd.read_parquet(run_dir / "plans.parquet")
    return {row.plan_id: Plan(row.plan_id, row.plan_name, row.brand, int(row.deductible_limit),
                              int(row.out_of_pocket_limit)) for row in plans.itertuples()}


def iter_composed(
    run_dir: Path, shard: int, period: str, *, prompt_notice_days: int,
    is_suppressed: callable = lambda _email: False,  # type: ignore[valid-type]
) -> Iterator[Composed]:
    """Every statement of one shard, in member order."""
    members = load_members(run_dir, shard)
    plans = load_plans(run_dir)
    lines = read_shard_lines(run_dir, shard)
    if lines.empty:
        return
    lines = lines.sort_values(["member_id", "claim_id", "line_no"], kind="stable")
    issued = statement_date(period)
    for member_id, group in lines.groupby("member_id", sort=True):
        row = members.loc[member_id]
        yield compose_member(row, plans[row["plan_id"]], group, period, issued,
                             prompt_notice_days, is_suppressed)


def compose_member(row: pd.Series, plan: Plan, group: pd.DataFrame, period: str, issued: date,
                   prompt_notice_days: int, is_suppressed: callable) -> Composed:  # type: ignore[valid-type]
    member = _member(row)
    lines = [ClaimLine(**{name: _plain(record[name]) for name in _LINE_FIELDS})
             for record in group.to_dict("records")]
    codes = sorted({line.reason_code for line in lines if line.reason_code})
    adverse = [line for line in lines if line.status in ("denied", "partial")]
    statement = Statement(
        statement_id=make_statement_id(member.member_id, period),
        version=1,
        period=period,
        statement_date=issued,
        member=member,
        plan=plan,
        lines=lines,
        reasons=[explain(code, member.language) for code in codes],
        accumulators=_accumulators(row, plan, lines, issued),
        has_adverse_determination=bool(adverse),
        has_no_surprises_protection=any(
            line.network == "out" and line.service_code in NO_SURPRISES_CODES for line in lines),
    )
    email = member.email or ""
    reason = paper_reason(email, bool(row["email_valid"]), row["edelivery_consent"],
                          bool(email) and is_suppressed(email))
    deadline = issued - timedelta(days=prompt_notice_days)
    return Composed(
        statement=statement,
        channel="paper" if reason else "email",
        paper_reason=reason,
        email=email or None,
        email_domain=email.rsplit("@", 1)[1].lower() if "@" in email and not reason else None,
        prompt_notice=any(line.received_date < deadline for line in adverse),
    )


def _member(row: pd.Series) -> Member:
    return Member(
        member_id=row["member_id"], first_name=row["first_name"], last_name=row["last_name"],
        date_of_birth=row["date_of_birth"], address_line1=row["address_line1"],
        address_line2=row["address_line2"], city=row["city"], state=row["state"],
        postal_code=row["postal_code"], email=row["email"] or None,
        language=row["language"] if row["language"] in ("en", "es") else "en",
        plan_id=row["plan_id"], group_number=row["group_number"],
        line_of_business=row["line_of_business"] or "commercial",
        edelivery_consent=row["edelivery_consent"] == "Y",
    )


def _accumulators(row: pd.Series, plan: Plan, lines: list[ClaimLine], issued: date) -> list[Accumulator]:
    as_of = issued - timedelta(days=1)
    deductible = int(row["ytd_deductible"]) + sum(line.deductible for line in lines)
    oop = int(row["ytd_out_of_pocket"]) + sum(line.member_owes for line in lines)
    return [
        Accumulator("deductible", min(deductible, plan.deductible_limit), plan.deductible_limit, as_of),
        Accumulator("out_of_pocket", min(oop, plan.out_of_pocket_limit), plan.out_of_pocket_limit, as_of),
    ]


def _plain(value: object) -> object:
    """numpy scalars → Python ints so the model holds plain values."""
    if hasattr(value, "item"):
        return value.item()  # type: ignore[union-attr]
    return value
