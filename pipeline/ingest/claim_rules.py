"""The claim rules across a line's fields (the schema's claims rules, but for member and
duplicate checks, which need other rows), and the canonical amounts they settle.

Amounts: the extract's `billed` must equal its discount + plan paid + other payer + member share
(a pended line: billed alone, everything else 0). The canonical line adds two amounts the
extract does not carry: `denied` (split off the discount, see `pipeline.ingest.adjustments`)
and `pending` (a pended line's billed amount, not decided yet), so that on every canonical line
billed = discount + denied + pending + plan paid + other payer + member share.

A line is an adverse benefit determination (`adverse`) when it is denied or partial, or carries
an adverse adjustment (a paid line with a reduction code, in its list or as its reason code):
it needs a reason the member is told, with the plan provision relied on.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.adjustments import derived_adjustments, parse_extract_adjustments
from pipeline.ingest.checks import Problems, among, nonempty, per_value
from pipeline.ingest.schema import FileSpec
from pipeline.reason_codes import reason_table
from pipeline.storage import EXTRACT_MONEY_COLUMNS

__all__ = ["check_claim_rules"]

_PAYMENT = ("paid_date", "payment_ref", "payee")


def _numbers(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, 0).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def check_claim_rules(typed: dict[str, pa.Array], spec: FileSpec, problems: Problems,
                      period_end: date | None) -> None:
    """Flag the rows that break a rule; add the canonical `discount`, `denied`, `pending`,
    `adjustments` (cents) and `adverse` to `typed`."""
    service, received, paid = typed["service_date"], typed["received_date"], typed["paid_date"]
    problems.flag(pc.less(received, service), *spec.rule("received_after_service"))
    if period_end is not None:
        end = pa.scalar(period_end, pa.date32())
        problems.flag(pc.greater(service, end), *spec.rule("service_not_after_period"))
        problems.flag(pc.greater(received, end), *spec.rule("received_not_after_period"))
    status = typed["status"]
    pended = per_value(status, among(["pended"]))
    money = {name: _numbers(typed[name]) for name in EXTRACT_MONEY_COLUMNS}
    others = sum(money[name] for name in EXTRACT_MONEY_COLUMNS[1:])
    problems.flag(~pended & (money["billed"] != others), *spec.rule("billed_reconciles"))
    problems.flag(pended & (others != 0), *spec.rule("pended_amounts"))

    listed = per_value(typed["adjustments"], nonempty)
    reason = typed["reason_code"]
    parsed = parse_extract_adjustments(typed["adjustments"], np.flatnonzero(listed & ~problems.bad), reason)
    sums = parsed.sums
    problems.flag(parsed.bad_group, *spec.rule("adjustment_group"))
    problems.flag(parsed.unknown_code, *spec.rule("adjustment_known"))
    problems.flag(parsed.unknown_remark, *spec.rule("remark_known"))
    adjusted_total = sum(sums[name] for name in sums if name != "informational")
    settled = money["plan_paid"] + money["other_payer_paid"] + adjusted_total
    problems.flag(listed & (money["billed"] != settled), *spec.rule("adjustments_reconcile"))
    cost_share = np.zeros(len(pended), bool)
    for name in ("deductible", "coinsurance", "copay", "not_covered"):
        cost_share |= sums[name] != money[name]
    problems.flag(listed & cost_share, *spec.rule("adjustments_cost_share"))
    # with billed, the cost share and the list reconciled, the contractual and denied amounts
    # together are the extract's discount: no check of their own is needed

    table = reason_table()
    has_reason = per_value(reason, nonempty)
    reason_adverse = per_value(reason, among(table.of_kind("adverse")))
    legacy_denial = (~listed & per_value(status, among(["denied", "partial"])) & reason_adverse
                     & ~per_value(reason, among([c for c in table.codes if c.startswith("PR-")])))
    denied = np.where(listed, sums["denied"], np.where(legacy_denial, money["discount"], 0))
    discount = np.where(listed, sums["discount"], np.where(legacy_denial, 0, money["discount"]))
    booked = {**money, "discount": discount, "denied": denied}
    typed["denied"] = pa.array(denied, pa.int64())
    typed["discount"] = pa.array(discount, pa.int64())
    typed["pending"] = pa.array(np.where(pended, money["billed"], 0), pa.int64())
    typed["adjustments"] = parsed.canonical
    unlisted = np.flatnonzero(~listed & ~pended)
    if len(unlisted):  # an extract without lists: derived from the amounts
        at = pa.array(unlisted)
        derived = derived_adjustments(pc.take(reason, at), {k: v[unlisted] for k, v in booked.items()})
        typed["adjustments"] = pc.replace_with_mask(parsed.canonical, _mask(unlisted, len(pended)), derived)

    denied_or_partial = per_value(status, among(["denied", "partial"]))
    adverse = ~pended & (denied_or_partial | parsed.adverse | (~listed & reason_adverse))
    typed["adverse"] = pa.array(adverse)
    problems.flag(denied_or_partial & ~has_reason & ~parsed.adverse, *spec.rule("adverse_has_reason"))
    problems.flag(has_reason & ~per_value(reason, among(table.codes)), *spec.rule("reason_code_known"))
    problems.flag(adverse & has_reason & ~parsed.adverse & ~per_value(reason, among(table.with_provision)),
                  *spec.rule("adverse_reason_has_provision"))
    problems.flag(per_value(status, among(["denied"])) & (money["plan_paid"] > 0),
                  *spec.rule("denied_without_payment"))
    problems.flag(per_value(status, among(["adjusted"])) & ~per_value(typed["original_claim_id"], nonempty),
                  *spec.rule("adjusted_has_original"))
    problems.flag(pc.less(paid, received), *spec.rule("paid_after_received"))
    if period_end is not None:
        late = pc.greater(paid, pa.scalar(period_end, pa.date32()))
        problems.flag(late, *spec.rule("paid_not_after_period"))
    payment = np.zeros(len(pended), bool)
    for name in _PAYMENT:
        payment |= per_value(typed[name], nonempty) if name != "paid_date" else pc.is_valid(paid).to_numpy(
            zero_copy_only=False)
    problems.flag(pended & payment, *spec.rule("pended_without_payment"))
    problems.flag(listed & has_reason & ~parsed.reason_listed, *spec.rule("reason_in_adjustments"))


def _mask(rows: np.ndarray, n: int) -> pa.Array:
    mask = np.zeros(n, bool)
    mask[rows] = True
    return pa.array(mask)
