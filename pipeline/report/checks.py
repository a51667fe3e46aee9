"""The reconciliation check both reports show: the run report's and the finance report's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """One invariant finance relies on: a failed one is shown on the report, never hidden.

    `attention`: a failed one asks someone to act on statements the ledger does account for
    (support to correct a mailing address, operations to chase the print vendor). The report
    shows it failed all the same; it does not mean the run's figures disagree."""

    name: str
    ok: bool
    detail: str
    attention: bool = False


TO_ACT_ON = "to act on (every statement accounted for)"
"""How the command line introduces the failed attention checks."""


def disagreements(checks: Iterable[Check]) -> list[str]:
    """The failed checks that say the figures disagree: the run does not reconcile."""
    return [c.name for c in checks if not c.ok and not c.attention]


def to_act_on(checks: Iterable[Check]) -> list[str]:
    """The failed checks that ask someone to act on statements that are accounted for."""
    return [c.name for c in checks if not c.ok and c.attention]
