"""The demo's plans (one of each plan type, with family and out-of-network limits) and what a
member has met of them: year to date before the period, what is left as their lines are
adjudicated, and the accumulators a claims system reports."""

from __future__ import annotations

import random
from datetime import date
from typing import NamedTuple

from pipeline.demo.adjudicate import Benefits
from pipeline.templates import legal_config

__all__ = ["ACCUMULATOR_PLANS", "FAMILY_YTD", "PLAN_DESIGNS", "Plan", "accumulators", "benefits", "cents",
           "family_ytd", "money", "plan_for", "plan_row", "ytd"]

FAMILY_YTD = ["ytd_family_deductible", "ytd_family_out_of_pocket", "ytd_oon_deductible",
              "ytd_oon_out_of_pocket", "ytd_oon_family_deductible", "ytd_oon_family_out_of_pocket"]


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def cents(text: str) -> int:
    dollars, _, rest = text.partition(".")
    return int(dollars) * 100 + int(rest or 0)


class Plan(NamedTuple):
    plan_id: str
    name: str
    deductible: int | None  # individual, in network; None: the plan has none to show
    out_of_pocket: int | None
    plan_type: str
    funding: str
    year_start: str
    out_of_network: bool  # covers out-of-network care (with its own, doubled, limits)
    line_of_business: str = "commercial"


PLAN_DESIGNS = {plan.plan_id: plan for plan in (
    Plan("PPO-GOLD", "Evergreen PPO Gold", 100000, 450000, "erisa_group", "self_funded", "2026-01-01", True),
    Plan("PPO-SILVER", "Evergreen PPO Silver", 250000, 700000, "erisa_group", "insured", "2026-01-01", True),
    Plan("HMO-BRONZE", "Evergreen HMO Bronze", 500000, 900000, "individual", "insured", "2026-01-01", False),
    Plan("CITY-PPO", "Evergreen Public Employees PPO", 150000, 500000, "governmental", "self_funded",
          "2026-07-01", True),
    Plan("FAITH-PPO", "Evergreen Ministries Health Plan", 200000, 600000, "church", "self_funded",
          "2026-01-01", True),
    Plan("MA-HMO", "Evergreen Medicare Advantage HMO", None, 490000, "medicare_advantage", "insured",
          "2026-01-01", False, "medicare_advantage"),
    Plan("MEDICAID", "Evergreen Community Medicaid", None, None, "medicaid", "insured", "2026-01-01", False,
          "medicaid"),
)}
ACCUMULATOR_PLANS = ("CITY-PPO",)
"""Plans whose claims system sends its accumulators (accumulators.csv): the rest are computed."""
def plan_row(plan: Plan) -> list[str]:
    def limit(cents: int | None, times: int = 1, out: bool = False) -> str:
        return "" if cents is None or (out and not plan.out_of_network) else money(cents * times)

    return [plan.plan_id, plan.name, "default", limit(plan.deductible), limit(plan.out_of_pocket),
            plan.plan_type, plan.funding, plan.year_start, limit(plan.deductible, 2),
            limit(plan.out_of_pocket, 2), limit(plan.deductible, 2, True), limit(plan.out_of_pocket, 2, True),
            limit(plan.deductible, 4, True), limit(plan.out_of_pocket, 4, True)]


def medicaid_states() -> frozenset[str]:
    """States whose Medicaid fair-hearing office templates/states.toml names: a Medicaid plan
    serves the states it contracts with, and its statements must say where to ask for a hearing."""
    config = legal_config()
    return frozenset(code for code, rules in config.states.items() if rules.contact("fair_hearing"))


def plan_for(extra: random.Random, drawn: Plan, age: int, state: str) -> Plan:
    """The member's plan: most keep the commercial plan drawn for them; some are public
    employees, a church's employees, on Medicaid (in the states the Medicaid plan serves), or
    (65 and over) in Medicare Advantage."""
    roll = extra.random()
    if age >= 65 and roll < 0.6:
        return PLAN_DESIGNS["MA-HMO"]
    if roll < 0.08 and state in medicaid_states():
        return PLAN_DESIGNS["MEDICAID"]
    if roll < 0.18:
        return PLAN_DESIGNS["CITY-PPO"]
    if roll < 0.24:
        return PLAN_DESIGNS["FAITH-PPO"]
    return drawn


