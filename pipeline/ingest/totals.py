"""What ingest derives from the accepted lines for compose: a fingerprint per line, and per
member the totals of its lines (members.parquet), so compose need not read a claim line."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import fold_hashes, fold_numbers, sums_by_group
from pipeline.storage import (
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
    if later:
        extra = np.zeros(lines.num_rows, np.uint64)
        for name in later:
            values = (hash_strings(pc.fill_null(lines[name], "")) if name in _LATER_TEXT
                      else as_integers(lines[name]).astype(np.int64).view(np.uint64))
            blank = hash64(pa.array([""]))[0] if name in _LATER_TEXT else np.uint64(0)
            folded = mix64(values ^ np.uint64(len(name)))
            extra = mix64(extra ^ np.where(values == blank, np.uint64(0), folded))
        h = np.where(extra == 0, h, mix64(h ^ extra))
    return mix64(h)


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
    columns = {
        "line_count": pa.array(np.bincount(owners, minlength=members), pa.int32()),
        **{f"lines_{name}": pa.array(total(as_integers(lines[name]))) for name in MONEY_COLUMNS},
        "lines_hash": pa.array(total(as_integers(lines["line_hash"]))),
        "lines_adverse": pa.array(total(adverse.astype(np.int64)) > 0),
        "lines_no_surprises": pa.array(total(no_surprises.astype(np.int64)) > 0),
        "earliest_adverse_received": pc.cast(pa.array(earliest.astype(np.int32),
                                                      mask=earliest == np.iinfo(np.int32).max), pa.date32()),
    }
    return pa.table(columns, schema=LINE_TOTALS)

