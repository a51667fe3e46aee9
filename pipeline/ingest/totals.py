"""What ingest derives from the accepted lines for compose: a fingerprint per line, and per
member the totals of its lines (members.parquet), so compose need not read a claim line."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import fold_hashes, fold_marked, fold_numbers, mixed_with, sums_by_group
from pipeline.storage import (
    ACCRUED_COLUMNS,
    EXTRACT_MONEY_COLUMNS,
    LINE_TOTALS,
    MONEY_COLUMNS,
    as_array,
    as_integers,
    hash64,
    hash_strings,
    mix64,
)

__all__ = ["line_hashes", "line_totals"]

_HASHED_TEXT = ("claim_id", "patient_name", "patient_relationship", "provider_name", "provider_npi",
                "network", "service_code", "service_description", "status", "reason_code")
_HASHED_NUMBERS = ("line_no", "service_date", "received_date", *EXTRACT_MONEY_COLUMNS)
_LATER_TEXT = ("adjustments", "payee", "payment_ref", "original_claim_id")
_LATER_NUMBERS = ("denied", "pending", "paid_date")
"""Columns added in schema 2026.3: folded in only where a line has a value, so a line without
them keeps the fingerprint earlier releases gave it (a re-run would otherwise reissue every
statement as a new version)."""


def line_hashes(lines: pa.Table, known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A 64-bit fingerprint per line over everything the statement prints about it (`known`:
    hash_strings of some columns, already computed)."""
    h = np.full(lines.num_rows, np.uint64(0x2545F4914F6CDD1D), np.uint64)
    for name in _HASHED_TEXT:
        column = as_array(lines[name]) if lines[name].num_chunks != 1 else lines[name].chunk(0)
        if known and name in known:
            fold_numbers(h, known[name])
        elif pa.types.is_dictionary(column.type) and not column.null_count:
            fold_hashes(h, hash64(column.dictionary), column.indices.to_numpy())
        else:
            fold_numbers(h, hash_strings(column))
    for name in _HASHED_NUMBERS:
        fold_numbers(h, as_integers(lines[name]))
    later = [name for name in (*_LATER_TEXT, *_LATER_NUMBERS) if name in lines.column_names]
    if not later:
        return mix64(h)
    extra = np.zeros(lines.num_rows, np.uint64)
    for name in later:
        if name in _LATER_TEXT:
            fold_marked(extra, _text_hashes(lines[name]), _blank(), np.uint64(len(name)))
        else:
            fold_marked(extra, as_integers(lines[name]), np.uint64(0), np.uint64(len(name)))
    return mixed_with(h, extra)  # type: ignore[no-any-return]


@cache
def _blank() -> np.uint64:
    """The hash of "": a text column's value where a line has none."""
    return hash64(pa.array([""], pa.string()))[0]  # type: ignore[no-any-return]


def _text_hashes(column: pa.ChunkedArray) -> np.ndarray:
    """hash_strings of a text column (null as ""); an adjustments list is nearly one value per
    line, so it is hashed straight, not through a dictionary that would save nothing."""
    column = pc.fill_null(column, "") if column.null_count else column
    if column.type == pa.string() and column.num_chunks == 1:
        return hash64(column.chunk(0))
    return hash_strings(column)


def line_totals(lines: pa.Table, owners: np.ndarray, members: int) -> pa.Table:
    """LINE_TOTALS of a bucket's lines for each of its `members` (owners: each line's member
    row), in any order: exact integer sums (the 64-bit hashes wrap, like a uint64 sum); a member
    without lines has a count of 0."""

    def total(values: np.ndarray) -> np.ndarray:
        return sums_by_group(owners, values, members)  # type: ignore[no-any-return]

    adverse = pc.fill_null(lines["adverse"], False).to_numpy(zero_copy_only=False)
    received = as_integers(lines["received_date"])
    earliest = np.full(members, np.iinfo(np.int32).max, np.int64)
    np.minimum.at(earliest, owners[adverse], received[adverse])
    no_surprises = pc.fill_null(lines["no_surprises"], False).to_numpy(zero_copy_only=False)
    money = {name: as_integers(lines[name]) for name in MONEY_COLUMNS}
    columns = {
        "line_count": pa.array(np.bincount(owners, minlength=members), pa.int32()),
        **{f"lines_{name}": pa.array(total(money[name])) for name in MONEY_COLUMNS},
        "lines_hash": pa.array(total(as_integers(lines["line_hash"]))),
        "lines_adverse": pa.array(total(adverse.astype(np.int64)) > 0),
        "lines_no_surprises": pa.array(total(no_surprises.astype(np.int64)) > 0),
        "earliest_adverse_received": pc.cast(pa.array(earliest.astype(np.int32),
                                                      mask=earliest == np.iinfo(np.int32).max), pa.date32()),
    }
    columns.update(accrued(lines, owners, members, money, no_surprises))
    return pa.table(columns, schema=LINE_TOTALS)


def accrued(lines: pa.Table, owners: np.ndarray, members: int, money: dict[str, np.ndarray],
            no_surprises: np.ndarray) -> dict[str, pa.Array]:
    """ACCRUED_COLUMNS: what each member's lines add to each accumulator this period (the
    individual tier counts the subscriber's own lines, the family tier every line; a No
    Surprises-protected line counts in network, as its cost sharing does). `money`: the lines'
    amounts (as_integers), `no_surprises` their flags."""
    in_network = _equals(lines["network"], "in") | np.asarray(no_surprises, bool)
    own = _equals(lines["patient_relationship"], "self")
    deductible = money["deductible"].astype(np.int64)
    share = {"deductible": deductible,
             "out_of_pocket": deductible + money["copay"] + money["coinsurance"]}
    # one pass per amount: each member's sums by (network, own line), 4 per member
    groups = owners.astype(np.int64) * 4 + in_network.astype(np.int64) * 2 + own.astype(np.int64)
    found = {}
    for name, values in share.items():
        table = sums_by_group(groups, values, members * 4).reshape(members, 4)
        for network, at in (("in", 2), ("out", 0)):
            found[name, "individual", network] = table[:, at + 1]  # the subscriber's own lines
            found[name, "family", network] = table[:, at] + table[:, at + 1]  # every line
    return {column: pa.array(np.ascontiguousarray(found[key]), pa.int64())
            for key, column in ACCRUED_COLUMNS.items()}


def _equals(column: pa.ChunkedArray | pa.Array, value: str) -> np.ndarray:
    """column == value per row (null: False), through the dictionary when it is one."""
    column = as_array(column)
    if pa.types.is_dictionary(column.type):  # a null index reads the False after the dictionary
        hit = pc.fill_null(pc.equal(column.dictionary, value), False).to_numpy(zero_copy_only=False)
        hit = np.append(hit, False)
        return hit[pc.fill_null(column.indices, len(column.dictionary)).to_numpy(zero_copy_only=False)]
    return np.asarray(pc.fill_null(pc.equal(column, value), False).to_numpy(zero_copy_only=False), bool)

