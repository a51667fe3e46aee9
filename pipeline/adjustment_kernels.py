"""The adjustments-list kernels of `column_kernels` (which re-exports them): the list's shape,
its entries split, looked up and summed per row, and the canonical text written in cents.

An entry is `GG-CARC:dollars[:RARC]` in the extract and `GG-CARC:cents[:RARC]` on the canonical
line (pipeline.ingest.adjustments says where each amount belongs). Tests hold each kernel to
the regular-expression engine and to a plain Python reading of random lists.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["ADJUSTMENTS_PATTERN", "ADJUSTMENT_ADVERSE", "ADJUSTMENT_BAD_GROUP", "ADJUSTMENT_REASON_LISTED",
           "ADJUSTMENT_UNKNOWN_CODE", "ADJUSTMENT_UNKNOWN_REMARK", "adjustments_shapes", "join_adjustments",
           "read_adjustments", "split_adjustments", "tally_adjustments", "text_key"]

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
def _digits_of(value: int) -> int:
    count = 1
    while value >= 10:
        value //= 10
        count += 1
    return count


@numba.njit(nogil=True, cache=True, inline="always")
def _write_number(out: np.ndarray, at: int, value: int) -> int:
    """A number (not negative) as ASCII digits at `at`; returns where they end."""
    width = _digits_of(value)
    for k in range(width - 1, -1, -1):
        out[at + k] = 48 + value % 10
        value //= 10
    return at + width


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
            at = _write_number(out, at + 1, amounts[e])
            remark = remarks[e]
            if remark >= 0:
                out[at] = 58
                at += 1
                for k in range(remark_offsets[remark], remark_offsets[remark + 1]):
                    out[at] = remark_data[k]
                    at += 1
    return out_offsets, out


@numba.njit(nogil=True, cache=True, inline="always")
def _entry(data: np.ndarray, k: int, end: int) -> tuple[np.uint64, int, np.uint64, int, int, int]:
    """The entry `GG-CARC:dollars[:RARC]` at k (shape checked): code key, cents, remark key (0:
    none), the remark's start and end, and where the next entry starts."""
    key = np.uint64(0)
    while data[k] != 58:  # the code, up to ':'
        key = key * np.uint64(256) + np.uint64(data[k])
        k += 1
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
    cents = whole * (100 if decimals == 0 else 10 if decimals == 1 else 1)
    remark, remark_at = np.uint64(0), k
    if k < end and data[k] == 58:  # a remark
        k += 1
        remark_at = k
        while k < end and data[k] != 59:
            remark = remark * np.uint64(256) + np.uint64(data[k])
            k += 1
    return key, cents, remark, remark_at, k, k + 1


