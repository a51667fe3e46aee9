"""A claim line's adjustments: the extract's `adjustments` list checked against the reason
tables and the line's amounts, and the canonical money split it implies.

The extract gives dollars, `CO-45:120.00;PR-2:20.00;CO-50:300.00:N115` (group-CARC:amount[:RARC]);
the canonical line keeps cents in the same shape, `CO-45:12000;PR-2:2000;CO-50:30000:N115`
(`pipeline.model.parse_adjustments` reads it back). Where each amount belongs follows the
reason table's `kind` (`ReasonTable.booked_as`): PR-1/PR-2/PR-3 deductible, coinsurance and
copay, other PR not covered, contractual CO/PI/OA the discount, adverse CO/PI/OA `denied`,
informational (OA-23) nowhere, since it explains the other payer's part.

The extract's `discount` column holds every write-off, denials included. With an adjustments
list, the canonical discount is its contractual part and `denied` the rest; without one, a
denied or partial line whose single reason code is an adverse CO/PI/OA code has its discount
booked as denied, and the list is derived from the amounts (PR-1, PR-2, PR-3 for the cost
share, the reason code for the amount it explains), so every line has one.

Everything is compiled over a batch: one pass (`read_adjustments`) splits the lists, looks each
entry up in the tables, sums it per row and writes the canonical text; no Python runs per line
or per entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import (
    ADJUSTMENT_ADVERSE,
    ADJUSTMENT_BAD_GROUP,
    ADJUSTMENT_REASON_LISTED,
    ADJUSTMENT_UNKNOWN_CODE,
    ADJUSTMENT_UNKNOWN_REMARK,
    adjustments_array,
    read_adjustments,
    string_buffers,
    text_key,
)
from pipeline.model import ADJUSTMENT_GROUPS
from pipeline.reason_codes import reason_table, remark_table
from pipeline.storage import as_array

__all__ = ["BOOKED", "Parsed", "derived_adjustments", "parse_extract_adjustments"]

BOOKED = ("deductible", "coinsurance", "copay", "not_covered", "discount", "denied", "informational")
"""Where an adjustment's amount belongs (`informational`: nowhere, it explains another column)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A batch's adjustment lists, per row: what is wrong with them and what they add up to."""

    bad_group: np.ndarray  # a group code other than PR, CO, OA, PI
    unknown_code: np.ndarray  # a code the reason table lacks
    unknown_remark: np.ndarray  # a RARC the remark table lacks
    sums: dict[str, np.ndarray]  # BOOKED name -> cents per row
    adverse: np.ndarray  # an adverse adjustment (a denial or reduction)
    reason_listed: np.ndarray  # the row's reason code is one of its adjustments' codes
    canonical: pa.Array  # the canonical text in cents ("" without a list)


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = as_array(values)
    return pc.cast(values, pa.string()) if not pa.types.is_string(values.type) else values


@dataclass(frozen=True, slots=True)
class _Lookup:
    """The reason and remark tables as sorted text keys (column_kernels.text_key), for the kernels."""

    keys: np.ndarray  # sorted code keys
    at: np.ndarray  # each sorted key's index in the table's codes
    booked: np.ndarray  # per code: its BOOKED index
    adverse: np.ndarray  # per code: an adverse kind
    remark_keys: np.ndarray
    remark_at: np.ndarray
    groups: np.ndarray  # the group codes' keys


@cache
def _lookup(version: str) -> _Lookup:
    table, remarks = reason_table(), remark_table()
    codes = table.codes
    keys = np.array([text_key(c) for c in codes], np.uint64)
    order = np.argsort(keys)
    remark_keys = np.array([text_key(c) for c in remarks.codes], np.uint64)
    remark_order = np.argsort(remark_keys)
    return _Lookup(keys[order], order,
                   np.array([BOOKED.index(table.booked_as(c) or "informational") for c in codes], np.int64),
                   np.array([table.kind(c) == "adverse" for c in codes], bool),
                   remark_keys[remark_order], remark_order,
                   np.array([text_key(g) for g in ADJUSTMENT_GROUPS], np.uint64))


def parse_extract_adjustments(values: pa.Array, rows: np.ndarray, reason: pa.Array) -> Parsed:
    """The adjustments of the given rows (those with a list of the schema's shape, so every entry
    is `GG-CARC:amount[:RARC]`) of a batch; `reason`: the batch's reason codes."""
    n = len(values)
    empty = pa.array([""] * n, pa.string())
    zeros = {name: np.zeros(n, np.int64) for name in BOOKED}
    none = np.zeros(n, bool)
    if not len(rows):
        return Parsed(none, none, none, zeros, none, none, empty)
    lookup = _lookup(reason_table().version)
    text = _text(values)
    flags, table, offsets, data = read_adjustments(
        *string_buffers(text), rows.astype(np.int64), lookup.keys, lookup.at, lookup.booked, lookup.adverse,
        lookup.remark_keys, lookup.remark_at, lookup.groups, _row_keys(reason), len(BOOKED))
    sums = {name: table[at * n:(at + 1) * n] for at, name in enumerate(BOOKED)}
    canonical = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))

    def flagged(bit: int) -> np.ndarray:
        return (flags & bit) != 0

    return Parsed(flagged(ADJUSTMENT_BAD_GROUP), flagged(ADJUSTMENT_UNKNOWN_CODE),
                  flagged(ADJUSTMENT_UNKNOWN_REMARK), sums, flagged(ADJUSTMENT_ADVERSE),
                  flagged(ADJUSTMENT_REASON_LISTED), canonical)


def _row_keys(values: pa.Array) -> np.ndarray:
    """text_key of each row's value (a reason code), through its dictionary when it has one."""
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    distinct = np.array([text_key(v) if v and len(v) <= 8 and v.isascii() else 0
                         for v in values.dictionary.to_pylist()], np.uint64)
    return distinct[values.indices.to_numpy(zero_copy_only=False)]  # type: ignore[no-any-return]


def derived_adjustments(reason: pa.Array, booked: dict[str, np.ndarray]) -> pa.Array:
    """The canonical list of a line delivered without one, from its amounts: PR-1, PR-2 and PR-3
    for its cost share, and its reason code for the amount that code explains (not covered for
    a PR code, the discount for a contractual one, denied for an adverse CO/PI/OA one); an amount
    no code explains is left out."""
    table = reason_table()
    n = len(reason)
    encoded = pc.dictionary_encode(_text(reason))
    distinct = encoded.dictionary.to_pylist()
    reason_at = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    explains = [table.booked_as(c) if c in table.rows else None for c in distinct]
    amount = np.zeros(n, np.int64)
    for name in ("not_covered", "discount", "denied"):
        hit = np.array([e == name for e in explains], bool)
        if hit.any():
            amount = np.where(hit[reason_at], booked[name], amount)
    names = pa.array(["PR-1", "PR-2", "PR-3", *distinct], pa.string())
    codes = np.column_stack([np.zeros(n, np.int64), np.ones(n, np.int64), np.full(n, 2, np.int64),
                             reason_at + 3])
    amounts = np.column_stack([booked["deductible"], booked["coinsurance"], booked["copay"], amount])
    return adjustments_array(np.arange(0, 4 * n + 1, 4), codes.ravel(), amounts.ravel(), np.full(4 * n, -1),
                             names, pa.array([], pa.string()), skip_empty=True)
