"""Ingest: stream a period's extract, validate every row, quarantine bad rows with reasons.

Two passes, each bounded in memory whatever the input size:

1. Stream every file in pyarrow record batches; check each row on its own (types, required
   values, dates, code formats, amounts that do not reconcile, absurd values) with vectorised
   Arrow compute; rejected rows go to the quarantine with file, row, field and reason; accepted
   rows are staged (Arrow IPC) into buckets by a stable hash of the member id.
2. Per bucket, check what needs other rows: claim lines for members missing from the member file
   and duplicate claim lines (also across files: a claim's lines all belong to one member, so
   both copies land in the same bucket), members listed twice. Then write the canonical lines as
   Parquet, `lines/shard-SSS/bucket-BBBBB.parquet`, in extract order (compose groups by member;
   render sorts a bucket by member, claim and line).

Buckets refine shards (bucket % shards == shard), and their number grows with the input
(about `bucket_rows` lines each), so the memory a bucket needs stays the same when the input
doubles. Accounting is enforced per file: rows read = rows accepted + rows quarantined, or the
task fails. Quarantine reasons never carry row content (PHI); the values stay in the
workspace's quarantine CSV for the data team.

Everything is written into a fresh staging folder beside the run's folder and swapped in only
when complete (`outputs`), inside the block the caller's `commit` opens for the result (the
ledger's accounts): a failure anywhere leaves the previous ingest's outputs as they were.

Pass 1 is `plans`, `members` and `claims`, reading through `reading`, checking with `checks` and
staging through `staging`; pass 2 is `claim_keys`, then `buckets` with `members`, `bucket_lines`
and `totals`. `quarantine` keeps what is set aside and every file's tally.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.accumulators import ingest_accumulators
from pipeline.ingest.bucket_lines import BucketLines
from pipeline.ingest.buckets import write_buckets
from pipeline.ingest.claim_keys import claim_key_rejects
from pipeline.ingest.claims import DEFAULT_DAMAGE_LIMIT, DEFAULT_MAX_FIELD_BYTES, ClaimChecks, ClaimStaging
from pipeline.ingest.members import BucketMembers, MemberChecks, stage_members
from pipeline.ingest.outputs import StagedOutputs
from pipeline.ingest.plans import ingest_plans
from pipeline.ingest.quarantine import Quarantine, QuarantineLog
from pipeline.ingest.recipients import RecipientSplit
from pipeline.ingest.requests import Requests, ingest_requests
from pipeline.ingest.schema import extract_schema
from pipeline.ingest.sources import Extract, ExtractFile, open_extract
from pipeline.ledger import FileAccount
from pipeline.periods import parse_period
from pipeline.reason_codes import reason_table, remark_table

__all__ = ["DEFAULT_BUCKET_ROWS", "AccountingError", "IngestResult", "check_accounts", "ingest"]

log = logging.getLogger(__name__)

DEFAULT_BUCKET_ROWS = 250_000
CSV_BYTES_PER_LINE = 150  # a deliberately low guess: more, smaller buckets rather than fewer, big ones


class AccountingError(RuntimeError):
    """Rows read do not equal rows accepted plus rows quarantined: something was dropped."""


@dataclass(slots=True)
class IngestResult:
    """What one ingest accepted and set aside, per delivered file, and how long each phase took."""

    files: list[FileAccount] = field(default_factory=list)
    quarantined: QuarantineLog = field(default_factory=QuarantineLog)
    members: int = 0
    shard_lines: dict[int, int] = field(default_factory=dict)
    format: str = "canonical"
    buckets_per_shard: int = 1
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)  # per ingest phase, for ops and benchmarks

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files if f.kind == "claims")

    @property
    def rows_accepted(self) -> int:
        return sum(f.rows_accepted for f in self.files if f.kind == "claims")

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files if f.kind == "claims")


def ingest(folder: Path, out_dir: Path, shards: int, *, period: str | None = None,
           bucket_rows: int = DEFAULT_BUCKET_ROWS, source_format: str = "auto",
           commit: Callable[[IngestResult], AbstractContextManager[object]] | None = None,
           damage_limit: int = DEFAULT_DAMAGE_LIMIT,
           max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
           sensitive_policy: str = "separate") -> IngestResult:
    """Validate one period's extract into out_dir: plans, members, shard buckets, quarantine.

    `period` (YYYY-MM) enables the date checks against the statement period; without it they
    are skipped. A re-run replaces the previous ingest's outputs whole, and only once it has
    succeeded: they are swapped in inside the block `commit(result)` opens (the stage records the
    ledger's accounts there, committed when the block exits), and a failure anywhere, that
    commit included, leaves them as they were.

    A claims file's damaged rows (bytes that are not UTF-8, a NUL byte, a value longer than
    `max_field_bytes`) are quarantined; more than `damage_limit` of them refuse the file.

    Lines go under their statement's recipient: a patient with a confidential-communications
    request (the extract's `confidential_requests` file) or, under `sensitive_policy`
    `separate`, a dependent's sensitive service, gets a statement of their own
    (pipeline.ingest.recipients).
    """
    staged = StagedOutputs(out_dir)
    try:
        result = _ingest_into(folder, staged.new, shards, period, bucket_rows, source_format,
                              _Damage(damage_limit, max_field_bytes), sensitive_policy)
        try:
            with commit(result) if commit else nullcontext():
                staged.swap_in()
        except BaseException:
            staged.undo()
            raise
    finally:
        staged.discard()
    log.info("extract ingested", extra={"format": result.format, "lines_read": result.rows_read,
                                        "lines_accepted": result.rows_accepted,
                                        "lines_quarantined": result.rows_quarantined,
                                        "buckets": shards * result.buckets_per_shard})
    return result


@dataclass(frozen=True, slots=True)
class _Damage:
    """How much damage a claims file may have: damaged rows, and the longest value."""

    limit: int
    max_field_bytes: int


def _ingest_into(folder: Path, out_dir: Path, shards: int, period: str | None, bucket_rows: int,
                 source_format: str, damage: _Damage, sensitive_policy: str) -> IngestResult:
    """The whole ingest, into an empty folder: both passes, the accounts check, the manifest."""
    (out_dir / "quarantine").mkdir()
    extract = open_extract(folder, out_dir, period=period, fmt=source_format)
    per_shard = max(1, math.ceil(_estimate_lines(extract.claims) / shards / max(1, bucket_rows)))
    buckets = shards * per_shard
    period_end = parse_period(period)[1] if period else None
    staging = out_dir / "staging"
    quarantine = Quarantine(out_dir / "quarantine")
    members = BucketMembers(extract.members, staging / "members", quarantine)
    clock = _Clock()
    try:
        requests = ingest_requests(extract.requests, quarantine, parse_period(period) if period else None)
        _stage(extract, out_dir, buckets, period_end, quarantine, damage)
        clock.lap("members_and_claims")
        key_rejects = claim_key_rejects(staging, len(extract.claims), buckets)
        clock.lap("claim_keys")
        split = RecipientSplit(requests.table, sensitive_policy,
                               extract.requests.source_name if extract.requests else "", requests.held)
        lines = BucketLines(staging, extract.claims, key_rejects, quarantine, split.held_lines)
        shard_lines = write_buckets(out_dir, shards, buckets, members, lines, split)
        _unknown_members_of(requests, out_dir, quarantine)
        ingest_accumulators(extract.accumulators, out_dir, quarantine, period_end)
        clock.lap("buckets")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = IngestResult(files=quarantine.accounts(), quarantined=quarantine.log, members=members.accepted,
                          shard_lines=shard_lines, format=extract.format, buckets_per_shard=per_shard,
                          notes=extract.notes, seconds=clock.laps)
    check_accounts(result)
    _write_manifest(out_dir, result, period)
    return result


def _unknown_members_of(requests: Requests, out_dir: Path, quarantine: Quarantine) -> None:
    """Requests naming a member the member file does not have (or had quarantined) are set aside."""
    if requests.table.num_rows:
        known = pq.read_table(out_dir / "members.parquet", columns=["member_id"])["member_id"]
        requests.reject_unknown_members(known.combine_chunks(), quarantine)


def _stage(extract: Extract, out_dir: Path, buckets: int, period_end: date | None,
           quarantine: Quarantine, damage: _Damage) -> None:
    """Pass 1: plans checked and written; members and claims checked and staged by bucket."""
    plan_ids = ingest_plans(extract.plans, out_dir, quarantine)
    staging = out_dir / "staging"
    claims = ClaimStaging(staging, ClaimChecks(period_end, buckets, damage.max_field_bytes), quarantine,
                          damage.limit)
    with ThreadPoolExecutor(max_workers=1) as side:  # members and claims pass 1 share the cores
        members = side.submit(stage_members, extract.members, staging / "members",
                              MemberChecks(plan_ids, period_end, buckets), quarantine)
        for index, claims_file in enumerate(extract.claims):
            claims.stage(index, claims_file)
        members.result()


class _Clock:
    """Seconds per ingest phase, for operators and the benchmark."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 3)
        self.last = now


def check_accounts(result: IngestResult) -> None:
    """Fail the run when any file's rows read differ from its rows accepted plus quarantined."""
    for account in result.files:
        if account.rows_read != account.rows_accepted + account.rows_quarantined:
            raise AccountingError(
                f"{account.source_file}: {account.rows_read} rows read but "
                f"{account.rows_accepted} accepted + {account.rows_quarantined} quarantined")


def _estimate_lines(files: Sequence[ExtractFile]) -> int:
    """About how many claim lines there are, from file sizes: it sets the number of buckets."""
    total = 0
    for item in files:
        if item.path.suffix == ".parquet":
            try:
                total += pq.ParquetFile(item.path).metadata.num_rows
            except (pa.ArrowInvalid, OSError):
                total += 1  # unreadable: reported when the file is read
        else:
            total += item.path.stat().st_size // CSV_BYTES_PER_LINE
    return total


def _write_manifest(out_dir: Path, result: IngestResult, period: str | None) -> None:
    manifest = {"schema_version": extract_schema()["schema_version"], "period": period,
                "format": result.format, "shards": len(result.shard_lines),
                "buckets_per_shard": result.buckets_per_shard,
                "reason_table_version": reason_table().version,
                "remark_table_version": remark_table().version,
                "accumulators": (out_dir / "accumulators.parquet").exists(),
                "files": [{"source_file": f.source_file, "kind": f.kind, "rows_read": f.rows_read,
                           "rows_accepted": f.rows_accepted, "rows_quarantined": f.rows_quarantined}
                          for f in result.files]}
    (out_dir / "ingest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

