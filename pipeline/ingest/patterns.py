"""Schema patterns checked on Arrow string arrays, fast.

A regular expression costs several milliseconds per column of a batch, and ingest checks
a dozen columns per batch: most of its validation time went there. The schema's patterns are
nearly all of two simple shapes, which `column_kernels` checks straight from the Arrow bytes:

- `^[first][rest]{m,n}$` or `^[rest]{m,n}$`: byte classes and a length range (identifiers,
  codes, NPIs, line numbers);
- the money pattern `^\\d{1,12}(\\.\\d{1,2})?$`;
- the adjustments list (`column_kernels.ADJUSTMENTS_PATTERN`), a value per line, nearly all
  distinct: the engine cost more there than every other pattern together.

Any other pattern goes to the regular-expression engine, once per distinct value (the
column's dictionary), so repeated values are matched once. Tests check every path against
the regular-expression engine on random strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import (
    ADJUSTMENTS_PATTERN,
    CENTS_OK,
    adjustments_shapes,
    dollars_to_cents,
    match_byte_classes,
    string_buffers,
)

__all__ = ["ADJUSTMENTS_PATTERN", "matches", "money_shape"]

MONEY_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"
_CLASS = r"(\[(?:\\.|[^\]\\])+\]|\\d)"
_SIMPLE = re.compile(rf"^\^(?:{_CLASS}(?!\{{))?{_CLASS}\{{(\d+)(?:,(\d+))?\}}\$$")


@dataclass(frozen=True, slots=True)
class _ByteClasses:
    first: np.ndarray | None  # 256 booleans: allowed first byte (None: the same as rest)
    rest: np.ndarray  # 256 booleans: allowed bytes after the first
    low: int  # length range of the repeated part
    high: int


def _class_table(text: str) -> np.ndarray:
    """`\\d` or a bracket class of ASCII characters and ranges, as a 256-entry lookup table."""
    table = np.zeros(256, bool)
    if text == r"\d":
        table[ord("0"):ord("9") + 1] = True
        return table
    body = text[1:-1]
    if body.startswith("^"):
        raise ValueError("negated classes are not simple")
    chars: list[str] = []
    index = 0
    while index < len(body):
        if body[index] == "\\":
            escaped = body[index + 1]
            if escaped == "d":
                chars.extend("0123456789")
            elif escaped.isalnum():
                raise ValueError(f"escape \\{escaped} is not simple")
            else:
                chars.append(escaped)
            index += 2
        elif index + 2 < len(body) and body[index + 1] == "-":
            chars.extend(chr(c) for c in range(ord(body[index]), ord(body[index + 2]) + 1))
            index += 3
        else:
            chars.append(body[index])
            index += 1
    for char in chars:
        if ord(char) > 127:
            raise ValueError("non-ASCII classes are not simple")
        table[ord(char)] = True
    return table


@cache
def _compile(pattern: str) -> _ByteClasses | None:
    """The byte classes of a simple pattern, or None for anything else."""
    found = _SIMPLE.match(pattern)
    if found is None:
        return None
    first, rest, low, high = found.groups()
    try:
        return _ByteClasses(_class_table(first) if first else None, _class_table(rest),
                            int(low), int(high) if high is not None else int(low))
    except ValueError:
        return None


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """A null-free string array, or None when the fast paths do not apply."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if values.type != pa.string() or values.null_count:
        return None
    return values


def _match_classes(values: pa.Array, classes: _ByteClasses) -> np.ndarray:
    first = classes.first if classes.first is not None else _NO_TABLE
    return match_byte_classes(*string_buffers(values), first, classes.rest,  # type: ignore[no-any-return]
                              classes.low, classes.high)


def matches(values: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    """One boolean per value: does it match the anchored pattern (as RE2 would say)?"""
    plain = _plain(values)
    if plain is not None:
        if pattern == MONEY_PATTERN:
            return money_shape(plain)
        if pattern == ADJUSTMENTS_PATTERN:
            return adjustments_shapes(*string_buffers(plain))  # type: ignore[no-any-return]
        classes = _compile(pattern)
        if classes is not None:
            return _match_classes(plain, classes)
    encoded = pc.dictionary_encode(values if not isinstance(values, pa.ChunkedArray)
                                   else values.combine_chunks())
    distinct = pc.fill_null(pc.match_substring_regex(encoded.dictionary, pattern), False)
    found = pc.take(distinct, encoded.indices)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def money_shape(values: pa.Array) -> np.ndarray:
    """`^\\d{1,12}(\\.\\d{1,2})?$` per value: digits, at most one point, one or two decimals."""
    return dollars_to_cents(*string_buffers(values))[1] == CENTS_OK  # type: ignore[no-any-return]


_NO_TABLE = np.zeros(0, bool)
