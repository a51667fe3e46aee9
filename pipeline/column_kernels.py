"""Loops over Arrow columns, compiled with numba: hashes, amounts, dates, codes, group sums.
The hashing kernels live in `hash_kernels` and the adjustments-list ones in `adjustment_kernels`;
this module re-exports both, and `load_kernels` loads every one.

Validation touches every byte of a million-line extract several times over; done with numpy
it costs a pass over memory per step (a cast, a mask, a gather), so checking cost several times
the CSV parse itself. These kernels read each value once, straight from the Arrow offsets and
data buffers, and release the GIL, so the checking threads run on both cores.

A kernel over text takes (offsets, data) from `string_buffers`: a value is
data[offsets[i]:offsets[i+1]]. The others take numpy views of Arrow columns.
Tests check each one against the regular-expression engine, Python's own parsing and fixed
hash values (hashes decide shards and statement versions, so they must never change).
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from pipeline.adjustment_kernels import (
    ADJUSTMENT_ADVERSE,
    ADJUSTMENT_BAD_GROUP,
    ADJUSTMENT_REASON_LISTED,
    ADJUSTMENT_UNKNOWN_CODE,
    ADJUSTMENT_UNKNOWN_REMARK,
    ADJUSTMENTS_PATTERN,
    adjustments_shapes,
    join_adjustments,
    read_adjustments,
    split_adjustments,
    tally_adjustments,
    text_key,
)
from pipeline.hash_kernels import (
    CHECK_SEED,
    fold_hashes,
    fold_marked,
    fold_numbers,
    hash_values,
    mixed_with,
    seeded_hashes,
)

__all__ = ["ADJUSTMENTS_PATTERN", "ADJUSTMENT_ADVERSE", "ADJUSTMENT_BAD_GROUP",
           "ADJUSTMENT_REASON_LISTED", "ADJUSTMENT_UNKNOWN_CODE", "ADJUSTMENT_UNKNOWN_REMARK",
           "CENTS_EMPTY", "CENTS_MALFORMED", "CENTS_NEGATIVE", "CENTS_OK", "CHECK_SEED",
           "EMAIL_PATTERN", "adjustments_array", "adjustments_shapes", "civil_dates", "domain_array",
           "dollars_to_cents", "edges_may_need_trim", "email_domains", "email_shapes", "fold_hashes",
           "fold_marked", "fold_numbers", "hash_values", "join_adjustments", "load_kernels",
           "match_byte_classes", "mixed_with", "read_adjustments", "seeded_hashes", "split_adjustments",
           "string_buffers", "sums_by_group", "tally_adjustments", "text_key"]

CENTS_OK, CENTS_EMPTY, CENTS_MALFORMED, CENTS_NEGATIVE = 0, 1, 2, 3
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
"""What email_shapes accepts (tests hold it to the regular-expression engine)."""
_EMPTY = np.zeros(1, np.uint8)


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array, without copying; a null reads as its (empty) span."""
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1, offset=values.offset * 4)
    data = values.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else _EMPTY)


