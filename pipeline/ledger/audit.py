"""The audit log: who did what, when, from where, to which statement and why; append-only and
hash-chained, so a changed, deleted, reordered or inserted entry is found.

Each entry's hash covers the previous entry's hash and its own fields: rewriting an entry breaks
its own hash, removing one breaks its successor's link, and moving one breaks the links around
it. An entry written before the log recorded `source` and `reason` is hashed without them (both
are NULL on such rows), so the rows of an older ledger still verify unchanged.

Writers are serialised so the chain never forks: on PostgreSQL by a transaction-scoped advisory
lock taken before the head is read, on SQLite by BEGIN IMMEDIATE (the write lock first); and a
UNIQUE index on `prev_hash` makes a second successor of one entry impossible whatever a writer
does. Truncating the end of the log leaves a shorter, intact chain, and so does rewriting it
from some entry on with every hash recomputed: only a head recorded earlier, kept outside the
database, reveals either (`verify_chain(expect_head=...)`).

Verification follows the hash links alone: `seq` orders the rows but is not hashed, and has
gaps (PostgreSQL's identity skips the values of rolled-back inserts), so a gap is no finding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine

from pipeline.ledger.sql import clause

GENESIS = "0" * 64
"""The previous hash of the first entry."""

_YIELD_ROWS = 2000
"""Rows read per round trip while verifying: the whole log is never held in memory."""


class ProblemKind(StrEnum):
    """What happened to the first entry that breaks the chain."""

    MODIFIED = "modified"    # its content no longer matches its hash
    DELETED = "deleted"      # the entry before it is gone: deleted, or rewritten and rehashed
                             # (or, against a recorded head, entries at the end)
    REORDERED = "reordered"  # it is intact but sits elsewhere than after its predecessor
    INSERTED = "inserted"    # it was never part of the chain: nothing follows it, or it forks it


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first broken entry: its `seq`, what happened (`kind`) and a sentence for an operator."""

    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`entries` read in order up to the end, or up to and including the broken one; `head`, the
    hash of the last entry that verified, and `head_at`, when that entry was written (None for an
    empty log). Kept outside the database, the head later reveals a truncated tail, or a log
    rewritten from its start."""

    entries: int
    head: str
    problem: ChainProblem | None
    head_at: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def entry_hash(prev: str, at: str, actor: str, action: str, statement_id: str | None, detail: str,
               source: str | None = None, reason: str | None = None) -> str:
    """SHA-256 of the previous hash and the entry's fields. `source` and `reason` join the material
    only when one of them is set, which keeps the hash of entries written before they existed."""
    fields = [prev, at, actor, action, statement_id or "", detail]
    if source is not None or reason is not None:
        fields += [source or "", reason or ""]
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def append_entry(engine: Engine, now: Callable[[], str], *, actor: str, action: str,
                 statement_id: str | None, detail: Mapping[str, Any] | None = None,
                 source: str | None = None, reason: str | None = None) -> str:
    """Append one entry after the current head, serialised against every other writer; returns
    its hash. `now` is read once the head is held, so `at` grows with `seq`."""
    body = json.dumps(dict(detail or {}), sort_keys=True, default=str)
    source, reason = source or None, reason or None  # an empty text is no text: one hash for both
    with engine.connect() as conn:
        _lock_head(conn, engine.dialect.name)
        prev = conn.execute(clause("last_audit_hash")).scalar() or GENESIS
        at = now()
        digest = entry_hash(prev, at, actor, action, statement_id, body, source, reason)
        conn.execute(clause("insert_audit"), {
            "at": at, "actor": actor, "action": action, "statement_id": statement_id,
            "detail": body, "source": source, "reason": reason, "prev_hash": prev, "hash": digest})
        conn.commit()
    return digest


def _lock_head(conn: Connection, dialect: str) -> None:
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the head is read
    else:
        conn.execute(clause("audit_lock_postgresql"))


def _row_hash(row: Mapping[str, Any]) -> str:
    return entry_hash(row["prev_hash"], row["at"], row["actor"], row["action"], row["statement_id"],
                      row["detail"], row["source"], row["reason"])


def verify_chain(engine: Engine, *, expect_head: str | None = None) -> ChainReport:
    """Check every entry in `seq` order and report the first broken one and what happened to it.

    With `expect_head` (a head reported by an earlier verify), also check that entry is still in
    the log: entries may have been added since, but if it is gone the end was cut off."""
    entries, head, head_at = 0, GENESIS, None
    previous: Mapping[str, Any] | None = None
    broken: Mapping[str, Any] | None = None
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_YIELD_ROWS).execute(clause("audit_chain"))
        for item in result:
            row = dict(item._mapping)
            entries += 1
            if row["hash"] != _row_hash(row) or row["prev_hash"] != head:
                broken = row
                break
            head, head_at, previous = row["hash"], row["at"], row
        result.close()
        if broken is not None:
            return ChainReport(entries, head, _classify(conn, broken, previous), head_at)
        if expect_head and expect_head != head:
            return ChainReport(entries, head, _missing_head(conn, expect_head, previous), head_at)
    return ChainReport(entries, head, None, head_at)


def _classify(conn: Connection, row: Mapping[str, Any], previous: Mapping[str, Any] | None
              ) -> ChainProblem:
    seq = int(row["seq"])
    name = f"audit entry {seq} ({row['at']}, {row['actor']}, {row['action']})"
    if row["hash"] != _row_hash(row):
        return ChainProblem(seq, ProblemKind.MODIFIED,
                            f"{name} was changed after it was written: its content no longer "
                            "matches its hash")
    after = f"entry {previous['seq']}" if previous else "the start of the log"
    holders = [r[0] for r in conn.execute(clause("audit_seq_by_hash"), {"hash": row["prev_hash"]})]
    claims = [r[0] for r in conn.execute(clause("audit_seqs_by_prev_hash"),
                                         {"prev_hash": row["prev_hash"]}) if r[0] != seq]
    if holders and claims:
        intruder, rival = _intruder(conn, [seq, *claims])
        return ChainProblem(intruder, ProblemKind.INSERTED,
                            f"audit entry {intruder} was inserted: it claims entry {holders[0]} as "
                            f"its predecessor, which entry {rival} already does")
    if holders:
        return ChainProblem(seq, ProblemKind.REORDERED,
                            f"{name} is out of order: it belongs after entry {holders[0]}, "
                            f"not after {after}")
    successors = conn.execute(clause("audit_seqs_by_prev_hash"), {"prev_hash": row["hash"]}).first()
    is_last = conn.execute(clause("audit_seq_after"), {"seq": seq}).first() is None
    if successors is None and not is_last:
        return ChainProblem(seq, ProblemKind.INSERTED,
                            f"{name} was inserted: no entry of the chain leads to it or follows it")
    # The entry it links to is in no row. Only hashes are evidence (seq values have gaps after
    # rolled-back writes, and seq is not hashed): it was deleted, or rewritten with its hash
    # recomputed; either way the original entry is gone from the log.
    rewritten = f", or {after} was rewritten and its hash recomputed" if previous else ""
    return ChainProblem(seq, ProblemKind.DELETED,
                        f"the entry before {name} is gone: an entry after {after} was "
                        f"deleted{rewritten}")


def _intruder(conn: Connection, rivals: list[int]) -> tuple[int, int]:
    """Of entries that claim one predecessor (a fork), the one the chain does not go on from (no
    entry points at it; the latest when none does), and one genuine rival."""
    def followed(seq: int) -> bool:
        own = conn.execute(clause("audit_hash_of_seq"), {"seq": seq}).scalar()
        return conn.execute(clause("audit_seqs_by_prev_hash"), {"prev_hash": own}).first() is not None

    ordered = sorted(rivals, key=lambda seq: (followed(seq), -seq))
    intruder = ordered[0]
    return intruder, next(seq for seq in sorted(rivals) if seq != intruder)


def _missing_head(conn: Connection, expect_head: str, previous: Mapping[str, Any] | None
                  ) -> ChainProblem | None:
    if conn.execute(clause("audit_seq_by_hash"), {"hash": expect_head}).first() is not None:
        return None  # still in the chain; entries were added after it
    last = int(previous["seq"]) if previous else 0
    ends = f"entry {last}" if previous else "no entry at all"
    return ChainProblem(last, ProblemKind.DELETED,
                        f"the recorded head {expect_head[:16]}… is no longer in the audit log: "
                        f"entries at its end were deleted, or the log was rewritten from an "
                        f"earlier entry on (the log now ends at {ends})")
