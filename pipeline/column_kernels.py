"""Loops over Arrow columns, compiled with numba: hashes, amounts, dates, codes, group sums.

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

__all__ = ["ADJUSTMENTS_PATTERN", "ADJUSTMENT_ADVERSE", "ADJUSTMENT_BAD_GROUP",
           "ADJUSTMENT_REASON_LISTED", "ADJUSTMENT_UNKNOWN_CODE", "ADJUSTMENT_UNKNOWN_REMARK",
           "CENTS_EMPTY", "CENTS_MALFORMED", "CENTS_NEGATIVE", "CENTS_OK", "CHECK_SEED",
           "EMAIL_PATTERN", "adjustments_array", "adjustments_shapes", "civil_dates", "domain_array",
           "dollars_to_cents", "edges_may_need_trim", "email_domains", "email_shapes", "fold_hashes",
           "fold_numbers", "hash_values", "join_adjustments", "load_kernels", "match_byte_classes",
           "seeded_hashes", "split_adjustments", "string_buffers", "sums_by_group", "tally_adjustments",
           "text_key"]

CENTS_OK, CENTS_EMPTY, CENTS_MALFORMED, CENTS_NEGATIVE = 0, 1, 2, 3
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
"""What email_shapes accepts (tests hold it to the regular-expression engine)."""
_P1, _P2, _P3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x51ED2701)
CHECK_SEED = np.uint64(0x6A09E667F3BCC908)
"""Seed of a second hash, to tell apart two values that share the first."""
_EMPTY = np.zeros(1, np.uint8)


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array, without copying; a null reads as its (empty) span."""
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1, offset=values.offset * 4)
    data = values.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else _EMPTY)


@numba.njit(nogil=True, cache=True)
def seeded_hashes(offsets: np.ndarray, data: np.ndarray, seed: np.uint64) -> np.ndarray:
    """A 64-bit hash per value, eight bytes at a time (little-endian words, the last one cut to
    the bytes that remain), then a splitmix finaliser: stable across machines and releases.
    Another seed gives a second, independent hash."""
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        start = offsets[i]
        length = offsets[i + 1] - start
        h = (np.uint64(length) + seed) * _P1
        for k in range(0, length, 8):
            word = np.uint64(0)
            for j in range(min(8, length - k)):
                word |= np.uint64(data[start + k + j]) << np.uint64(8 * j)
            h = (h ^ word) * _P1
            h ^= h >> np.uint64(29)
        h = (h ^ (h >> np.uint64(30))) * _P2
        h = (h ^ (h >> np.uint64(27))) * _P3
        out[i] = h ^ (h >> np.uint64(31))
    return out


