"""Year-to-date accumulators: deductible and out-of-pocket, individual and family, in and out of
network, labelled with the plan year, and never capped.

The claims system's figures are the source of truth: when the extract brings them
(`accumulators.parquet`, one row per member, accumulator, tier and network) compose shows them
as they are (source "extract"). Otherwise compose computes them: the member file's year to
date before the period plus the cost share of this statement's lines, by network (a No
Surprises-protected line counts in network, as its cost sharing does); the individual tier
counts the subscriber's own lines, the family tier every line of the statement.

Two views compute the same figures: `build_accumulators` for one statement from its line objects
(render), and `figures` for a bucket's members at once (the compose stage) from the period sums
ingest keeps with each member (storage.ACCRUED_COLUMNS) and the claims system's rows joined by
member id: numpy over members and the plans' limits, no claim line read, no Python per member.

A figure above its limit is not cut to the limit: it is an overrun, a data problem for the
claims system. Compose flags it (`accumulator_overrun` in the summary, counted by the compose
stage by statement id) and, by the `accumulator_overrun` setting, the statement either shows the
true figures with a note or is held (`HOLD_OVERRUN`, see `pipeline.render.StatementHeld`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.column_kernels import sums_by_group
from pipeline.model import ACCUMULATOR_KEYS, Accumulator, ClaimLine, Plan
from pipeline.storage import ACCRUED_COLUMNS, as_array, as_integers, as_uint64, buckets_of, mix64

OVERRUN_MODES = ("show", "hold")
HOLD_OVERRUN = "accumulator_overrun"
"""The reason a held statement records (Statement.held)."""
EXTRACT_FILE = "accumulators.parquet"
EXTRACT_COLUMNS = ("member_id", "accumulator", "tier", "network", "used")
"""What compose needs of the claims system's accumulators (a row with a `patient_id` is that
patient's own, not on the subscriber's statement); `limit`, `as_of`, `plan_year_start` and
`plan_year_end` are read when present."""

ExtractFigures = dict[str, dict[tuple[str, str, str], dict[str, Any]]]


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
    sums = dict.fromkeys(ACCUMULATOR_KEYS, 0)
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
    for key in ACCUMULATOR_KEYS:
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
    for key in ACCUMULATOR_KEYS:
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
def read_extract_table(run_dir: Path) -> pa.Table | None:
    """The claims system's accumulators a statement shows: the file's rows less a patient's own
    and those without `used`, with `key` (the row's accumulator's index in ACCUMULATOR_KEYS);
    None when the extract has none."""
    path = run_dir / EXTRACT_FILE
    if not path.exists():
        return None
    table = pq.read_table(path)
    name = table["accumulator"] if "accumulator" in table.column_names else table["name"]
    joined = pc.binary_join_element_wise(pc.cast(name, pa.string()), pc.cast(table["tier"], pa.string()),
                                         pc.cast(table["network"], pa.string()), "|")
    key = pc.index_in(joined, value_set=pa.array(["|".join(k) for k in ACCUMULATOR_KEYS], pa.string()))
    keep = pc.and_(pc.is_valid(key), pc.is_valid(table["used"]))
    if "patient_id" in table.column_names:  # a patient's own figure is not on the subscriber's statement
        keep = pc.and_(keep, pc.invert(pc.fill_null(pc.not_equal(table["patient_id"], ""), False)))
    table = table.append_column("key", pc.cast(key, pa.int8())).filter(keep)
    return table if table.num_rows else None


def read_extract(run_dir: Path) -> ExtractFigures:
    """The claims system's accumulators by member, for one statement at a time (empty when the
    extract has none)."""
    return extract_figures(read_extract_table(run_dir))


def extract_figures(table: pa.Table | None) -> ExtractFigures:
    """read_extract_table's rows by member and accumulator."""
    out: ExtractFigures = {}
    for row in [] if table is None else table.to_pylist():
        out.setdefault(row["member_id"], {})[ACCUMULATOR_KEYS[row["key"]]] = row
    return out


class BucketFigures:
    """read_extract_table's rows bucket by bucket (a member's figures are in the member's
    bucket, storage.buckets_of): a bucket's summary joins only its own rows."""

    def __init__(self, table: pa.Table | None, buckets: int) -> None:
        self._parts: dict[int, pa.Table] = {}
        self._none = None if table is None else table.slice(0, 0)
        if table is None:
            return
        placed = buckets_of(table["member_id"], buckets)
        order = np.argsort(placed, kind="stable")
        table, placed = table.take(pa.array(order)), placed[order]
        found, starts, counts = np.unique(placed, return_index=True, return_counts=True)
        self._parts = {int(b): table.slice(int(at), int(count))
                       for b, at, count in zip(found, starts, counts, strict=True)}

    def __call__(self, bucket: int) -> pa.Table | None:
        """The bucket's rows (an empty table when it has none), None when the extract has none."""
        return self._parts.get(bucket, self._none)


