"""The canonical layout's contract with the model: amounts, plan limits, accumulators."""

from __future__ import annotations

from pipeline.model import ACCUMULATOR_TIERS, MONEY_FIELDS, NETWORKS, ClaimLine, Plan
from pipeline.storage import ACCUMULATOR_SCHEMA, LINE_SCHEMA, MONEY_COLUMNS, PLAN_LIMIT_COLUMNS, PLAN_SCHEMA


def test_every_model_amount_is_a_canonical_column_and_line_field() -> None:
    assert tuple(MONEY_COLUMNS) == MONEY_FIELDS
    assert set(MONEY_COLUMNS) <= set(LINE_SCHEMA.names)
    fields = set(ClaimLine.__slots__)  # type: ignore[attr-defined]
    assert {"denied", "pending", "adjustments", "no_surprises", "payee", "paid_date", "payment_ref",
            "original_claim_id"} <= fields & set(LINE_SCHEMA.names)


def test_plan_limit_columns_name_the_model_limits() -> None:
    assert set(PLAN_LIMIT_COLUMNS) <= set(PLAN_SCHEMA.names)
    keys = {f"{name}.{tier}.{network}" for name in ("deductible", "out_of_pocket")
            for tier in ACCUMULATOR_TIERS for network in NETWORKS}
    keys -= {"deductible.individual.in", "out_of_pocket.individual.in"}  # the plan's own two columns
    assert set(PLAN_LIMIT_COLUMNS.values()) == keys
    plan = Plan("P", "Plan", "default", 1, 2, limits=tuple((key, 7) for key in PLAN_LIMIT_COLUMNS.values()))
    assert plan.limit("deductible", "family", "out") == 7 and plan.limit("deductible") == 1


def test_accumulator_rows_keep_tier_network_and_date() -> None:
    assert {"member_id", "patient_id", "accumulator", "tier", "network", "used", "limit", "as_of"} <= set(
        ACCUMULATOR_SCHEMA.names)