@numba.njit(nogil=True, cache=True)
def hash_values(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """seeded_hashes with the seed every stored hash (shards, fingerprints) was made with."""
    return seeded_hashes(offsets, data, _SEED)


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


_ODD = np.uint64(0xD6E8FEB86659FD93)


@numba.njit(nogil=True, cache=True)
def fold_numbers(h: np.ndarray, values: np.ndarray) -> None:
    """h = (h ^ value) * odd, in place, per row: one more column into running row hashes
    (integers as their 64-bit two's complement)."""
    for i in range(len(h)):
        h[i] = (h[i] ^ np.uint64(np.int64(values[i]))) * _ODD


@numba.njit(nogil=True, cache=True)
def fold_hashes(h: np.ndarray, hashes: np.ndarray, indices: np.ndarray) -> None:
    """fold_numbers of hashes[indices]: a dictionary column, its distinct values hashed once."""
    for i in range(len(h)):
        h[i] = (h[i] ^ hashes[indices[i]]) * _ODD


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


_CODE_BYTES = np.zeros(256, np.bool_)
for _byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _CODE_BYTES[_byte] = True
ADJUSTMENTS_PATTERN = (r"^[A-Z]{2}-[A-Z0-9]{1,4}:\d{1,12}(\.\d{1,2})?(:[A-Z0-9]{1,7})?"
                       r"(;[A-Z]{2}-[A-Z0-9]{1,4}:\d{1,12}(\.\d{1,2})?(:[A-Z0-9]{1,7})?){0,49}$")
"""What adjustments_shapes accepts (tests hold it to the regular-expression engine and the schema)."""


@numba.njit(nogil=True, cache=True, inline="always")
def _run(data: np.ndarray, k: int, end: int, table: np.ndarray) -> int:
    """Where the run of bytes in `table` that starts at k ends."""
    while k < end and table[data[k]]:
        k += 1
    return k


_DIGIT_BYTES = np.zeros(256, np.bool_)
_DIGIT_BYTES[48:58] = True


@numba.njit(nogil=True, cache=True)
def adjustments_shapes(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """ADJUSTMENTS_PATTERN per value: 1 to 50 entries `GG-CARC:dollars[:RARC]` separated by ';'
    (GG two capital letters, CARC 1-4 and RARC 1-7 capitals or digits, dollars 1-12 digits with
    1 or 2 decimals or none). Its separators are not in the classes around them, so one pass
    left to right decides."""
    n = len(offsets) - 1
    out = np.zeros(n, np.bool_)
    for i in range(n):
        k, end = offsets[i], offsets[i + 1]
        entries, good = 0, end > k
        while good:
            good = end - k >= 3 and 65 <= data[k] <= 90 and 65 <= data[k + 1] <= 90 and data[k + 2] == 45
            if not good:
                break
            stop = _run(data, k + 3, end, _CODE_BYTES)
            good = 1 <= stop - (k + 3) <= 4 and stop < end and data[stop] == 58
            if not good:
                break
            k = _run(data, stop + 1, end, _DIGIT_BYTES)
            good = 1 <= k - (stop + 1) <= 12
            if good and k < end and data[k] == 46:
                stop = _run(data, k + 1, end, _DIGIT_BYTES)
                good = 1 <= stop - (k + 1) <= 2
                k = stop
            if good and k < end and data[k] == 58:
                stop = _run(data, k + 1, end, _CODE_BYTES)
                good = 1 <= stop - (k + 1) <= 7
                k = stop
            entries += 1
            if not good or k == end:
                break
            good = data[k] == 59 and k + 1 < end  # another entry follows
            k += 1
        out[i] = good and entries <= 50
    return out


@numba.njit(nogil=True, cache=True)
def sums_by_group(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group, the sum of its rows' values: exact in 64-bit integers (unsigned ones wrap)."""
    out = np.zeros(size, values.dtype)
    for i in range(len(groups)):
        out[groups[i]] += values[i]
    return out


@numba.njit(nogil=True, cache=True)
def _digits_of(value: int) -> int:
    count = 1
    while value >= 10:
        value //= 10
        count += 1
    return count


@numba.njit(nogil=True, cache=True)
def join_adjustments(row_offsets: np.ndarray, codes: np.ndarray, amounts: np.ndarray, remarks: np.ndarray,
                     code_offsets: np.ndarray, code_data: np.ndarray, remark_offsets: np.ndarray,
                     remark_data: np.ndarray, skip_empty: bool) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of each row's adjustments as canonical text, `CODE:CENTS[:RARC]` joined by
    ';': row i's entries are row_offsets[i]:row_offsets[i+1], each a code (an index into the code
    strings; -1 leaves the entry out), an amount in cents (not negative) and a remark (an index
    into the remark strings, -1 for none). With `skip_empty`, entries of 0 cents are left out."""
    n = len(row_offsets) - 1
    out_offsets = np.zeros(n + 1, np.int32)
    for i in range(n):
        size, first = 0, True
        for e in range(row_offsets[i], row_offsets[i + 1]):
            code = codes[e]
            if code < 0 or (skip_empty and amounts[e] <= 0):
                continue
            size += (0 if first else 1) + code_offsets[code + 1] - code_offsets[code] + 1
            size += _digits_of(amounts[e])
            if remarks[e] >= 0:
                size += 1 + remark_offsets[remarks[e] + 1] - remark_offsets[remarks[e]]
            first = False
        out_offsets[i + 1] = out_offsets[i] + size
    out = np.empty(max(1, out_offsets[n]), np.uint8)
    for i in range(n):
        at, first = out_offsets[i], True
        for e in range(row_offsets[i], row_offsets[i + 1]):
            code = codes[e]
            if code < 0 or (skip_empty and amounts[e] <= 0):
                continue
            if not first:
                out[at] = 59  # ;
                at += 1
            first = False
            for k in range(code_offsets[code], code_offsets[code + 1]):
                out[at] = code_data[k]
                at += 1
            out[at] = 58  # :
            value = amounts[e]
            width = _digits_of(value)
            for k in range(width - 1, -1, -1):
                out[at + 1 + k] = 48 + value % 10
                value //= 10
            at += 1 + width
            remark = remarks[e]
            if remark >= 0:
                out[at] = 58
                at += 1
                for k in range(remark_offsets[remark], remark_offsets[remark + 1]):
                    out[at] = remark_data[k]
                    at += 1
    return out_offsets, out


@numba.njit(nogil=True, cache=True)
def split_adjustments(offsets: np.ndarray, data: np.ndarray,
                      rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries of the given rows' adjustments lists, `GG-CARC:dollars[:RARC]` separated by ';'
    (the shape already checked): each entry's row, code and remark as text keys (`text_key`; 0 for
    no remark) and amount in cents."""
    count = 0
    for r in rows:
        if offsets[r + 1] > offsets[r]:
            count += 1
            for k in range(offsets[r], offsets[r + 1]):
                count += data[k] == 59
    parent = np.empty(count, np.int64)
    codes = np.zeros(count, np.uint64)
    cents = np.zeros(count, np.int64)
    remarks = np.zeros(count, np.uint64)
    e = 0
    for r in rows:
        k, end = offsets[r], offsets[r + 1]
        while k < end:
            parent[e] = r
            key = np.uint64(0)
            while data[k] != 58:  # the code, up to ':'
                key = key * np.uint64(256) + np.uint64(data[k])
                k += 1
            codes[e] = key
            k += 1
            whole, decimals, seen_point = 0, 0, False
            while k < end and data[k] != 58 and data[k] != 59:  # the amount
                if data[k] == 46:
                    seen_point = True
                elif seen_point:
                    whole = whole * 10 + (data[k] - 48)
                    decimals += 1
                else:
                    whole = whole * 10 + (data[k] - 48)
                k += 1
            cents[e] = whole * (100 if decimals == 0 else 10 if decimals == 1 else 1)
            if k < end and data[k] == 58:  # a remark
                k += 1
                key = np.uint64(0)
                while k < end and data[k] != 59:
                    key = key * np.uint64(256) + np.uint64(data[k])
                    k += 1
                remarks[e] = key
            k += 1  # past ';'
            e += 1
    return parent, codes, cents, remarks


@numba.njit(nogil=True, cache=True, inline="always")
def _find(sorted_keys: np.ndarray, at: np.ndarray, key: np.uint64) -> int:
    """at[i] where sorted_keys[i] == key, -1 when it is not there (a binary search)."""
    low, high = 0, len(sorted_keys)
    while low < high:
        middle = (low + high) // 2
        if sorted_keys[middle] < key:
            low = middle + 1
        else:
            high = middle
    return at[low] if low < len(sorted_keys) and sorted_keys[low] == key else -1


ADJUSTMENT_BAD_GROUP, ADJUSTMENT_UNKNOWN_CODE, ADJUSTMENT_UNKNOWN_REMARK = 1, 2, 4
ADJUSTMENT_ADVERSE, ADJUSTMENT_REASON_LISTED = 8, 16
"""The bits of tally_adjustments' flags per row."""


@numba.njit(nogil=True, cache=True)
def tally_adjustments(parent: np.ndarray, keys: np.ndarray, cents: np.ndarray, remark_keys: np.ndarray,
                      rows: int, code_keys: np.ndarray, code_at: np.ndarray, booked: np.ndarray,
                      adverse: np.ndarray, known_remarks: np.ndarray, remark_at: np.ndarray,
                      groups: np.ndarray, reason_keys: np.ndarray,
                      kinds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """split_adjustments' entries looked up in the reason and remark tables (sorted text keys
    and each one's index in the table): each entry's code and remark index (-1: unknown or no
    remark); per row, flag bits (ADJUSTMENT_*: a group code not in `groups`, an unknown code
    or remark, an adverse code, the row's reason key among its codes) and the cents of its known
    codes summed by `booked` kind (kind-major: kind * rows + row)."""
    count = len(parent)
    codes = np.empty(count, np.int64)
    remarks = np.empty(count, np.int64)
    flags = np.zeros(rows, np.uint8)
    sums = np.zeros(kinds * rows, np.int64)
    for e in range(count):
        row, key = parent[e], keys[e]
        group = key
        while group >= np.uint64(1 << 16):  # the code's first two characters
            group >>= np.uint64(8)
        listed = False
        for g in groups:
            listed |= g == group
        if not listed:
            flags[row] |= ADJUSTMENT_BAD_GROUP
        code = _find(code_keys, code_at, key)
        codes[e] = code
        if code < 0:
            flags[row] |= ADJUSTMENT_UNKNOWN_CODE
        else:
            sums[booked[code] * rows + row] += cents[e]
            if adverse[code]:
                flags[row] |= ADJUSTMENT_ADVERSE
        if key == reason_keys[row]:
            flags[row] |= ADJUSTMENT_REASON_LISTED
        remark = -1
        if remark_keys[e] != 0:
            remark = _find(known_remarks, remark_at, remark_keys[e])
            if remark < 0:
                flags[row] |= ADJUSTMENT_UNKNOWN_REMARK
        remarks[e] = remark
    return codes, remarks, flags, sums


def text_key(text: str) -> int:
    """A code of at most 8 ASCII characters as the number split_adjustments makes of it."""
    key = 0
    for byte in text.encode("ascii"):
        key = key * 256 + byte
    return key


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
    for kind in (pa.int32(), pa.int64(), pa.uint64()):
        fold_numbers(h, pa.array([1, 2], kind).to_numpy())
    fold_numbers(h, h)
    fold_hashes(h, h, pa.array([0, 1], pa.int32()).to_numpy())
    email_shapes(offsets, data)
    email_domains(offsets, data)
    adjustments_shapes(offsets, data)
    one = np.zeros(1, np.int64)
    adjustments_array(np.array([0, 1]), one, one + 5, one - 1, text, text, True)
    parent, keys, cents, remark_keys = split_adjustments(offsets, data, np.zeros(0, np.int64))
    sorted_keys = np.zeros(1, np.uint64)
    tally_adjustments(parent, keys, cents, remark_keys, 2, sorted_keys, one, one, np.zeros(1, np.bool_),
                      sorted_keys, one, sorted_keys, sorted_keys, 7)
    for groups in (pa.array([0, 1], pa.int32()).to_numpy(), np.array([0, 1], np.int32),  # read-only or not
                   np.array([0, 1], np.int64)):
        for kind in (np.int64, np.uint64):
            for values in (pa.array([1, 2], pa.from_numpy_dtype(kind)).to_numpy(), np.array([1, 2], kind)):
                sums_by_group(groups, values, 2)
