"""What the FHIR and Synthea mappings share: a line's amounts as the extract's money text, and
the reason code a paid line gets when its source names none."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["cost_share_reason", "money_text"]

CENT = Decimal("0.01")


def cost_share_reason(money: dict[str, Decimal]) -> str:
    """A paid line's main reason when the source gives none: what the member pays, else the discount."""
    for name, code in (("deductible", "PR-1"), ("coinsurance", "PR-2"), ("copay", "PR-3"),
                       ("discount", "CO-45")):
        if money[name] > 0:
            return code
    return ""


def money_text(value: Decimal) -> str:
    """Dollars as the extract's money text; more than two decimals are kept so validation rejects them."""
    if value == value.quantize(CENT):
        return f"{value.quantize(CENT)}"
    return f"{value.normalize()}"