def ytd(plan: Plan, deductible: int, out_of_pocket: int) -> dict[str, object]:
    """Met this plan year before the period: the deductible counts toward out of pocket, and
    neither reaches its limit."""
    deductible = min(deductible, (plan.deductible or 0) // 2)
    oop = min(deductible + out_of_pocket // 2, (plan.out_of_pocket or 0) // 2) if plan.out_of_pocket else 0
    return {"ytd_deductible": money(deductible), "ytd_out_of_pocket": money(max(oop, deductible))}


def family_ytd(extra: random.Random, member: dict[str, object], household: int) -> None:
    """The other tiers' year to date: family figures for a family's coverage, out-of-network ones
    where the plan covers out-of-network care; empty otherwise."""
    plan = member["_plan"]
    assert isinstance(plan, Plan)
    values = dict.fromkeys(FAMILY_YTD, "")
    met = {name: cents(str(member[name])) for name in ("ytd_deductible", "ytd_out_of_pocket")}
    if household > 1 and plan.deductible is not None:
        more = extra.randint(0, plan.deductible // 2)
        values["ytd_family_deductible"] = money(met["ytd_deductible"] + more)
        values["ytd_family_out_of_pocket"] = money(met["ytd_out_of_pocket"] + extra.randint(
            plan.deductible // 2, plan.deductible))
    if plan.out_of_network and plan.deductible is not None:
        oon = extra.randint(0, plan.deductible // 2)
        values["ytd_oon_deductible"] = money(oon)
        values["ytd_oon_out_of_pocket"] = money(oon + extra.randint(0, plan.deductible // 4))
        if household > 1:
            values["ytd_oon_family_deductible"] = values["ytd_oon_deductible"]
            values["ytd_oon_family_out_of_pocket"] = values["ytd_oon_out_of_pocket"]
    member.update(values)


def accumulators(member: dict[str, object], household: int, benefits: Benefits,
                  end: date) -> list[list[str]]:
    """What the claims system reports, as of the period's last day: the year to date before it
    plus the period's cost share (the lines as generated, before any is damaged)."""
    rows = []
    for network, prefix in (("in", "ytd_"), ("out", "ytd_oon_")):
        for tier, infix in (("individual", ""), ("family", "family_")):
            if tier == "family" and household == 1:
                continue
            names = ("ytd_deductible", "ytd_out_of_pocket") if (network, tier) == ("in", "individual") else (
                f"{prefix}{infix}deductible", f"{prefix}{infix}out_of_pocket")
            if not member[names[0]]:
                continue
            deductible = cents(str(member[names[0]])) + benefits.deductible_used[network]
            oop = cents(str(member[names[1]])) + benefits.used[network]
            for name, used in (("deductible", deductible), ("out_of_pocket", oop)):
                rows.append([str(member["member_id"]), "", name, tier, network, money(used), "",
                             end.isoformat()])
    return rows


def benefits(member: dict[str, object]) -> Benefits:
    """What is left of the deductible and out-of-pocket maximum, in network and out (where the
    plan has no out-of-network limits, out-of-network care counts against the in-network ones)."""
    plan = member["_plan"]
    assert isinstance(plan, Plan)
    ytd = {name: cents(str(member[name])) for name in ("ytd_deductible", "ytd_out_of_pocket")}
    deductible = (plan.deductible or 0) - ytd["ytd_deductible"]
    oop = plan.out_of_pocket - ytd["ytd_out_of_pocket"] if plan.out_of_pocket else 10**12
    return Benefits({"in": deductible, "out": 2 * deductible if plan.out_of_network else deductible},
                    {"in": oop, "out": 2 * oop if plan.out_of_network else oop})