@numba.njit(nogil=True, cache=True)
def dollars_to_cents(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer cents of `^\\d{1,12}(\\.\\d{1,2})?$` values, and a code per value:
    CENTS_OK, CENTS_EMPTY, CENTS_NEGATIVE (a leading minus) or CENTS_MALFORMED (cents then 0).
    Every byte is read, without an early exit: fewer branches, faster on clean data."""
    n = len(offsets) - 1
    cents = np.zeros(n, np.int64)
    codes = np.zeros(n, np.int8)
    for i in range(n):
        start, end = offsets[i], offsets[i + 1]
        if end == start:
            codes[i] = CENTS_EMPTY
            continue
        if end - start >= 4 and data[end - 3] == 46:
            point, scale = end - 3, 1
        elif end - start >= 3 and data[end - 2] == 46:
            point, scale = end - 2, 10
        else:
            point, scale = end, 100
        good = 1 <= point - start <= 12
        value = 0
        for k in range(start, end):
            if k != point:
                digit = int(data[k]) - 48
                good &= 0 <= digit <= 9
                value = value * 10 + digit
        if good:
            cents[i] = value * scale
        else:
            codes[i] = CENTS_NEGATIVE if data[start] == 45 else CENTS_MALFORMED
    return cents, codes


def _year_starts() -> np.ndarray:
    """Days from 1970-01-01 to 1 January of each year 0..9999 (proleptic Gregorian)."""
    years = np.arange(10000, dtype=np.int64) - 1  # days before year y: whole years 0..y-1
    before = 365 * (years + 1) + (years // 4) - (years // 100) + (years // 400) + 1  # year 0 is a leap year
    return (before - before[1970]).astype(np.int64)


_YEAR_START = _year_starts()
_MONTH_START = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], np.int64)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


@numba.njit(nogil=True, cache=True)
def civil_dates(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of YYYY-MM-DD values that are real calendar days (no 02-30), and
    whether each value is one (tables of year and month starts: no division per value)."""
    n = len(offsets) - 1
    days = np.zeros(n, np.int32)
    real = np.zeros(n, np.bool_)
    for i in range(n):
        start = offsets[i]
        if offsets[i + 1] - start != 10 or data[start + 4] != 45 or data[start + 7] != 45:
            continue
        year = _digits(data, start, 4)
        month = _digits(data, start + 5, 2)
        day = _digits(data, start + 8, 2)
        if year < 0 or month < 1 or month > 12 or day < 1:
            continue
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if day > _MONTH_DAYS[month] + (1 if leap and month == 2 else 0):
            continue
        days[i] = _YEAR_START[year] + _MONTH_START[month] + (1 if leap and month > 2 else 0) + day - 1
        real[i] = True
    return days, real


@numba.njit(nogil=True, cache=True, inline="always")
def _digits(data: np.ndarray, start: int, count: int) -> int:
    """The number written by `count` ASCII digits from `start`, or -1 if one is not a digit."""
    number = 0
    for k in range(start, start + count):
        digit = int(data[k]) - 48
        if digit < 0 or digit > 9:
            return -1
        number = number * 10 + digit
    return number


@numba.njit(nogil=True, cache=True)
def match_byte_classes(offsets: np.ndarray, data: np.ndarray, first: np.ndarray, rest: np.ndarray,
                       low: int, high: int) -> np.ndarray:
    """`^[first][rest]{low,high}$` per value (first: 256 booleans, or empty for `^[rest]{low,high}$`)."""
    n = len(offsets) - 1
    out = np.zeros(n, np.bool_)
    shift = 1 if len(first) else 0
    for i in range(n):
        start, end = offsets[i], offsets[i + 1]
        length = end - start - shift
        if length < low or length > high:
            continue
        if shift and not first[data[start]]:
            continue
        good = True
        for k in range(start + shift, end):
            if not rest[data[k]]:
                good = False
                break
        out[i] = good
    return out


@numba.njit(nogil=True, cache=True)
def edges_may_need_trim(offsets: np.ndarray, data: np.ndarray) -> bool:
    """Does any value start or end with a byte that could be whitespace (ASCII whitespace or
    control, or any non-ASCII byte)? If not, trimming would change nothing."""
    for i in range(len(offsets) - 1):
        start, end = offsets[i], offsets[i + 1]
        if end > start:
            head, tail = data[start], data[end - 1]
            if head <= 32 or head >= 127 or tail <= 32 or tail >= 127:
                return True
    return False


_LOCAL_BYTES = np.zeros(256, np.bool_)
_DOMAIN_BYTES = np.zeros(256, np.bool_)
for _byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-":
    _LOCAL_BYTES[_byte] = _DOMAIN_BYTES[_byte] = True
for _byte in b"._%+'":
    _LOCAL_BYTES[_byte] = True


@numba.njit(nogil=True, cache=True)
def email_shapes(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """`^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$` per value: an address a relay
    will take (a local part, one @, a domain of two or more dot-separated labels)."""
    n = len(offsets) - 1
    out = np.zeros(n, np.bool_)
    for i in range(n):
        start, end = offsets[i], offsets[i + 1]
        at = start
        while at < end and _LOCAL_BYTES[data[at]]:
            at += 1
        if at == start or at >= end or data[at] != 64:
            continue
        label, dots, good = 0, 0, True
        for k in range(at + 1, end):
            byte = data[k]
            if byte == 46:
                good &= label > 0
                label = 0
                dots += 1
            else:
                good &= _DOMAIN_BYTES[byte]
                label += 1
        out[i] = good and label > 0 and dots > 0
    return out


@numba.njit(nogil=True, cache=True)
def email_domains(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of each value's text after its last @ (all of it if none), with ASCII
    letters lowered: the domain a relay is chosen by."""
    n = len(offsets) - 1
    starts = np.empty(n, np.int64)
    out_offsets = np.zeros(n + 1, np.int32)
    for i in range(n):
        start, end = offsets[i], offsets[i + 1]
        cut = start
        for k in range(start, end):
            if data[k] == 64:
                cut = k + 1
        starts[i] = cut
        out_offsets[i + 1] = out_offsets[i] + (end - cut)
    out = np.empty(max(1, out_offsets[n]), np.uint8)
    for i in range(n):
        at = out_offsets[i]
        for k in range(starts[i], offsets[i + 1]):
            byte = data[k]
            out[at] = byte + 32 if 65 <= byte <= 90 else byte
            at += 1
    return out_offsets, out


@numba.njit(nogil=True, cache=True)
def sums_by_group(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group, the sum of its rows' values: exact in 64-bit integers (unsigned ones wrap)."""
    out = np.zeros(size, values.dtype)
    for i in range(len(groups)):
        out[groups[i]] += values[i]
    return out


def adjustments_array(row_offsets: np.ndarray, codes: np.ndarray, amounts: np.ndarray, remarks: np.ndarray,
                      code_names: pa.Array, remark_names: pa.Array, skip_empty: bool = False) -> pa.Array:
    """join_adjustments as an Arrow string array (`code_names`, `remark_names`: string arrays)."""
    offsets, data = join_adjustments(np.ascontiguousarray(row_offsets, np.int64),
                                     np.ascontiguousarray(codes, np.int64),
                                     np.ascontiguousarray(amounts, np.int64),
                                     np.ascontiguousarray(remarks, np.int64), *string_buffers(code_names),
                                     *string_buffers(remark_names), skip_empty)
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


def domain_array(values: pa.Array) -> pa.Array:
    """email_domains as an Arrow string array."""
    offsets, data = email_domains(*string_buffers(values))
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def load_kernels() -> None:
    """Compile, or load from numba's cache, every kernel for the types ingest passes them.

    A process pays this once (about half a second, mostly numba starting up) on its first
    call; a caller timing ingest calls this first, as it imports modules first."""
    text = pa.array(["1.00", "2026-11-01"], pa.string())
    offsets, data = string_buffers(text)
    hash_values(offsets, data)
    seeded_hashes(offsets, data, CHECK_SEED)
    dollars_to_cents(offsets, data)
    civil_dates(offsets, data)
    edges_may_need_trim(offsets, data)
    match_byte_classes(offsets, data, np.zeros(0, bool), np.zeros(256, bool), 0, 1)
    match_byte_classes(offsets, data, np.zeros(256, bool), np.zeros(256, bool), 0, 1)
    h = np.zeros(2, np.uint64)
    for values in (*(pa.array([1, 2], kind).to_numpy() for kind in (pa.int32(), pa.int64(), pa.uint64())), h):
        fold_numbers(h, values)
        fold_marked(h, values, np.uint64(0), np.uint64(7))
    mixed_with(h, h)
    fold_hashes(h, h, pa.array([0, 1], pa.int32()).to_numpy())
    email_shapes(offsets, data)
    email_domains(offsets, data)
    adjustments_shapes(offsets, data)
    one = np.zeros(1, np.int64)
    adjustments_array(np.array([0, 1]), one, one + 5, one - 1, text, text, True)
    keys = np.zeros(1, np.uint64)
    read_adjustments(offsets, data, one[:0], keys, one, one, np.zeros(1, np.bool_), keys, one, keys, keys, 7)
    for groups in (pa.array([0, 1], pa.int32()).to_numpy(), np.array([0, 1], np.int32),  # read-only or not
                   np.array([0, 1], np.int64)):
        for kind in (np.int64, np.uint64):
            for values in (pa.array([1, 2], pa.from_numpy_dtype(kind)).to_numpy(), np.array([1, 2], kind)):
                sums_by_group(groups, values, 2)