# -- the vectorised view -------------------------------------------------------------------
def period_accrued(member: pa.Table) -> dict[tuple[str, str, str], np.ndarray]:
    """Per member, this period's cost share per accumulator (what `line_sums` gives for one
    statement): ingest's line totals (storage.ACCRUED_COLUMNS). members.parquet of a run ingested
    before them has no tiers: every line then counts as the subscriber's own, in network."""
    if all(name in member.column_names for name in ACCRUED_COLUMNS.values()):
        return {key: as_integers(member[name]).astype(np.int64) for key, name in ACCRUED_COLUMNS.items()}
    deductible = as_integers(member["lines_deductible"]).astype(np.int64)
    share = {"deductible": deductible,
             "out_of_pocket": deductible + as_integers(member["lines_copay"])
             + as_integers(member["lines_coinsurance"])}
    none = np.zeros(member.num_rows, np.int64)
    return {key: share[key[0]] if key[2] == "in" else none for key in ACCUMULATOR_KEYS}


def year_to_date_columns(member: pa.Table) -> dict[tuple[str, str, str], np.ndarray]:
    """year_to_date, per member: a family figure the file lacks starts from the individual one."""

    def given(key: tuple[str, str, str]) -> pa.ChunkedArray | None:
        name = f"ytd_{extract_name(key)}"
        return member[name] if name in member.column_names else None

    out = {}
    for key in ACCUMULATOR_KEYS:
        name, tier, network = key
        value = given(key)
        if tier == "family":
            own = given((name, "individual", network))
            value = own if value is None else value if own is None else pc.coalesce(value, own)
        out[key] = (np.zeros(member.num_rows, np.int64) if value is None
                    else as_integers(value).astype(np.int64))
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    """Every member's accumulators as a statement shows them (used, limit, by ACCUMULATOR_KEYS)."""

    used: dict[tuple[str, str, str], np.ndarray]
    limit: dict[tuple[str, str, str], np.ndarray]
    overrun: np.ndarray  # any accumulator above its limit (never on a patient's own statement)
    extract_hash: np.ndarray | None  # a multiset hash of the member's extract rows; None: no extract


def figures(member: pa.Table, plans: dict[str, Plan], plan_at: np.ndarray,
            extract: pa.Table | None) -> Figures:
    """build_accumulators over a bucket's members at once: the extract's figure where it has
    one (its limit, or the plan's when it gives none), else the year so far plus this period's
    lines (period_accrued); whether any is above its limit; and the extract's rows of each
    member as content (joined by member id once, with Arrow)."""
    plan_list = list(plans.values())
    ytd, accrued = year_to_date_columns(member), period_accrued(member)
    rows, owners = _joined(member["member_id"], extract)
    given_used, given_limit, given = _given(member.num_rows, extract, rows, owners)
    used, limit = {}, {}
    overrun = np.zeros(member.num_rows, bool)
    for index, key in enumerate(ACCUMULATOR_KEYS):
        plan_limit = np.array([plan.limit(*key) for plan in plan_list], np.int64)[plan_at]
        used[key] = np.where(given[index], given_used[index], ytd[key] + accrued[key])
        limit[key] = np.where(given[index] & (given_limit[index] != 0), given_limit[index], plan_limit)
        overrun |= (limit[key] > 0) & (used[key] > limit[key])
    if "recipient" in member.column_names:  # a patient's own statement shows no accumulators
        overrun &= ~np.asarray(pc.fill_null(pc.not_equal(member["recipient"], ""), False).to_numpy(
            zero_copy_only=False), bool)
    content = None if extract is None else _extract_hashes(member.num_rows, extract, rows, owners)
    return Figures(used, limit, overrun, content)


def _joined(member_ids: pa.ChunkedArray, extract: pa.Table | None) -> tuple[np.ndarray, np.ndarray]:
    """The extract rows of these members, and each one's member row."""
    if extract is None or not extract.num_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    found = pc.index_in(extract["member_id"], value_set=as_array(member_ids))
    rows = np.flatnonzero(pc.is_valid(found).to_numpy(zero_copy_only=False))
    return rows, np.ascontiguousarray(as_integers(found)[rows], np.int32)


def _given(members: int, extract: pa.Table | None, rows: np.ndarray,
           owners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The extract's used and limit (0: none given) per ACCUMULATOR_KEYS index and member, and
    where it gives one."""
    shape = (len(ACCUMULATOR_KEYS), members)
    used, limit, given = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, bool)
    if extract is None or not len(rows):
        return used, limit, given
    at = (as_integers(extract["key"])[rows].astype(np.int64), owners)
    used[at] = as_integers(extract["used"])[rows]
    if "limit" in extract.column_names:
        limit[at] = as_integers(extract["limit"])[rows]
    given[at] = True
    return used, limit, given


_FIGURE_COLUMNS = ("used", "limit", "as_of", "plan_year_start", "plan_year_end")
"""What a statement prints of an extract row, folded into the content hash."""


def _extract_hashes(members: int, extract: pa.Table, rows: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Per member, a multiset hash (a wrapping sum) of its extract rows' figures: 0 without any."""
    if not len(rows):
        return np.zeros(members, np.uint64)
    h = mix64(as_integers(extract["key"])[rows].astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    for name in _FIGURE_COLUMNS:
        if name in extract.column_names:
            h = mix64(h ^ as_uint64(extract[name])[rows] ^ np.uint64(len(name)))
    return sums_by_group(owners, np.ascontiguousarray(h), members)  # type: ignore[no-any-return]