@numba.njit(nogil=True, cache=True)
def split_adjustments(offsets: np.ndarray, data: np.ndarray,
                      rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries of the given rows' adjustments lists, `GG-CARC:dollars[:RARC]` separated by ';'
    (the shape already checked): each entry's row, code and remark as text keys (`text_key`; 0 for
    no remark) and amount in cents."""
    count = 0
    for r in rows:
        count += offsets[r + 1] > offsets[r]  # a list has one entry more than it has ';'
        for k in range(offsets[r], offsets[r + 1]):
            count += data[k] == 59
    parent, cents = np.empty(count, np.int64), np.zeros(count, np.int64)
    codes, remarks = np.zeros(count, np.uint64), np.zeros(count, np.uint64)
    e = 0
    for r in rows:
        k, end = offsets[r], offsets[r + 1]
        while k < end:
            parent[e] = r
            codes[e], cents[e], remarks[e], _, _, k = _entry(data, k, end)
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


@numba.njit(nogil=True, cache=True, inline="always")
def _look_up(key: np.uint64, remark_key: np.uint64, reason_key: np.uint64, code_keys: np.ndarray,
             code_at: np.ndarray, adverse: np.ndarray, known_remarks: np.ndarray, remark_at: np.ndarray,
             groups: np.ndarray) -> tuple[int, int, int]:
    """One entry looked up in the tables: its code and remark index (-1: unknown or no remark)
    and its flag bits (a group not in `groups`, an unknown code or remark, an adverse code, the
    code is the row's reason code)."""
    flags = 0
    group = key
    while group >= np.uint64(1 << 16):  # the code's first two characters
        group >>= np.uint64(8)
    listed = False
    for g in groups:
        listed |= g == group
    if not listed:
        flags |= ADJUSTMENT_BAD_GROUP
    code = _find(code_keys, code_at, key)
    if code < 0:
        flags |= ADJUSTMENT_UNKNOWN_CODE
    elif adverse[code]:
        flags |= ADJUSTMENT_ADVERSE
    if key == reason_key:
        flags |= ADJUSTMENT_REASON_LISTED
    remark = -1
    if remark_key != 0:
        remark = _find(known_remarks, remark_at, remark_key)
        if remark < 0:
            flags |= ADJUSTMENT_UNKNOWN_REMARK
    return code, remark, flags


@numba.njit(nogil=True, cache=True)
def tally_adjustments(parent: np.ndarray, keys: np.ndarray, cents: np.ndarray, remark_keys: np.ndarray,
                      rows: int, code_keys: np.ndarray, code_at: np.ndarray, booked: np.ndarray,
                      adverse: np.ndarray, known_remarks: np.ndarray, remark_at: np.ndarray,
                      groups: np.ndarray, reason_keys: np.ndarray,
                      kinds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """split_adjustments' entries looked up in the tables (sorted text keys, each one's index in
    the table): each entry's code and remark index (-1: unknown or none); per row, flag bits
    (ADJUSTMENT_*, see _look_up) and its known codes' cents summed by `booked` kind (kind-major:
    kind * rows + row)."""
    count = len(parent)
    codes = np.empty(count, np.int64)
    remarks = np.empty(count, np.int64)
    flags = np.zeros(rows, np.uint8)
    sums = np.zeros(kinds * rows, np.int64)
    for e in range(count):
        row = parent[e]
        code, remark, bits = _look_up(keys[e], remark_keys[e], reason_keys[row], code_keys, code_at, adverse,
                                      known_remarks, remark_at, groups)
        codes[e], remarks[e] = code, remark
        flags[row] |= bits
        if code >= 0:
            sums[booked[code] * rows + row] += cents[e]
    return codes, remarks, flags, sums


@numba.njit(nogil=True, cache=True)
def read_adjustments(offsets: np.ndarray, data: np.ndarray, rows: np.ndarray, code_keys: np.ndarray,
                     code_at: np.ndarray, booked: np.ndarray, adverse: np.ndarray, known_remarks: np.ndarray,
                     remark_at: np.ndarray, groups: np.ndarray, reason_keys: np.ndarray,
                     kinds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """split_adjustments, tally_adjustments and join_adjustments in one pass over the given rows
    (ascending): per row, tally_adjustments' flags and sums, and the canonical text of its known
    entries as join_adjustments writes it ("" for a row not given), as (offsets, data); a known
    code or remark is copied as read, since its text key is its text."""
    n = len(offsets) - 1
    flags = np.zeros(n, np.uint8)
    sums = np.zeros(kinds * n, np.int64)
    span = 0
    for r in rows:
        span += offsets[r + 1] - offsets[r]
    out_offsets = np.zeros(n + 1, np.int32)
    out = np.empty(max(1, span + 2 * (span // 6 + len(rows))), np.uint8)  # dollars→cents: +2 at most
    seen, seen_code, seen_bits = np.zeros(256, np.uint64), np.zeros(256, np.int64), np.zeros(256, np.uint8)
    at, done = 0, 0
    for r in rows:
        out_offsets[done + 1:r + 1] = at
        k, end, first = offsets[r], offsets[r + 1], True
        while k < end:
            start = k
            key, cents, remark_key, remark_start, remark_end, k = _entry(data, k, end)
            slot = (key ^ (key >> np.uint64(24))) & np.uint64(255)  # a few codes make most entries
            if seen[slot] != key:
                seen[slot] = key
                none = np.uint64(0)  # no remark nor reason code: the bits of the code alone
                seen_code[slot], _, seen_bits[slot] = _look_up(key, none, none, code_keys, code_at, adverse,
                                                               known_remarks, remark_at, groups)
            code, remark = seen_code[slot], -1
            flags[r] |= seen_bits[slot] | (ADJUSTMENT_REASON_LISTED if key == reason_keys[r] else 0)
            if remark_key != 0:
                remark = _find(known_remarks, remark_at, remark_key)
                flags[r] |= ADJUSTMENT_UNKNOWN_REMARK if remark < 0 else 0
            if code < 0:
                continue
            sums[booked[code] * n + r] += cents
            if not first:
                out[at] = 59  # ;
                at += 1
            first = False
            while data[start] != 58:
                out[at] = data[start]
                start += 1
                at += 1
            out[at] = 58  # :
            at = _write_number(out, at + 1, cents)
            if remark >= 0:
                out[at] = 58
                at += 1
                for j in range(remark_start, remark_end):
                    out[at] = data[j]
                    at += 1
        out_offsets[r + 1] = at
        done = r + 1
    out_offsets[done + 1:] = at
    return flags, sums, out_offsets, out[:max(1, at)]


def text_key(text: str) -> int:
    """A code of at most 8 ASCII characters as the number split_adjustments makes of it."""
    key = 0
    for byte in text.encode("ascii"):
        key = key * 256 + byte
    return key
