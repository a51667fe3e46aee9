"""Year-to-date accumulators: deductible and out-of-pocket, individual and family, in and out of
network, labelled with the plan year, and never capped.

The claims system's figures are the source of truth: when the extract brings them
(`accumulators.parquet`, one row per member, accumulator, tier and network) compose shows them
as they are (source "extract"). Otherwise compose computes them: the member file's year to
date before the period plus the cost share of this statement's lines, by network (a No
Surprises-protected line counts in network, as its cost sharing does); the individual tier
counts the subscriber's own lines, the family tier every line of the statement.

A figure above its limit is not cut to the limit: it is an overrun, a data problem for the
claims system. Compose flags it (`accumulator_overrun` in the summary, counted by the compose
stage by statement id) and, by the `accumulator_overrun` setting, the statement either shows the
true figures with a note or is held (`HOLD_OVERRUN`, see `pipeline.render.StatementHeld`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.model import ACCUMULATOR_TIERS, NETWORKS, Accumulator, ClaimLine, Plan

NAMES = ("deductible", "out_of_pocket")
KEYS: tuple[tuple[str, str, str], ...] = tuple(
    (name, tier, network) for name in NAMES for tier in ACCUMULATOR_TIERS for network in NETWORKS)
"""Every accumulator a statement can show, in the order it shows them."""
OVERRUN_MODES = ("show", "hold")
HOLD_OVERRUN = "accumulator_overrun"
"""The reason a held statement records (Statement.held)."""
EXTRACT_FILE = "accumulators.parquet"
EXTRACT_COLUMNS = ("member_id", "accumulator", "tier", "network", "used")
"""What compose needs of the claims system's accumulators (a row with a `patient_id` is that
patient's own, not on the subscriber's statement); `limit`, `as_of`, `plan_year_start` and
`plan_year_end` are read when present."""

ExtractFigures = dict[str, dict[tuple[str, str, str], dict[str, Any]]]


def column(key: tuple[str, str, str]) -> str:
    """The name of one accumulator in tables: "deductible_family_out"."""
    return "_".join(key)


def extract_name(key: tuple[str, str, str]) -> str:
    """How the extract names an accumulator's figures: "deductible" (individual, in network),
    "family_deductible", "oon_deductible", "oon_family_deductible" (the plan's limit is
    `<that>_limit`, the member file's year to date `ytd_<that>`)."""
    name, tier, network = key
    return "_".join(part for part in ("oon" if network == "out" else "",
                                      "family" if tier == "family" else "", name) if part)


def plan_year(plan: Plan, period_start: date) -> tuple[date, date]:
    """First and last day of the plan year the period falls in: from the plan's start date
    (January 1 when the plan has none), moved back a year while it is after the period."""
    start = plan.plan_year_start or date(period_start.year, 1, 1)
    while start > period_start:
        start = _years_later(start, -1)
    while _years_later(start, 1) <= period_start:
        start = _years_later(start, 1)
    return start, _years_later(start, 1) - timedelta(days=1)


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # February 29
        return day.replace(year=day.year + years, day=28)


def accumulation_network(network: str, no_surprises: bool) -> str:
    return "in" if network == "in" or no_surprises else "out"


def line_sums(lines: Iterable[ClaimLine]) -> dict[tuple[str, str, str], int]:
    """This statement's cost share per accumulator (not-covered amounts count toward none)."""
    sums = dict.fromkeys(KEYS, 0)
    for line in lines:
        network = accumulation_network(line.network, line.no_surprises)
        share = {"deductible": line.deductible,
                 "out_of_pocket": line.deductible + line.copay + line.coinsurance}
        tiers = ("individual", "family") if line.patient_relationship == "self" else ("family",)
        for name, amount in share.items():
            for tier in tiers:
                sums[(name, tier, network)] += amount
    return sums


def year_to_date(member: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    """The member file's year to date before the period: `ytd_deductible`, `ytd_family_deductible`,
    `ytd_oon_deductible`, `ytd_oon_family_deductible` and the same for out_of_pocket (see
    `extract_name`); a family figure the file lacks starts from the individual one (the
    subscriber's own share is part of the family's), any other from 0."""
    out = {}
    for key in KEYS:
        name, tier, network = key
        value = member.get(f"ytd_{extract_name(key)}")
        if value is None and tier == "family":
            value = member.get(f"ytd_{extract_name((name, 'individual', network))}")
        out[key] = int(value or 0)
    return out


def build_accumulators(plan: Plan, member: dict[str, Any], lines: list[ClaimLine], as_of: date,
                       year: tuple[date, date],
                       extract: dict[tuple[str, str, str], dict[str, Any]] | None = None,
                       ) -> list[Accumulator]:
    """The statement's accumulators: the extract's where it has them, computed otherwise; one
    whose limit nobody knows is left off."""
    ytd, sums, extract = year_to_date(member), line_sums(lines), extract or {}
    out = []
    for key in KEYS:
        name, tier, network = key
        given = extract.get(key)
        limit = plan.limit(name, tier, network)
        if given is not None:
            limit = int(given.get("limit") or limit or 0)
            if limit <= 0:
                continue
            start, end = given.get("plan_year_start") or year[0], given.get("plan_year_end") or year[1]
            out.append(Accumulator(name, int(given["used"]), limit, given.get("as_of") or as_of, tier,
                                   network, (start, end), "extract"))
        elif limit > 0:
            out.append(Accumulator(name, ytd[key] + sums[key], limit, as_of, tier, network, year))
    return out


# -- the extract's figures ----------------------------------------------------------------
def read_extract(run_dir: Path, member_ids: pa.Array | pa.ChunkedArray | None = None) -> ExtractFigures:
    """The claims system's accumulators by member (empty when the extract has none)."""
    path = run_dir / EXTRACT_FILE
    if not path.exists():
        return {}
    table = pq.read_table(path)
    if member_ids is not None:
        table = table.filter(pc.is_in(table["member_id"], value_set=pa.array(member_ids, pa.string())))
    out: ExtractFigures = {}
    for row in table.to_pylist():
        key = (row.get("accumulator") or row.get("name"), row["tier"], row["network"])
        if row.get("patient_id"):
            continue
        if key in KEYS and row.get("used") is not None:
            out.setdefault(row["member_id"], {})[key] = row
    return out


# -- the vectorised view -------------------------------------------------------------------
def accumulation_columns(member_ids: pa.Array | pa.ChunkedArray,
                         lines: pa.Table | None) -> dict[str, np.ndarray]:
    """Per member (in `member_ids` order), this period's cost share per accumulator: what
    `line_sums` gives for one statement, from a bucket's lines at once."""
    n = len(member_ids)
    out = {column(key): np.zeros(n, np.int64) for key in KEYS}
    if lines is None or not lines.num_rows:
        return out
    found = pc.index_in(lines["member_id"], value_set=pa.array(member_ids, pa.string()))
    known = np.asarray(pc.is_valid(found).to_numpy(zero_copy_only=False), bool)
    owners = np.asarray(pc.fill_null(found, 0).to_numpy(zero_copy_only=False), np.int64)
    network = np.asarray(pc.equal(lines["network"], "in").to_numpy(zero_copy_only=False), bool)
    if "no_surprises" in lines.column_names:
        network |= np.asarray(pc.fill_null(lines["no_surprises"], False).to_numpy(zero_copy_only=False), bool)
    own = np.asarray(pc.equal(lines["patient_relationship"], "self").to_numpy(zero_copy_only=False), bool)
    deductible = lines["deductible"].to_numpy()
    share = {"deductible": deductible,
             "out_of_pocket": deductible + lines["copay"].to_numpy() + lines["coinsurance"].to_numpy()}
    for key in KEYS:
        name, tier, net = key
        chosen = known & (network if net == "in" else ~network)
        if tier == "individual":
            chosen &= own
        np.add.at(out[column(key)], owners[chosen], share[name][chosen])
    return out


LINE_COLUMNS = ["member_id", "network", "patient_relationship", "deductible", "copay", "coinsurance"]
"""What the vectorised view reads of the lines (plus `no_surprises` when the lines have it)."""


def overruns(member: pa.Table, plans: dict[str, Plan], plan_at: np.ndarray,
             period_lines: dict[str, np.ndarray], extract: ExtractFigures) -> np.ndarray:
    """True where any of a member's accumulators is above its limit (a patient's own statement
    shows none, so it never overruns)."""
    rows = member.select([name for name in member.column_names if name.startswith("ytd_")]
                         + ["member_id"]).to_pylist()
    plan_list = list(plans.values())
    flagged = np.zeros(member.num_rows, bool)
    recipients = (member["recipient"].to_pylist() if "recipient" in member.column_names
                  else [None] * member.num_rows)
    for index, row in enumerate(rows):
        if recipients[index]:
            continue
        plan = plan_list[plan_at[index]]
        ytd, given = year_to_date(row), extract.get(row["member_id"], {})
        for key in KEYS:
            limit = plan.limit(*key)
            if key in given:
                used, limit = int(given[key]["used"]), int(given[key].get("limit") or limit or 0)
            else:
                used = ytd[key] + int(period_lines[column(key)][index])
            if limit > 0 and used > limit:
                flagged[index] = True
                break
    return flagged
