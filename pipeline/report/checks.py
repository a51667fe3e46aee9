"""The reconciliation check both reports show: the run report's and the finance report's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """One invariant finance relies on: a failed one is shown on the report, never hidden."""

    name: str
    ok: bool
    detail: str
