"""FHIR ExplanationOfBenefit → what a line's adjudication says beyond its amounts: status,
reason code, the adjustments list, the payment (payee, date, check or EFT reference) and the
claim an adjusted EOB replaces.

- status: `outcome` `queued` (received, not processed) is `pended`, and so is `partial` when the
  item carries nothing adjudicated yet (only `submitted`); an EOB `related` to a prior claim
  (relationship `prior` or `replaces`, or any related claim when its processNote says it
  adjusts one) is `adjusted`, naming that claim in `original_claim_id`; else denied, partial
  or paid from the amounts and a `denialreason`.
- adjustments: the item's `adjustmentreason` / `denialreason` slices that carry an amount (X12
  CARC, grouped through the reason table when bare), with the cost share as PR-1 (deductible),
  PR-2 (coinsurance) and PR-3 (copay); empty when no reason carries an amount (ingest then
  derives the list from the amounts).
- payment: `payment.date`, `payment.identifier.value`; the payee from `payee.type`
  (`subscriber`/`beneficiary` → member, `provider` → provider), else from which of
  `paidtoprovider` / `paidtopatient` holds the payment.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.ingest.sources.amounts import cost_share_reason, money_text
from pipeline.reason_codes import reason_table

__all__ = ["adjudication_fields", "fhir_reasons", "fhir_status", "grouped_reason"]

_PAYEES = {"subscriber": "member", "beneficiary": "member", "provider": "provider"}
_PRIOR = ("prior", "replaces")


def _code(concept: dict[str, Any] | None) -> str:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return ""


def _adjudications(item: dict[str, Any], eob: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in [*(item.get("adjudication") or []), *(eob.get("adjudication") or [])]
            if isinstance(a, dict)]


def fhir_reasons(item: dict[str, Any], eob: dict[str, Any]) -> tuple[list[str], bool]:
    """The item's (then the EOB's) reason codes, and whether one is a denial reason."""
    codes, denied = [], False
    for adjudication in _adjudications(item, eob):
        category = _code(adjudication.get("category"))
        if category in ("adjustmentreason", "denialreason"):
            denied = denied or category == "denialreason"
            code = _code(adjudication.get("reason"))
            if code:
                codes.append(code)
    return codes, denied


def fhir_status(money: dict[str, Decimal], denied: bool) -> str:
    if denied:
        return "denied"
    if money["billed"] > 0 and money["plan_paid"] == 0 and (
            money["not_covered"] > 0 or money["discount"] == money["billed"]):
        return "denied"
    if money["not_covered"] > 0:
        return "partial"
    return "paid"


def grouped_reason(code: str, money: dict[str, Decimal]) -> str:
    """A group-coded CARC: as given ("CO-45"), or a bare CARC grouped through the reason table:
    its only entry, else the PR one when the member owes something on the line, else CO, else PI."""
    code = code.strip().upper()
    if "-" in code:
        return code
    candidates = reason_table().by_carc(code)
    if len(candidates) == 1:
        return candidates[0]
    member_share = money["deductible"] + money["copay"] + money["coinsurance"] + money["not_covered"]
    preferred = ("PR", "CO", "PI", "OA") if member_share > 0 else ("CO", "PI", "OA", "PR")
    for group in preferred:
        found = next((c for c in candidates if c.startswith(f"{group}-")), None)
        if found:
            return found
    return f"{preferred[0]}-{code}"


def _adjustments(item: dict[str, Any], eob: dict[str, Any], money: dict[str, Decimal]) -> str:
    entries = []
    for adjudication in _adjudications(item, eob):
        if _code(adjudication.get("category")) not in ("adjustmentreason", "denialreason"):
            continue
        value = (adjudication.get("amount") or {}).get("value")
        code = _code(adjudication.get("reason"))
        if value is None or not code:
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            continue
        entries.append(f"{grouped_reason(code, money)}:{money_text(amount)}")
    if not entries:
        return ""
    shares = [f"{code}:{money_text(money[name])}" for code, name in
              (("PR-1", "deductible"), ("PR-2", "coinsurance"), ("PR-3", "copay")) if money[name] > 0]
    return ";".join([*shares, *entries])


def _original_claim(eob: dict[str, Any]) -> str:
    notes = " ".join(str(n.get("text") or "") for n in eob.get("processNote") or [] if isinstance(n, dict))
    for related in eob.get("related") or []:
        if not isinstance(related, dict):
            continue
        relationship = _code(related.get("relationship"))
        if relationship in _PRIOR or (not relationship and "adjust" in notes.lower()):
            claim = related.get("claim") or {}
            identifier = ((claim.get("identifier") or {}).get("value")
                          or (related.get("reference") or {}).get("value"))
            found = identifier or str(claim.get("reference") or "").rsplit("/", 1)[-1]
            if found:
                return str(found)
    return ""


def _payee(eob: dict[str, Any], amounts: dict[str, Decimal]) -> str:
    kind = _code((eob.get("payee") or {}).get("type"))
    if kind in _PAYEES:
        return _PAYEES[kind]
    if amounts.get("paidtopatient", Decimal(0)) > 0:
        return "member"
    if amounts.get("paidtoprovider", Decimal(0)) > 0:
        return "provider"
    return ""


def adjudication_fields(item: dict[str, Any], eob: dict[str, Any], amounts: dict[str, Decimal],
                        money: dict[str, Decimal]) -> dict[str, str]:
    """The canonical status, reason code, adjustments, payment and original claim of one item
    (`money`: its canonical amounts, changed in place for a pended one: billed alone)."""
    codes, denied = fhir_reasons(item, eob)
    outcome = str(eob.get("outcome") or "")
    adjudicated = any(v for k, v in amounts.items() if k != "submitted")
    original = _original_claim(eob)
    if outcome == "queued" or (outcome == "partial" and not adjudicated):
        for name in money:
            if name != "billed":
                money[name] = Decimal(0)
        return {"status": "pended", "reason_code": "", "adjustments": "", "original_claim_id": original}
    status = "adjusted" if original and not denied else fhir_status(money, denied)
    reason = next((grouped_reason(c, money) for c in codes), "")
    if not reason and status in ("paid", "adjusted"):
        reason = cost_share_reason(money)
    payment = eob.get("payment") or {}
    paid = money["plan_paid"] > 0
    return {
        "status": status, "reason_code": reason, "adjustments": _adjustments(item, eob, money),
        "original_claim_id": original,
        "payee": _payee(eob, amounts) if paid else "",
        "paid_date": str(payment.get("date") or "")[:10] if paid else "",
        "payment_ref": str((payment.get("identifier") or {}).get("value") or "") if paid else "",
    }
