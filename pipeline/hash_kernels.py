"""The hashing kernels of `column_kernels` (which re-exports them): stable 64-bit hashes of
text and the running row hashes a line's fingerprint is folded into.

Hashes decide shards and statement versions, so they must never change: tests hold them to
fixed values. Kept apart from the other kernels only to keep each module short.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CHECK_SEED", "fold_hashes", "fold_marked", "fold_numbers", "hash_values", "mixed_with",
           "seeded_hashes"]

_P1, _P2, _P3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x51ED2701)
CHECK_SEED = np.uint64(0x6A09E667F3BCC908)
"""Seed of a second hash, to tell apart two values that share the first."""
_ODD = np.uint64(0xD6E8FEB86659FD93)


@numba.njit(nogil=True, cache=True, inline="always")
def _mix(h: np.uint64) -> np.uint64:
    """splitmix64's finaliser (storage.mix64, one value)."""
    h = (h ^ (h >> np.uint64(30))) * _P2
    h = (h ^ (h >> np.uint64(27))) * _P3
    return h ^ (h >> np.uint64(31))  # type: ignore[no-any-return]


@numba.njit(nogil=True, cache=True)
def seeded_hashes(offsets: np.ndarray, data: np.ndarray, seed: np.uint64) -> np.ndarray:
    """A 64-bit hash per value, eight bytes at a time (little-endian words, the last one cut to
    the bytes that remain), then a splitmix finaliser: stable across machines and releases.
    Another seed gives a second, independent hash. A whole word is read as eight bytes written
    out one by one, which the compiler turns into a single load."""
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        start = offsets[i]
        length = offsets[i + 1] - start
        h = (np.uint64(length) + seed) * _P1
        k = 0
        while k + 8 <= length:
            at = start + k
            word = (np.uint64(data[at]) | (np.uint64(data[at + 1]) << np.uint64(8))
                    | (np.uint64(data[at + 2]) << np.uint64(16)) | (np.uint64(data[at + 3]) << np.uint64(24))
                    | (np.uint64(data[at + 4]) << np.uint64(32)) | (np.uint64(data[at + 5]) << np.uint64(40))
                    | (np.uint64(data[at + 6]) << np.uint64(48)) | (np.uint64(data[at + 7]) << np.uint64(56)))
            h = (h ^ word) * _P1
            h ^= h >> np.uint64(29)
            k += 8
        if k < length:
            word = np.uint64(0)
            for j in range(length - k):
                word |= np.uint64(data[start + k + j]) << np.uint64(8 * j)
            h = (h ^ word) * _P1
            h ^= h >> np.uint64(29)
        out[i] = _mix(h)
    return out


@numba.njit(nogil=True, cache=True)
def hash_values(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """seeded_hashes with the seed every stored hash (shards, fingerprints) was made with."""
    return seeded_hashes(offsets, data, _SEED)


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


@numba.njit(nogil=True, cache=True)
def fold_marked(extra: np.ndarray, values: np.ndarray, blank: np.uint64, tag: np.uint64) -> None:
    """extra = mix(extra ^ (0 if value == blank else mix(value ^ tag))), in place, per row: a
    column folded in only where a row has a value (integers as their 64-bit two's complement)."""
    for i in range(len(extra)):
        value = np.uint64(np.int64(values[i]))
        extra[i] = _mix(extra[i] ^ (np.uint64(0) if value == blank else _mix(value ^ tag)))


@numba.njit(nogil=True, cache=True)
def mixed_with(h: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """mix(h), or mix(mix(h ^ extra)) where extra is not 0: a row hash's last step."""
    out = np.empty(len(h), np.uint64)
    for i in range(len(h)):
        value = h[i] if extra[i] == 0 else _mix(h[i] ^ extra[i])
        out[i] = _mix(value)
    return out
