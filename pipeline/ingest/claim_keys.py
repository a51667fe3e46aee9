"""Claim keys across files: later copies of a claim line, and claims whose lines name more
than one member. Pass 1 stages each accepted line's key (hashes of claim and member ids, line
number, file and row) by a bucket of its claim id, so every copy of a claim meets in one bucket."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.ingest.staging import take_stage

__all__ = ["claim_key_rejects"]

_KEY_REJECTS = pa.schema([("order", pa.int64()), ("rule", pa.string()), ("first_order", pa.int64())])


def claim_key_rejects(staging: Path, files: int, buckets: int) -> pa.Table:
    """Claim lines that repeat (same claim_id and line_no), and claims whose lines name more
    than one member, found bucket by bucket of claim_id: (order, reason id, first order)."""

    def problems(bucket: int) -> pa.Table:
        parts = [t for index in range(files)
                 if (t := take_stage(staging / f"keys-{index:04d}", bucket)) is not None]
        return _key_problems(pa.concat_tables(parts)) if parts else _KEY_REJECTS.empty_table()

    with ThreadPoolExecutor(max_workers=2) as pool:  # buckets are independent
        found = list(pool.map(problems, range(buckets)))
    return pa.concat_tables(found).combine_chunks() if found else _KEY_REJECTS.empty_table()


def _key_problems(keys: pa.Table) -> pa.Table:
    """Within one claim bucket: later copies of a claim line, and every line of a claim whose
    lines name more than one member (a re-keyed claim: showing it to either member may be wrong).

    Claims are told apart by a hash of their id, grouped by hashing (not sorting, nor text);
    the lines this flags are checked against a second, independent hash of the id, and should
    two claims share the first, the bucket is done again by both."""
    line_no, member = keys["line_no"].to_numpy(), keys["member_hash"].to_numpy()
    order = keys["order"].to_numpy()
    claim = keys["claim_hash"].to_numpy()
    found, flagged = _claim_runs(claim, line_no, member, order)
    if len(flagged):
        check = keys["claim_check"].to_numpy()
        if (check[flagged[:, 0]] != check[flagged[:, 1]]).any():
            pairs = np.unique(np.stack([claim, check], axis=1), axis=0, return_inverse=True)[1]
            found, _ = _claim_runs(pairs.reshape(-1).astype(np.uint64), line_no, member, order)
    return found


def _claim_runs(claim: np.ndarray, line_no: np.ndarray, member: np.ndarray,
                order: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """_key_problems with claims identified by the numbers in `claim` (rows in `order`), grouped
    by hashing, not sorting; also (row, first row of its claim) of every flagged line, so the
    caller can check those rows share a claim id."""
    n = len(claim)
    rows = np.arange(n)
    claims, claim_count = _first_codes(claim)
    lowest = np.full(claim_count, np.iinfo(np.uint64).max, np.uint64)
    highest = np.zeros(claim_count, np.uint64)
    np.minimum.at(lowest, claims, member)
    np.maximum.at(highest, claims, member)
    conflict = (lowest != highest)[claims]
    lines, line_count = _first_codes(claims.astype(np.uint64) << np.uint64(10) | line_no.astype(np.uint64))
    first_line = np.full(line_count, n, np.int64)
    np.minimum.at(first_line, lines, rows)
    first = first_line[lines]  # the first copy of each line: rows come in order
    repeat = first != rows
    at = np.flatnonzero(conflict | repeat)
    rule = np.where(conflict[at], "claim_members_conflict", "duplicate_line")
    found = pa.table({"order": pa.array(order[at]), "rule": pa.array(rule, pa.string()),
                      "first_order": pa.array(order[first[at]])}, schema=_KEY_REJECTS)
    first_claim = np.full(claim_count, n, np.int64)
    np.minimum.at(first_claim, claims[at], at)
    return found, np.stack([at, first_claim[claims[at]]], axis=1)


def _first_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """A code per value, numbered by first appearance, and how many distinct values there are."""
    codes, distinct = pd.factorize(values)
    return codes, len(distinct)

