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
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pipeline.column_kernels import (
    CENTS_NEGATIVE,
    CENTS_OK,
    CHECK_SEED,
    civil_dates,
    dollars_to_cents,
    edges_may_need_trim,
    email_shapes,
    fold_hashes,
    fold_numbers,
    hash_values,
    seeded_hashes,
    string_buffers,
    sums_by_group,
)
from pipeline.ingest.patterns import matches
from pipeline.ingest.sources import Extract, ExtractFile, open_extract
from pipeline.ingest.sources.errors import ExtractFileError, ExtractSourceError, arrow_reason
from pipeline.ledger import FileAccount, QuarantineRow
from pipeline.periods import parse_period
from pipeline.templates import TEMPLATES_DIR

__all__ = [
    "LINE_SCHEMA", "MONEY_COLUMNS", "AccountingError", "ExtractFileError", "ExtractSourceError",
    "IngestResult", "LINE_TOTALS", "ReasonTable", "hash64", "ingest", "line_totals",
    "iter_buckets", "read_bucket_members",
    "member_buckets", "read_bucket_lines", "read_shard_lines", "reason_table", "shard_buckets", "shard_of",
    "text_batches",
]

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("extract_schema.json")
MONEY_COLUMNS = ["billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
                 "coinsurance", "not_covered"]
BATCH_BYTES = 8 << 20
PARSE_BLOCK_BYTES = 1 << 20
"""CSV is parsed in 1 MiB blocks (they stay in the processor's cache while the parser converts
them: about 15% less parse time than 8 MiB blocks) and checked in batches of eight, so each
check's fixed cost is spread over some 40,000 rows."""
PARQUET_BATCH_ROWS = 131_072
DEFAULT_BUCKET_ROWS = 250_000
_DICTIONARY_COLUMNS = ["patient_relationship", "provider_name", "provider_npi", "network", "service_code",
                       "service_description", "status", "reason_code", "service_code_system", "source_file",
                       "city", "state", "plan_id", "language", "line_of_business", "edelivery_consent"]


def parquet_options(schema: pa.Schema) -> dict[str, object]:
    """Statistics only where readers look for row groups (a bucket's members); dictionaries only where values
    repeat; no compression: the run's workspace is transient, and even lz4 cost more time to
    write than the space it saved was worth; values encoded 64k at a time, not 1k."""
    return {"compression": "none", "write_batch_size": 65536,
            "write_statistics": [name for name in ("bucket",) if name in schema.names],
            "use_dictionary": [name for name in _DICTIONARY_COLUMNS if name in schema.names]}


LOW_CARDINALITY = frozenset({"patient_relationship", "provider_name", "provider_npi", "network",
                             "service_code", "service_description", "status", "reason_code"})
"""Claim columns with few distinct values: read from CSV as dictionaries, so their checks and
hashes run once per distinct value and Parquet gets them already dictionary-encoded."""
_TEXT_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
CSV_BYTES_PER_LINE = 150  # a deliberately low guess: more, smaller buckets rather than fewer, big ones
_ORDER_SHIFT = 40  # order = file index << 40 | row number: first occurrence wins across files
NO_SURPRISES_CODES = ("99281", "99282", "99283", "99284", "99285", "99291", "99292", "A0430", "A0431",
                      "A0435", "A0436")
"""Emergency care and air ambulance: out of network, the No Surprises Act protects the member."""

LINE_SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("line_no", pa.int32()), ("member_id", pa.string()),
    ("patient_name", pa.string()), ("patient_relationship", pa.string()),
    ("provider_name", pa.string()), ("provider_npi", pa.string()), ("network", pa.string()),
    ("service_date", pa.date32()), ("received_date", pa.date32()), ("service_code", pa.string()),
    ("service_description", pa.string()), ("status", pa.string()), ("reason_code", pa.string()),
    *[(name, pa.int64()) for name in MONEY_COLUMNS],
    ("no_surprises", pa.bool_()), ("service_code_system", pa.string()),
    ("source_file", pa.string()), ("source_row", pa.int64()), ("shard", pa.int32()),
    ("bucket", pa.int32()), ("line_hash", pa.uint64()),
])
"""The canonical claim line: amounts in integer cents, one Parquet file per shard bucket.
`line_hash` fingerprints what a statement prints about the line (compose's content hash)."""
_HASHED_TEXT = ("claim_id", "patient_name", "patient_relationship", "provider_name", "provider_npi",
                "network", "service_code", "service_description", "status", "reason_code")
_HASHED_NUMBERS = ("line_no", "service_date", "received_date", *MONEY_COLUMNS)

MEMBER_FIELDS = pa.schema([
    ("member_id", pa.string()), ("first_name", pa.string()), ("last_name", pa.string()),
    ("date_of_birth", pa.date32()), ("address_line1", pa.string()), ("address_line2", pa.string()),
    ("city", pa.string()), ("state", pa.string()), ("postal_code", pa.string()),
    ("email", pa.string()), ("language", pa.string()), ("plan_id", pa.string()),
    ("group_number", pa.string()), ("line_of_business", pa.string()),
    ("edelivery_consent", pa.string()), ("ytd_deductible", pa.int64()),
    ("ytd_out_of_pocket", pa.int64()), ("email_valid", pa.bool_()), ("source_file", pa.string()),
    ("source_row", pa.int64()), ("shard", pa.int32()), ("bucket", pa.int32()),
])
LINE_TOTALS = pa.schema([
    ("line_count", pa.int32()), *[(f"lines_{name}", pa.int64()) for name in MONEY_COLUMNS],
    ("lines_hash", pa.uint64()), ("lines_adverse", pa.bool_()), ("lines_no_surprises", pa.bool_()),
    ("earliest_adverse_received", pa.date32()),
])
"""Per member, what compose needs of the member's accepted lines: their count, the sums of
each amount, the wrapping sum of their hashes, whether any is denied or reduced (and the
earliest such line's received date) and whether any has No Surprises protection."""
MEMBER_SCHEMA = pa.schema([*MEMBER_FIELDS, *LINE_TOTALS])
"""members.parquet: the member file's accepted rows plus their line totals for the period."""


PLAN_SCHEMA = pa.schema([
    ("plan_id", pa.string()), ("plan_name", pa.string()), ("brand", pa.string()),
    ("deductible_limit", pa.int64()), ("out_of_pocket_limit", pa.int64()),
])


class AccountingError(RuntimeError):
    """Rows read do not equal rows accepted plus rows quarantined: something was dropped."""


# -- the schema ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # string, enum, date, money, integer
    required: bool
    optional_column: bool = False
    pattern: str | None = None
    values: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FileSpec:
    kind: str
    columns: tuple[Column, ...]
    rules: dict[str, tuple[str, str]]  # rule id -> (field, reason)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.optional_column]

    def rule(self, rule_id: str) -> tuple[str, str]:
        return self.rules[rule_id]


@cache
def extract_schema() -> dict:  # type: ignore[type-arg]
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


@cache
def file_spec(kind: str) -> FileSpec:
    raw = extract_schema()
    spec = raw["files"][kind]
    rules = {r["id"]: (r["field"], r["reason"])
             for r in [*spec.get("rules", []), *raw.get(f"{kind[:-1]}_rules", [])]}
    columns = tuple(Column(
        name=c["name"], type=c["type"], required=c["required"],
        optional_column=c.get("optional_column", False), pattern=c.get("pattern"),
        values=tuple(c.get("values", ())), minimum=c.get("min"), maximum=c.get("max"),
        reason=c.get("reason")) for c in spec["columns"])
    return FileSpec(kind, columns, rules)


# -- the reason-code table -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReasonTable:
    """templates/reason_codes.csv: group-coded CARC → plain-language text, one version per file."""

    version: str
    rows: dict[str, dict[str, str]]

    @property
    def codes(self) -> list[str]:
        return sorted(self.rows)

    @property
    def with_provision(self) -> list[str]:
        return sorted(code for code, row in self.rows.items() if row["plan_provision"].strip())

    def by_carc(self, carc: str) -> list[str]:
        """Group-coded entries for a bare CARC number ("45" → ["CO-45"])."""
        return sorted(code for code in self.rows if code.split("-", 1)[1] == carc)


class ReasonTableError(ValueError):
    """The reason-code table is malformed; the message names the row."""


@cache
def reason_table(path: Path = TEMPLATES_DIR / "reason_codes.csv") -> ReasonTable:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    versions = {row["table_version"] for row in rows}
    if len(versions) != 1:
        raise ReasonTableError(f"{path.name}: rows carry several table versions {sorted(versions)}")
    table: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        if row["code"] in table:
            raise ReasonTableError(f"{path.name}: row {number} repeats code {row['code']}")
        if not row["text_en"].strip():
            raise ReasonTableError(f"{path.name}: row {number} has no English text")
        table[row["code"]] = row
    return ReasonTable(versions.pop(), table)


# -- stable hashing ------------------------------------------------------------------------
_P2, _P3 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    h = (h ^ (h >> np.uint64(30))) * _P2
    h = (h ^ (h >> np.uint64(27))) * _P3
    return h ^ (h >> np.uint64(31))  # type: ignore[no-any-return]


def hash64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per string, the same on every machine and run (unlike Python's hash()).
    Nulls hash like empty strings."""
    if isinstance(values, pa.ChunkedArray):
        parts = [hash64(chunk) for chunk in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    if values.type != pa.string():
        values = values.cast(pa.string())
    return hash_values(*string_buffers(values))  # type: ignore[no-any-return]


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """hash64, through a dictionary when the strings are long and repeat (provider names) or
    when the column is one already."""
    if isinstance(values, pa.ChunkedArray):
        parts = [hash_strings(chunk) for chunk in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    if len(values) == 0:
        return np.zeros(0, np.uint64)
    if pa.types.is_dictionary(values.type):
        return hash64(values.dictionary)[values.indices.to_numpy(zero_copy_only=False)]
    longest = pc.max(pc.binary_length(values)).as_py() or 0
    if longest <= 32:
        return hash64(values)
    encoded = pc.dictionary_encode(values)
    return hash64(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]


def _as_u64(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """_integers as their 64-bit two's complement, for hashing."""
    return _integers(column).astype(np.int64).view(np.uint64)  # type: ignore[no-any-return]


def line_hashes(lines: pa.Table, known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A 64-bit fingerprint per line over everything the statement prints about it (`known`:
    hash_strings of some columns, already computed)."""
    h = np.full(lines.num_rows, np.uint64(0x2545F4914F6CDD1D), np.uint64)
    for name in _HASHED_TEXT:
        column = _plain_text(lines[name]) if lines[name].num_chunks != 1 else lines[name].chunk(0)
        if known and name in known:
            fold_numbers(h, known[name])
        elif pa.types.is_dictionary(column.type) and not column.null_count:
            fold_hashes(h, hash64(column.dictionary), column.indices.to_numpy())
        else:
            fold_numbers(h, hash_strings(column))
    for name in _HASHED_NUMBERS:
        fold_numbers(h, _integers(lines[name]))
    return _mix(h)


def _integers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An integer or date column as numbers (nulls as 0), without a copy where there are none."""
    values = pc.fill_null(column, 0) if column.null_count else column
    values = _plain_text(values)
    if pa.types.is_date32(values.type):
        values = values.view(pa.int32())
    return values.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def line_totals(lines: pa.Table, owners: np.ndarray, members: int) -> pa.Table:
    """LINE_TOTALS of a bucket's lines for each of its `members` (owners: each line's member
    row), in any order: exact integer sums (the 64-bit hashes wrap, like a uint64 sum); a member
    without lines has a count of 0."""

    def total(values: np.ndarray) -> np.ndarray:
        return sums_by_group(owners, values, members)  # type: ignore[no-any-return]

    adverse = per_value(_plain_text(lines["status"]),
                        lambda values: pc.not_equal(values, "paid").to_numpy(zero_copy_only=False))
    received = _integers(lines["received_date"])
    earliest = np.full(members, np.iinfo(np.int32).max, np.int64)
    np.minimum.at(earliest, owners[adverse], received[adverse])
    no_surprises = pc.fill_null(lines["no_surprises"], False).to_numpy(zero_copy_only=False)
    columns = {
        "line_count": pa.array(np.bincount(owners, minlength=members), pa.int32()),
        **{f"lines_{name}": pa.array(total(_integers(lines[name]))) for name in MONEY_COLUMNS},
        "lines_hash": pa.array(total(_integers(lines["line_hash"]))),
        "lines_adverse": pa.array(total(adverse.astype(np.int64)) > 0),
        "lines_no_surprises": pa.array(total(no_surprises.astype(np.int64)) > 0),
        "earliest_adverse_received": pc.cast(pa.array(earliest.astype(np.int32),
                                                      mask=earliest == np.iinfo(np.int32).max), pa.date32()),
    }
    return pa.table(columns, schema=LINE_TOTALS)


def _plain_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def shard_of(member_id: str, shards: int) -> int:
    """Stable shard of a member; bucket % shards gives the same answer for every bucket count."""
    return int(hash64(pa.array([member_id]))[0] % np.uint64(shards))


def buckets_of(member_ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    return (hash64(member_ids) % np.uint64(buckets)).astype(np.int32)


# -- results -------------------------------------------------------------------------------
class QuarantineLog(Sequence[QuarantineRow]):
    """Every quarantined row (file, row, field, reason), kept columnar: compact for big runs."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, pa.Table]] = []
        self._length = 0

    def add(self, source: str, rows: np.ndarray, fields: pa.Array, reasons: pa.Array) -> None:
        if len(rows):
            self._parts.append((source, pa.table({"row": pa.array(rows, pa.int64()),
                                                  "field": fields, "reason": reasons})))
            self._length += len(rows)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[QuarantineRow]:
        for source, table in self._parts:
            for row, fld, reason in zip(*(table[c].to_pylist() for c in ("row", "field", "reason")),
                                        strict=True):
                yield QuarantineRow(source, row, fld, reason)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        return list(self)[index]

    def drop(self, source: str) -> None:
        """Forget one file's rows (the file is about to be read again)."""
        self._parts = [(s, t) for s, t in self._parts if s != source]
        self._length = sum(t.num_rows for _, t in self._parts)


@dataclass(slots=True)
class IngestResult:
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


@dataclass(slots=True)
class _Tally:
    """Per delivered file: what was read, what was set aside, what reached the canonical output."""

    file: ExtractFile
    read: int = 0
    quarantined: int = 0
    accepted: int = 0


# -- the entry point -----------------------------------------------------------------------
def ingest(folder: Path, out_dir: Path, shards: int, *, period: str | None = None,
           bucket_rows: int = DEFAULT_BUCKET_ROWS, source_format: str = "auto") -> IngestResult:
    """Validate one period's extract into out_dir: plans, members, shard buckets, quarantine.

    `period` (YYYY-MM) enables the date checks against the statement period; without it they
    are skipped. Re-running starts the run's ingest output over.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("quarantine", "staging", "lines", "mapped"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    (out_dir / "quarantine").mkdir()
    extract = open_extract(folder, out_dir, period=period, fmt=source_format)
    per_shard = max(1, math.ceil(_estimate_lines(extract.claims) / shards / max(1, bucket_rows)))
    job = _Job(out_dir, shards, shards * per_shard, period, extract)
    clock = _Clock()
    try:
        job.plans()
        with ThreadPoolExecutor(max_workers=1) as side:  # members and claims pass 1 share the cores
            members = side.submit(job.stage_members)
            for index, claims_file in enumerate(extract.claims):
                job.stage_claims(index, claims_file)
            members.result()
        clock.lap("members_and_claims")
        shard_lines = job.finish_buckets(clock)
    finally:
        shutil.rmtree(out_dir / "staging", ignore_errors=True)
    result = IngestResult(files=job.accounts(), quarantined=job.quarantine, members=job.members_accepted,
                          shard_lines=shard_lines, format=extract.format, buckets_per_shard=per_shard,
                          notes=extract.notes, seconds=clock.laps)
    check_accounts(result)
    _write_manifest(out_dir, result, period)
    log.info("extract ingested", extra={"format": extract.format, "lines_read": result.rows_read,
                                        "lines_accepted": result.rows_accepted,
                                        "lines_quarantined": result.rows_quarantined,
                                        "buckets": shards * per_shard})
    return result


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 3)
        self.last = now


def check_accounts(result: IngestResult) -> None:
    for account in result.files:
        if account.rows_read != account.rows_accepted + account.rows_quarantined:
            raise AccountingError(
                f"{account.source_file}: {account.rows_read} rows read but "
                f"{account.rows_accepted} accepted + {account.rows_quarantined} quarantined")


def _estimate_lines(files: Sequence[ExtractFile]) -> int:
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
                "files": [{"source_file": f.source_file, "kind": f.kind, "rows_read": f.rows_read,
                           "rows_accepted": f.rows_accepted, "rows_quarantined": f.rows_quarantined}
                          for f in result.files]}
    (out_dir / "ingest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


# -- reading -------------------------------------------------------------------------------
class _InvalidRows:
    """Rows whose field count is wrong: pyarrow skips them and we account for them."""

    def __init__(self) -> None:
        self.found: list[tuple[int | None, int, int]] = []  # (row number, expected, actual)

    def __call__(self, row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None and row.number >= 0 else None
        self.found.append((number, row.expected_columns, row.actual_columns))
        return "skip"


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise ExtractFileError(f"{path.name}: the file is not UTF-8 text") from None
    except csv.Error:
        raise ExtractFileError(f"{path.name}: the header line is not valid CSV") from None


def _check_header(item: ExtractFile, names: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in names]
    if missing:
        hint = " (is the delimiter a comma?)" if len(names) == 1 else ""
        raise ExtractFileError(f"{item.source_name}: missing column(s) {', '.join(missing)}{hint}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ExtractFileError(f"{item.source_name}: column(s) {', '.join(repeated)} appear twice")


def _batches(item: ExtractFile, spec: FileSpec, invalid: _InvalidRows) -> Iterator[pa.RecordBatch]:
    """String-typed record batches, so values like "00123" and "12O.00" reach validation intact."""
    if item.path.suffix == ".parquet":
        yield from _parquet_batches(item, spec)
        return
    names = _csv_header(item.path)
    _check_header(item, names, spec.required_columns)
    wanted = [n for n in names if n in spec.names or n.startswith("_")]
    # a native file: no Python in the read path, and the reader reads ahead a bounded number of
    # blocks (Arrow's background queue: 32), so with 1 MiB blocks memory does not grow with the file
    source = pa.OSFile(str(item.path))
    blocks = BATCH_BYTES // PARSE_BLOCK_BYTES
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=PARSE_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _TEXT_DICTIONARY if n in LOW_CARDINALITY else pa.string() for n in names},
                include_columns=wanted,
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        pending: list[pa.RecordBatch] = []
        for batch in reader:
            pending.append(batch)
            if len(pending) == blocks:
                yield _joined(pending)
                pending = []
        if pending:
            yield _joined(pending)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ExtractFileError(f"{item.source_name}: {arrow_reason(exc)}") from None
    finally:
        source.close()


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """Parsed blocks as one batch, their dictionaries merged."""
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).unify_dictionaries().combine_chunks().to_batches()[0]


def text_batches(item: ExtractFile) -> Iterator[pa.RecordBatch]:
    """The file's record batches as validation first sees them (text, before any check): for
    measuring what reading alone costs."""
    yield from _batches(item, file_spec(item.kind), _InvalidRows())


def _parquet_batches(item: ExtractFile, spec: FileSpec) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(item.path)
        names = parquet.schema_arrow.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise ExtractFileError(
            f"{item.source_name}: not a readable Parquet file ({arrow_reason(exc)})") from None
    _check_header(item, names, spec.required_columns)
    wanted = [n for n in names if n in spec.names or n.startswith("_")]
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            yield pa.RecordBatch.from_arrays(
                [_as_text(batch.column(i)) for i in range(batch.num_columns)], names=batch.schema.names)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise ExtractFileError(
            f"{item.source_name}: not a readable Parquet file ({arrow_reason(exc)})") from None


def _as_text(column: pa.Array) -> pa.Array:
    """Any Parquet column as text, as a CSV export would show it (nulls become empty)."""
    if pa.types.is_floating(column.type):
        # 12.3 stays "12.3"; validation rejects more than two decimals
        column = pc.cast(column, pa.string())
    elif not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, "")


def _row_numbers(first_row: int, start: int, count: int, skipped: np.ndarray) -> np.ndarray:
    """File row numbers of delivered records start..start+count, given rows the reader skipped."""
    delivered = np.arange(start, start + count, dtype=np.int64)
    if not len(skipped):
        return delivered + first_row
    marks = skipped - first_row - np.arange(len(skipped))  # delivered index at each skip
    return delivered + first_row + np.searchsorted(marks, delivered, side="right")


def _bad_field_count_rows(path: Path, expected: int) -> list[tuple[int, int, int]]:
    """(row number, expected, actual) of rows with the wrong number of fields (csv module scan).

    Rows are numbered as records, the header being 1; blank lines are not rows (pyarrow skips
    them too), and a quoted value with a line break does not start a new row."""
    found, number = [], 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            if not row:
                continue
            number += 1
            if number > 1 and len(row) != expected:
                found.append((number, expected, len(row)))
    return found


# -- row checks ----------------------------------------------------------------------------
class _Problems:
    """First problem per row of a batch: (field, reason); later checks don't overwrite it.

    Kept as one small integer per row (an index into the batch's list of problems), so a
    check costs a numpy mask and the text is built only for the rows set aside."""

    def __init__(self, n: int, fields: pa.Array | None = None, reasons: pa.Array | None = None) -> None:
        self.codes = np.zeros(n, np.int16)
        self.kinds: list[tuple[str | None, str | None]] = [(None, None)]
        if fields is not None and reasons is not None:
            preset = pc.is_valid(fields).to_numpy(zero_copy_only=False)
            at = np.flatnonzero(preset)  # rows a source mapping could not map: few
            pairs = zip(fields.take(pa.array(at)).to_pylist(), reasons.take(pa.array(at)).to_pylist(),
                        strict=True)
            for row, pair in zip(at.tolist(), pairs, strict=True):
                self.codes[row] = self._kind(*pair)

    def _kind(self, field_name: str | None, reason: str | None) -> int:
        if (field_name, reason) not in self.kinds:
            self.kinds.append((field_name, reason))
        return self.kinds.index((field_name, reason))

    def flag(self, mask: pa.Array | pa.ChunkedArray | np.ndarray, field_name: str, reason: str) -> None:
        if not isinstance(mask, np.ndarray):
            mask = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        fresh = mask & (self.codes == 0)
        if fresh.any():
            self.codes[fresh] = self._kind(field_name, reason)

    @property
    def bad(self) -> np.ndarray:
        return self.codes != 0

    def described(self, rows: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """(field, reason) text of the given rows."""
        kinds = self.codes[rows]
        fields = pa.array([field for field, _ in self.kinds], pa.string())
        reasons = pa.array([reason for _, reason in self.kinds], pa.string())
        return pc.take(fields, pa.array(kinds)), pc.take(reasons, pa.array(kinds))


def _text_columns(batch: pa.RecordBatch, spec: FileSpec) -> dict[str, pa.Array]:
    """Every schema column as text, trimmed where spaces would change the check (codes, dates,
    amounts, required values); optional columns the file lacks are empty."""
    names = batch.schema.names
    out = {}
    for column in spec.columns:
        value = (batch.column(names.index(column.name)) if column.name in names
                 else pa.repeat("", batch.num_rows))
        if value.null_count:
            value = pc.fill_null(value.cast(pa.string()), "")
        if column.name in LOW_CARDINALITY and not pa.types.is_dictionary(value.type):
            value = pc.dictionary_encode(value)  # the same types whatever the source format
        if column.required or column.type != "string" or column.pattern:
            value = _trimmed(value)
        out[column.name] = value
    return out


def _trimmed(value: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(value.type):
        if not _may_need_trim(value.dictionary):
            return value
        return pa.DictionaryArray.from_arrays(value.indices, pc.utf8_trim_whitespace(value.dictionary))
    return pc.utf8_trim_whitespace(value) if _may_need_trim(value) else value


def per_value(value: pa.Array, check: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """check(values) as one boolean per row; for a dictionary column, once per distinct value."""
    if pa.types.is_dictionary(value.type):
        distinct = np.asarray(check(value.dictionary))
        if distinct.dtype == bool and len(distinct) and (distinct.all() or not distinct.any()):
            return np.full(len(value), distinct[0])  # the usual case: every value passes alike
        return distinct[value.indices.to_numpy(zero_copy_only=False)]
    return np.asarray(check(value))


def _nonempty(values: pa.Array) -> np.ndarray:
    if values.type == pa.string() and isinstance(values, pa.Array):
        return np.diff(string_buffers(values)[0]) > 0  # type: ignore[no-any-return]
    return pc.binary_length(values).to_numpy(zero_copy_only=False) > 0  # type: ignore[no-any-return]


def _among(choices: Sequence[str]) -> Callable[[pa.Array], np.ndarray]:
    allowed = pa.array(list(choices), pa.string())
    return lambda values: pc.is_in(values, allowed).to_numpy(zero_copy_only=False)


def _may_need_trim(value: pa.Array) -> bool:
    """False when no value starts or ends with a byte that could be whitespace (ASCII whitespace
    or any non-ASCII byte): then trimming would change nothing, and its copy is skipped."""
    if not isinstance(value, pa.Array) or value.type != pa.string() or value.null_count:
        return True
    return bool(len(value)) and bool(edges_may_need_trim(*string_buffers(value)))


def _check_columns(text: dict[str, pa.Array], spec: FileSpec, problems: _Problems) -> dict[str, pa.Array]:
    """Per-column checks in schema order; returns the typed values (invalid ones null)."""
    typed: dict[str, pa.Array] = {}
    for column in spec.columns:
        value = text[column.name]
        present = per_value(value, _nonempty)
        if column.required:
            problems.flag(~present, column.name, "required value is empty")
        if column.type == "date":
            typed[column.name] = _date(value, present, column, problems)
        elif column.type == "money":
            typed[column.name] = _cents(value, present, column, problems)
        elif column.type == "integer":
            typed[column.name] = _integer(value, present, column, problems)
        else:
            if column.type == "enum":
                known = per_value(value, _among(column.values))
                problems.flag(present & ~known, column.name,
                              column.reason or f"must be one of {', '.join(column.values)}")
            if column.pattern:
                shaped = per_value(value, partial(matches, pattern=column.pattern))
                problems.flag(present & ~shaped, column.name, column.reason or "not in the expected format")
            typed[column.name] = value
    return typed


def _date(value: pa.Array, present: np.ndarray, column: Column, problems: _Problems) -> pa.Array:
    """YYYY-MM-DD: the shape (the schema's date pattern, which a test keeps equal to this), a real
    calendar day (no 02-30), not before the schema's earliest date."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    days, real = civil_dates(*string_buffers(value))
    problems.flag(present & ~real, column.name,
                  column.reason or "not a valid date (expected YYYY-MM-DD)")
    earliest = date.fromisoformat(extract_schema()["date"]["min"])
    problems.flag(present & real & (days < (earliest - date(1970, 1, 1)).days), column.name,
                  f"date is before {earliest.isoformat()}")
    return pc.cast(pa.array(days, mask=~real), pa.date32())


def _cents(value: pa.Array, present: np.ndarray, column: Column, problems: _Problems) -> pa.Array:
    """Exact integer cents of the schema's money pattern, read digit by digit (no float)."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    cents, codes = dollars_to_cents(*string_buffers(value))
    valid = codes == CENTS_OK
    all_valid = bool(valid.all())
    if not all_valid:
        problems.flag(present & (codes == CENTS_NEGATIVE), column.name, "negative amount")
        problems.flag(present & ~valid, column.name, "not an amount in dollars and cents (e.g. 123.45)")
    limit = extract_schema()["money"]["max_line_cents"]
    if len(cents) and cents.max() > limit:
        problems.flag(cents > limit, column.name, "amount is implausibly large")
    if all_valid or column.required:
        return pa.array(cents, pa.int64())
    return pa.array(cents, pa.int64(), mask=~valid)


def _integer(value: pa.Array, present: np.ndarray, column: Column, problems: _Problems) -> pa.Array:
    valid = matches(value, r"^\d{1,9}$")
    number = pc.cast(value if valid.all() else pc.if_else(pa.array(valid), value, "0"), pa.int64())
    in_range = valid
    numbers = number.to_numpy(zero_copy_only=False)
    if column.minimum is not None:
        in_range = in_range & (numbers >= column.minimum)
    if column.maximum is not None:
        in_range = in_range & (numbers <= column.maximum)
    problems.flag(present & ~in_range, column.name,
                  column.reason or "not a whole number in the allowed range")
    return number


def _claim_rules(typed: dict[str, pa.Array], spec: FileSpec, problems: _Problems,
                 period_end: date | None) -> None:
    """Checks across fields of one claim line (the schema's claims rules, except member/duplicate)."""
    service, received = typed["service_date"], typed["received_date"]
    problems.flag(pc.less(received, service), *spec.rule("received_after_service"))
    if period_end is not None:
        end = pa.scalar(period_end, pa.date32())
        problems.flag(pc.greater(service, end), *spec.rule("service_not_after_period"))
        problems.flag(pc.greater(received, end), *spec.rule("received_not_after_period"))
    parts = typed[MONEY_COLUMNS[1]]
    for name in MONEY_COLUMNS[2:]:
        parts = pc.add(parts, typed[name])
    problems.flag(pc.not_equal(typed["billed"], parts), *spec.rule("billed_reconciles"))
    status, reason = typed["status"], typed["reason_code"]
    adverse = per_value(status, _among(["denied", "partial"]))
    has_reason = per_value(reason, _nonempty)
    table = reason_table()
    problems.flag(adverse & ~has_reason, *spec.rule("adverse_has_reason"))
    problems.flag(has_reason & ~per_value(reason, _among(table.codes)), *spec.rule("reason_code_known"))
    problems.flag(adverse & has_reason & ~per_value(reason, _among(table.with_provision)),
                  *spec.rule("adverse_reason_has_provision"))
    denied = per_value(status, _among(["denied"]))
    problems.flag(denied & (typed["plan_paid"].to_numpy(zero_copy_only=False) > 0),
                  *spec.rule("denied_without_payment"))


def _no_surprises(typed: dict[str, pa.Array]) -> pa.Array:
    """Explicit Y/N wins; otherwise out of network and an emergency or air-ambulance code."""
    derived = (per_value(typed["network"], _among(["out"]))
               & per_value(typed["service_code"], _among(NO_SURPRISES_CODES)))
    flag = typed["no_surprises"]
    if not per_value(flag, _nonempty).any():  # the usual case: no explicit flags at all
        return pa.array(derived)
    return pa.array(np.where(per_value(flag, _among([""])), derived, per_value(flag, _among(["Y"]))))


# -- the job -------------------------------------------------------------------------------
class _Job:
    """One ingest: staging, quarantine files and the per-file tallies it keeps on the way."""

    def __init__(self, out_dir: Path, shards: int, buckets: int, period: str | None,
                 extract: Extract) -> None:
        self.out_dir, self.shards, self.buckets = out_dir, shards, buckets
        self.period_end = parse_period(period)[1] if period else None
        self.extract = extract
        self.quarantine = QuarantineLog()
        self.tallies: dict[str, _Tally] = {}
        self.claim_names: list[str] = []
        self.members_accepted = 0
        self.plan_ids: pa.Array = pa.array([], pa.string())
        self.key_rejects = _KEY_REJECTS.empty_table()

    # accounts
    def tally(self, item: ExtractFile) -> _Tally:
        return self.tallies.setdefault(item.source_name, _Tally(item))

    def accounts(self) -> list[FileAccount]:
        return [FileAccount(t.file.source_name, t.file.kind, t.read, t.accepted, t.quarantined)
                for t in self.tallies.values()]

    def reject(self, item: ExtractFile, rows: np.ndarray, fields: pa.Array, reasons: pa.Array,
               values: pa.Table, details: pa.Array | None = None) -> None:
        """Quarantine rows: the ledger gets file/row/field/reason, the CSV also the values."""
        if not len(rows):
            return
        self.quarantine.add(item.source_name, rows, fields, reasons)
        self.tally(item).quarantined += len(rows)
        path = self.out_dir / "quarantine" / f"{Path(item.source_name).stem}.quarantine.csv"
        detail = details if details is not None else pa.array([""] * len(rows), pa.string())
        table = pa.table({"row_number": pa.array(rows, pa.int64()), "field": fields, "reason": reasons,
                          "detail": detail, **{n: _display(values[n]) for n in values.column_names}})
        exists = path.exists()
        with path.open("ab") as handle:
            pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=not exists))

    # plans
    def plans(self) -> None:
        """Plans are few: read whole, checked, written; members are checked against them."""
        item, spec = self.extract.plans, file_spec("plans")
        invalid = _InvalidRows()
        batches = list(_batches(item, spec, invalid))
        self._refuse_invalid_rows(item, invalid)
        tally = self.tally(item)
        rows_in = sum(b.num_rows for b in batches)
        batch = pa.Table.from_batches(batches).combine_chunks().to_batches()[0] if rows_in else None
        if batch is None:
            pq.write_table(PLAN_SCHEMA.empty_table(), self.out_dir / "plans.parquet")
            return
        text = _text_columns(batch, spec)
        problems = _Problems(batch.num_rows)
        typed = _check_columns(text, spec, problems)
        repeated = pc.is_in(typed["plan_id"], pa.array(_repeated(typed["plan_id"]), pa.string()))
        problems.flag(pc.and_(repeated, pc.not_equal(typed["plan_id"], "")), *spec.rule("plan_unique"))
        rows = _row_numbers(item.first_row, 0, batch.num_rows, np.zeros(0, np.int64))
        tally.read += batch.num_rows
        good = pa.array(~problems.bad)
        self._reject_batch(item, rows, problems, text, spec)
        table = pa.table({name: pc.filter(typed[name], good) for name in PLAN_SCHEMA.names},
                         schema=PLAN_SCHEMA)
        pq.write_table(table, self.out_dir / "plans.parquet")
        tally.accepted += table.num_rows
        self.plan_ids = table["plan_id"].combine_chunks()

    def _refuse_invalid_rows(self, item: ExtractFile, invalid: _InvalidRows) -> None:
        """Reference files (members, plans) must be whole: a broken row there fails the file."""
        if invalid.found:
            rows = [n for n, _, _ in invalid.found if n is not None] or [
                n for n, _, _ in _bad_field_count_rows(item.path, len(_csv_header(item.path)))]
            raise ExtractFileError(f"{item.source_name}: rows {rows[:10]} have the wrong number of fields")

    def _reject_batch(self, item: ExtractFile, rows: np.ndarray, problems: _Problems,
                      text: dict[str, pa.Array], spec: FileSpec, refs: pa.Array | None = None) -> None:
        rejected = _rejected(rows, problems, text, spec, refs)
        if rejected is not None:
            self.reject(item, *rejected)

    # members
    def stage_members(self) -> None:
        item, spec = self.extract.members, file_spec("members")
        invalid = _InvalidRows()
        stage = _Stage(self.out_dir / "staging" / "members")
        delivered = 0
        tally = self.tally(item)
        try:
            with _Ordered(workers=1) as work:  # alongside the claims' two: one checker is enough
                for batch in _batches(item, spec, invalid):
                    rows = _source_rows(batch)
                    if rows is None:
                        rows = _row_numbers(item.first_row, delivered, batch.num_rows, np.zeros(0, np.int64))
                    delivered += batch.num_rows
                    work.submit(self._check_members, partial(self._apply, item, stage, None), batch, rows)
        finally:
            stage.close()
        self._refuse_invalid_rows(item, invalid)
        tally.read += delivered

    def _check_members(self, batch: pa.RecordBatch, rows: np.ndarray) -> _Checked:
        spec = file_spec("members")
        text = _text_columns(batch, spec)
        problems = _Problems(batch.num_rows)
        typed = _check_columns(text, spec, problems)
        problems.flag(pc.and_(pc.not_equal(typed["plan_id"], ""),
                              pc.invert(pc.is_in(typed["plan_id"], self.plan_ids))),
                      *spec.rule("plan_known"))
        if self.period_end is not None:
            problems.flag(pc.greater(typed["date_of_birth"], pa.scalar(self.period_end, pa.date32())),
                          "date_of_birth", "date of birth is after the statement period")
        kept_at = np.flatnonzero(~problems.bad)
        buckets = buckets_of(typed["member_id"], self.buckets)[kept_at]
        by_bucket = _grouping(buckets)  # one take: accepted rows, grouped by bucket
        kept_at, buckets = kept_at[by_bucket], buckets[by_bucket]
        taken = pa.array(kept_at)
        columns = {name: pc.take(typed[name], taken) for name in spec.names}
        columns["email_valid"] = pa.array(email_shapes(*string_buffers(_plain_text(columns["email"]))))
        columns["source_row"] = pa.array(rows[kept_at], pa.int64())
        staged = _slices(pa.table(columns), buckets)
        return _Checked(_rejected(rows, problems, text, spec, _refs(batch)), staged, [])

    def _apply(self, item: ExtractFile, stage: _Stage, keys_stage: _Stage | None, checked: _Checked) -> None:
        """In the reading thread, in file order: quarantine rows, then staged parts."""
        if checked.rejected is not None:
            self.reject(item, *checked.rejected)
        stage.write_parts(checked.staged)
        if keys_stage is not None:
            keys_stage.write_parts(checked.keys)

    # claims
    def stage_claims(self, index: int, item: ExtractFile) -> None:
        self.claim_names.append(item.source_name)
        invalid = _InvalidRows()
        try:
            self._claims_pass(index, item, invalid, None)
        except _RowsShifted:  # rows with a wrong field count: number them with the csv module
            found = _bad_field_count_rows(item.path, len(_csv_header(item.path)))
            self._discard(index, item)
            invalid = _InvalidRows()
            self._claims_pass(index, item, invalid, np.array([n for n, _, _ in found], np.int64))
            if len(invalid.found) != len(found):
                raise ExtractFileError(f"{item.source_name}: rows with a wrong number of fields could "
                                       "not be located; check quoting in the file") from None
            invalid.found = list(found)
        self._reject_broken_rows(item, invalid.found)

    def _reject_broken_rows(self, item: ExtractFile, found: list[tuple[int | None, int, int]]) -> None:
        if not found:
            return
        spec = file_spec("claims")
        ordered = sorted(found, key=lambda f: f[0] or 0)
        rows = np.array([n or 0 for n, _, _ in ordered], np.int64)
        reasons = [f"has {actual} fields, the header has {expected}" for _, expected, actual in ordered]
        self.reject(item, rows, pa.array(["(row)"] * len(rows)), pa.array(reasons, pa.string()),
                    pa.table({n: pa.array([""] * len(rows), pa.string()) for n in spec.names}))
        self.tally(item).read += len(rows)

    def _claims_pass(self, index: int, item: ExtractFile, invalid: _InvalidRows,
                     known: np.ndarray | None) -> None:
        """One streaming pass. Rows pyarrow skips (wrong field count) shift the numbers of the
        rows after them: the first pass stops at the first one, the second knows them all."""
        stage = _Stage(self.out_dir / "staging" / f"claims-{index:04d}")
        keys_stage = _Stage(self.out_dir / "staging" / f"keys-{index:04d}")
        delivered = 0
        try:
            with _Ordered() as work:  # check batches N and N+1 while pyarrow parses N+2
                apply = partial(self._apply, item, stage, keys_stage)
                for batch in _batches(item, file_spec("claims"), invalid):
                    if known is None and invalid.found:
                        raise _RowsShifted
                    skipped = known if known is not None else np.zeros(0, np.int64)
                    rows = _source_rows(batch)
                    if rows is None:
                        rows = _row_numbers(item.first_row, delivered, batch.num_rows, skipped)
                    delivered += batch.num_rows
                    work.submit(self._check_claims, apply, index, batch, rows)
        finally:
            stage.close()
            keys_stage.close()
        if known is None and invalid.found:
            raise _RowsShifted
        self.tally(item).read += delivered

    def _check_claims(self, index: int, batch: pa.RecordBatch, rows: np.ndarray) -> _Checked:
        """Pure per-batch work (runs in a worker thread): checks, typed columns, bucket parts."""
        spec = file_spec("claims")
        text = _text_columns(batch, spec)
        problems = _Problems(batch.num_rows, *_preset_problems(batch))
        typed = _check_columns(text, spec, problems)
        _claim_rules(typed, spec, problems, self.period_end)
        rejected = _rejected(rows, problems, text, spec, _refs(batch))
        kept_at = np.flatnonzero(~problems.bad)
        if not len(kept_at):
            return _Checked(rejected, [], [])
        member_hash = hash64(typed["member_id"])[kept_at]
        buckets = (member_hash % np.uint64(self.buckets)).astype(np.int32)
        by_bucket = _grouping(buckets)  # one take: accepted rows, grouped by bucket
        kept_at, member_hash, buckets = kept_at[by_bucket], member_hash[by_bucket], buckets[by_bucket]
        taken = pa.array(kept_at)
        columns = {name: pc.take(typed[name], taken) for name in spec.names if name in LINE_SCHEMA.names}
        columns["line_no"] = pc.cast(columns["line_no"], pa.int32())
        columns["no_surprises"] = _no_surprises(columns)
        kept = rows[kept_at]
        order = pa.array((np.int64(index) << _ORDER_SHIFT) | kept, pa.int64())
        columns["order"] = order  # file and row: the rows' source_index and source_row, in one
        claim_hash = hash64(columns["claim_id"])  # for the line hash and the claim-key buckets
        columns["line_hash"] = pa.array(line_hashes(pa.table(columns), {"claim_id": claim_hash}), pa.uint64())
        claim_check = seeded_hashes(*string_buffers(_plain_text(columns["claim_id"])), CHECK_SEED)
        keys = pa.table({"claim_hash": pa.array(claim_hash), "claim_check": pa.array(claim_check),
                         "line_no": columns["line_no"], "member_hash": pa.array(member_hash), "order": order})
        return _Checked(rejected, _slices(pa.table(columns), buckets),
                        _split(keys, (claim_hash % np.uint64(self.buckets)).astype(np.int32)))

    def _discard(self, index: int, item: ExtractFile) -> None:
        """Forget one claims file's first attempt (it is read again with known row numbers)."""
        shutil.rmtree(self.out_dir / "staging" / f"claims-{index:04d}", ignore_errors=True)
        shutil.rmtree(self.out_dir / "staging" / f"keys-{index:04d}", ignore_errors=True)
        path = self.out_dir / "quarantine" / f"{Path(item.source_name).stem}.quarantine.csv"
        path.unlink(missing_ok=True)
        self.quarantine.drop(item.source_name)
        tally = self.tally(item)
        tally.read = tally.quarantined = tally.accepted = 0

    # the second pass
    def finish_buckets(self, clock: _Clock) -> dict[int, int]:
        """Per bucket: members once each, lines of known members once each, then Parquet."""
        shard_lines = dict.fromkeys(range(self.shards), 0)
        self.key_rejects = self._claim_key_rejects()
        clock.lap("claim_keys")
        members_path = self.out_dir / "members.parquet"
        with pq.ParquetWriter(members_path, MEMBER_SCHEMA, **parquet_options(MEMBER_SCHEMA)) as members_out, \
                _Ordered() as work:  # two buckets checked and written at once, applied in order
            for bucket in _bucket_order(self.shards, self.buckets):
                shard = bucket % self.shards
                work.submit(self._bucket, partial(self._apply_bucket, members_out, shard_lines),
                            bucket, shard)
        for shard in range(self.shards):
            (self.out_dir / "lines" / f"shard-{shard:03d}").mkdir(parents=True, exist_ok=True)
        clock.lap("buckets")
        return shard_lines

    def _bucket(self, bucket: int, shard: int) -> tuple[int, pa.Table, int, list[Callable[[], None]]]:
        """Pure per-bucket work (runs in a worker thread): checks, sort, the lines' Parquet file.
        What it changes in the job (quarantine, tallies) comes back as effects, applied in order."""
        effects: list[Callable[[], None]] = []
        members = self._bucket_members(bucket, shard, effects)
        lines, owners = self._bucket_lines(bucket, shard, members["member_id"], effects)
        totals = line_totals(lines, owners, members.num_rows)
        for total in LINE_TOTALS:
            members = members.append_column(total, totals[total.name])
        folder = self.out_dir / "lines" / f"shard-{shard:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        if lines.num_rows:
            # without the Arrow schema, readers get the dictionary columns back as plain strings;
            # no statistics: a bucket file is always read whole
            pq.write_table(lines, folder / f"bucket-{bucket:05d}.parquet",
                           **(parquet_options(LINE_SCHEMA) | {"write_statistics": False}), store_schema=False)
        return shard, members, lines.num_rows, effects

    def _apply_bucket(self, members_out: pq.ParquetWriter, shard_lines: dict[int, int],
                      done: tuple[int, pa.Table, int, list[Callable[[], None]]]) -> None:
        shard, members, line_count, effects = done
        for effect in effects:
            effect()
        members_out.write_table(members)
        shard_lines[shard] += line_count

    def _bucket_members(self, bucket: int, shard: int, effects: list[Callable[[], None]]) -> pa.Table:
        item, spec = self.extract.members, file_spec("members")
        staged = _take_stage(self.out_dir / "staging" / "members", bucket)
        if staged is None:
            return MEMBER_FIELDS.empty_table()
        ordered = _ascending(staged["member_id"])  # member files usually come sorted already
        repeated = _repeated(staged["member_id"], ordered)
        if repeated:
            staged = self._members_once(item, spec, staged, repeated, effects)
        n = staged.num_rows
        table = staged.append_column("source_file", pa.repeat(item.source_name, n))
        table = table.append_column("shard", pa.array(np.full(n, shard, np.int32)))
        table = table.append_column("bucket", pa.array(np.full(n, bucket, np.int32)))
        table = table.select(MEMBER_FIELDS.names).cast(MEMBER_FIELDS)
        if not ordered:
            table = table.sort_by("member_id")
        effects.append(partial(self._accept_members, item, table.num_rows))
        return table

    def _accept_members(self, item: ExtractFile, count: int) -> None:
        self.members_accepted += count
        self.tally(item).accepted += count

    def _members_once(self, item: ExtractFile, spec: FileSpec, staged: pa.Table,
                      repeated: list[str], effects: list[Callable[[], None]]) -> pa.Table:
        """A member listed twice: exact repeats keep the first row; conflicting copies all go
        (sending a statement to the wrong one of two addresses would disclose PHI)."""
        rule_field, rule_reason = spec.rule("member_unique")
        suspects = staged.filter(pc.is_in(staged["member_id"], pa.array(repeated)))
        by_member: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for row in suspects.to_pylist():  # only the repeated members: few rows
            by_member.setdefault(row["member_id"], []).append(row)
        drop_rows: list[int] = []
        reasons: list[str] = []
        details: list[str] = []
        for rows in by_member.values():
            rows.sort(key=lambda r: r["source_row"])
            content = {tuple((k, v) for k, v in r.items() if k != "source_row") for r in rows}
            first = f"first row {rows[0]['source_row']}"
            if len(content) == 1:
                drop_rows += [r["source_row"] for r in rows[1:]]
                reasons += [f"{rule_reason} (an exact repeat: the first row is kept)"] * (len(rows) - 1)
                details += [first] * (len(rows) - 1)
            else:
                drop_rows += [r["source_row"] for r in rows]
                reasons += [f"{rule_reason} with different details: every copy set aside"] * len(rows)
                details += [first] * len(rows)
        order = np.argsort(np.array(drop_rows))
        rows_array = np.array(drop_rows, np.int64)[order]
        drop = staged.filter(pc.is_in(staged["source_row"], pa.array(rows_array)))
        drop = drop.sort_by("source_row")
        effects.append(partial(
            self.reject, item, rows_array, pa.array([rule_field] * len(rows_array)),
            pa.array([reasons[i] for i in order], pa.string()),
            drop.select([n for n in spec.names]), pa.array([details[i] for i in order], pa.string())))
        return staged.filter(pc.invert(pc.is_in(staged["source_row"], pa.array(rows_array))))

    def _claim_key_rejects(self) -> pa.Table:
        """Claim lines that repeat (same claim_id and line_no), and claims whose lines name more
        than one member, found bucket by bucket of claim_id: (order, reason id, first order)."""
        staging = self.out_dir / "staging"

        def problems(bucket: int) -> pa.Table:
            parts = [t for index in range(len(self.claim_names))
                     if (t := _take_stage(staging / f"keys-{index:04d}", bucket)) is not None]
            return _key_problems(pa.concat_tables(parts)) if parts else _KEY_REJECTS.empty_table()

        with ThreadPoolExecutor(max_workers=2) as pool:  # buckets are independent
            found = list(pool.map(problems, range(self.buckets)))
        return pa.concat_tables(found).combine_chunks() if found else _KEY_REJECTS.empty_table()

    def _bucket_lines(self, bucket: int, shard: int, member_ids: pa.ChunkedArray,
                      effects: list[Callable[[], None]]) -> tuple[pa.Table, np.ndarray]:
        """The bucket's accepted lines, and each one's row in the bucket's members."""
        spec = file_spec("claims")
        parts = [t for index in range(len(self.claim_names))
                 if (t := _take_stage(self.out_dir / "staging" / f"claims-{index:04d}", bucket)) is not None]
        if not parts:
            return LINE_SCHEMA.empty_table(), np.zeros(0, np.int32)
        lines = (pa.concat_tables(parts) if len(parts) > 1 else parts[0]).unify_dictionaries()
        order = _integers(lines["order"])
        lines = lines.append_column("source_index", pa.array((order >> _ORDER_SHIFT).astype(np.int32)))
        lines = lines.append_column("source_row", pa.array(order & ((1 << _ORDER_SHIFT) - 1)))
        members = member_ids.combine_chunks() if member_ids.num_chunks else pa.array([], pa.string())
        owners = pc.fill_null(pc.index_in(lines["member_id"], members), -1).to_numpy(zero_copy_only=False)
        known = owners >= 0
        if not known.all():
            unknown = lines.take(pa.array(np.flatnonzero(~known)))
            self._reject_lines(effects, unknown, *spec.rule("member_known"))
        rejects = self.key_rejects
        hit = np.zeros(lines.num_rows, bool)
        if rejects.num_rows:  # a line of an unknown member is reported as that, not as a repeat
            found = pc.index_in(lines["order"], rejects["order"])
            hit = pc.is_valid(found).to_numpy(zero_copy_only=False) & known
        if hit.any():
            at = pa.array(np.flatnonzero(hit))
            which = pc.take(found, at)
            flagged = lines.take(at).append_column("rule", pc.take(rejects["rule"], which)).append_column(
                "first_order", pc.take(rejects["first_order"], which))
            for rule in ("duplicate_line", "claim_members_conflict"):
                part = flagged.filter(pc.equal(flagged["rule"], rule))
                self._reject_lines(effects, part, *spec.rule(rule),
                                   first_seen=part["first_order"] if rule == "duplicate_line" else None)
        keep = known & ~hit
        if not keep.all():
            lines = lines.filter(pa.array(keep))  # the one copy of the bucket's lines
            owners = owners[keep]
        n = lines.num_rows
        files = _integers(lines["source_index"])
        lines = lines.append_column("source_file", pa.DictionaryArray.from_arrays(  # no text per line
            pa.array(files), pa.array(self.claim_names, pa.string())))
        lines = lines.append_column("shard", pa.array(np.full(n, shard, np.int32)))
        lines = lines.append_column("bucket", pa.array(np.full(n, bucket, np.int32)))
        lines = lines.select(LINE_SCHEMA.names)
        counts = np.bincount(files, minlength=len(self.claim_names)).tolist()
        effects.append(partial(self._accept_lines, (self.claim_names, counts)))
        return lines, owners

    def _accept_lines(self, counts: tuple[list[str], list[int]]) -> None:
        for source, count in zip(*counts, strict=True):
            self.tallies[source].accepted += count

    def _reject_lines(self, effects: list[Callable[[], None]], rejected: pa.Table, field_name: str,
                      reason: str, first_seen: pa.ChunkedArray | None = None) -> None:
        if not rejected.num_rows:
            return
        spec = file_spec("claims")
        details = None
        if first_seen is not None:
            files = pa.array(self.claim_names, pa.string())
            first_file = pc.take(files, pc.cast(pc.shift_right(first_seen, _ORDER_SHIFT), pa.int32()))
            first_row = pc.bit_wise_and(first_seen, (1 << _ORDER_SHIFT) - 1)
            details = pc.binary_join_element_wise("first seen in ", first_file, " row ",
                                                  pc.cast(first_row, pa.string()), "")
            rejected = rejected.append_column("_detail", details)
        for index in np.unique(rejected["source_index"].to_numpy()):
            part = rejected.filter(pc.equal(rejected["source_index"], int(index))).sort_by("source_row")
            item = self.extract.claims[int(index)]
            values = pa.table({n: part[n] if n in part.column_names else pa.array([""] * part.num_rows)
                               for n in spec.names})
            effects.append(partial(
                self.reject, item, part["source_row"].to_numpy(), pa.array([field_name] * part.num_rows),
                pa.array([reason] * part.num_rows, pa.string()), values,
                part["_detail"].combine_chunks() if details is not None else None))


@dataclass(frozen=True, slots=True)
class _Checked:
    """One checked batch: its quarantine rows (or None), and its accepted rows split by bucket."""

    rejected: tuple | None  # type: ignore[type-arg]
    staged: list[tuple[int, pa.Table]]
    keys: list[tuple[int, pa.Table]]


def _rejected(rows: np.ndarray, problems: _Problems, text: dict[str, pa.Array], spec: FileSpec,
              refs: pa.Array | None) -> tuple | None:  # type: ignore[type-arg]
    """The arguments of _Job.reject for a batch's bad rows, or None when there are none."""
    bad = problems.bad
    if not bad.any():
        return None
    at = np.flatnonzero(bad)
    taken = pa.array(at)
    values = pa.table({name: pc.take(text[name], taken) for name in spec.names})
    fields, reasons = problems.described(at)
    return rows[bad], fields, reasons, values, pc.take(refs, taken) if refs is not None else None


def _grouping(buckets: np.ndarray) -> np.ndarray:
    """The stable order that groups rows by bucket (a radix sort when bucket numbers are small)."""
    narrow = buckets.astype(np.int16) if len(buckets) and int(buckets.max()) < 2**15 else buckets
    return np.argsort(narrow, kind="stable")  # type: ignore[no-any-return]


def _split(table: pa.Table, buckets: np.ndarray) -> list[tuple[int, pa.Table]]:
    """Rows grouped by bucket: one take, then zero-copy slices."""
    if not table.num_rows:
        return []
    order = _grouping(buckets)
    return _slices(table.take(pa.array(order)), buckets[order])


def _slices(table: pa.Table, buckets: np.ndarray) -> list[tuple[int, pa.Table]]:
    """(bucket, rows) of a table already grouped by bucket (`buckets` ascending)."""
    counts = np.bincount(buckets, minlength=int(buckets.max()) + 1) if len(buckets) else np.zeros(0, np.int64)
    parts, start = [], 0
    for bucket, count in enumerate(counts):
        if count:
            parts.append((bucket, table.slice(start, int(count))))
            start += int(count)
    return parts


class _Ordered:
    """Work done by `workers` threads at once; each result is applied by the thread that computed
    it, but only after the previous one was applied: quarantine and staging stay in file order,
    memory stays at a few batches, and the reading thread only reads."""

    def __init__(self, workers: int = 2) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.slots = threading.Semaphore(workers + 1)
        self.last: threading.Event | None = None
        self.futures: deque[Future] = deque()  # type: ignore[type-arg]
        self.failed = False

    def submit(self, compute: Callable, apply: Callable, *args: object) -> None:  # type: ignore[type-arg]
        self.slots.acquire()
        previous, done = self.last, threading.Event()
        self.last = done

        def task() -> None:
            try:
                result = compute(*args)
                if previous is not None:
                    previous.wait()
                if not self.failed:
                    apply(result)
            except BaseException:
                self.failed = True
                raise
            finally:
                done.set()
                self.slots.release()

        self.futures.append(self.pool.submit(task))
        while self.futures and self.futures[0].done():
            self.futures.popleft().result()

    def __enter__(self) -> _Ordered:
        return self

    def __exit__(self, exc_type, *_rest) -> None:  # type: ignore[no-untyped-def]
        try:
            if exc_type is not None:
                self.failed = True
            while self.futures:
                self.futures.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _RowsShifted(Exception):
    """Rows with a wrong field count turned up: the file is read again with them numbered."""


_KEY_REJECTS = pa.schema([("order", pa.int64()), ("rule", pa.string()), ("first_order", pa.int64())])


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


def _preset_problems(batch: pa.RecordBatch) -> tuple[pa.Array | None, pa.Array | None]:
    """Problems a source mapping found already (FHIR/Synthea rows it could not map)."""
    names = batch.schema.names
    if "_field" not in names:
        return None, None
    fields = batch.column(names.index("_field"))
    reasons = batch.column(names.index("_reason"))
    missing = pc.equal(fields, "")
    return (pc.if_else(missing, pa.scalar(None, pa.string()), fields),
            pc.if_else(missing, pa.scalar(None, pa.string()), reasons))


def _source_rows(batch: pa.RecordBatch) -> np.ndarray | None:
    """Row numbers a mapped source carries (`_row`: the delivered file's row, e.g. Synthea's)."""
    names = batch.schema.names
    if "_row" not in names:
        return None
    return pc.cast(batch.column(names.index("_row")), pa.int64()).to_numpy(zero_copy_only=False)


def _refs(batch: pa.RecordBatch) -> pa.Array | None:
    """Where a mapped row came from (FHIR resource and item, Synthea transaction): for the data team."""
    names = batch.schema.names
    return batch.column(names.index("_ref")) if "_ref" in names else None


def _repeated(values: pa.Array | pa.ChunkedArray, ordered: bool = False) -> list[str]:
    """Values that occur more than once (`ordered`: values sorted, so a copy sits next to its first)."""
    if ordered:
        text = _plain_text(values)
        if len(text) < 2 or not pc.any(pc.equal(text.slice(1), text.slice(0, len(text) - 1))).as_py():
            return []
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return [v for v in repeated.to_pylist() if v]


def _ascending(values: pa.ChunkedArray) -> bool:
    text = _plain_text(values)
    return len(text) < 2 or bool(pc.all(pc.less_equal(text.slice(0, len(text) - 1), text.slice(1))).as_py())


def _display(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Values as the data team would type them: cents back to dollars, dates as ISO text."""
    if column.type == pa.int64():
        cents = pc.fill_null(column, 0)
        dollars = pc.cast(pc.divide(cents, 100), pa.string())
        rest = pc.utf8_lpad(pc.cast(pc.remainder(cents, 100), pa.string()), 2, "0")
        return pc.binary_join_element_wise(dollars, rest, ".")
    if column.type == pa.bool_():
        return pc.if_else(pc.fill_null(column, False), "Y", "N")
    if column.type != pa.string():
        return pc.fill_null(pc.cast(column, pa.string()), "")
    return column


def _bucket_order(shards: int, buckets: int) -> list[int]:
    """Buckets shard by shard, so each shard's members sit together in members.parquet."""
    return [b for shard in range(shards) for b in range(shard, buckets, shards)]


# -- staging -------------------------------------------------------------------------------
class _Stage:
    """Accepted rows of one file, split into bucket files (Arrow IPC streams: cheap to write and
    read, and each batch may bring its own dictionaries)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[int, ipc.RecordBatchStreamWriter] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def write_parts(self, parts: list[tuple[int, pa.Table]]) -> None:
        for bucket, part in parts:
            writer = self.writers.get(bucket)
            if writer is None:
                writer = ipc.new_stream(self.folder / f"bucket-{bucket:05d}.arrows", part.schema)
                self.writers[bucket] = writer
            writer.write_table(part)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _take_stage(folder: Path, bucket: int) -> pa.Table | None:
    """A staged bucket, its file removed once mapped (each is read once): disk space comes back,
    and the cost of removing files is spread over the workers rather than left to the end."""
    path = folder / f"bucket-{bucket:05d}.arrows"
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as source:
        table = ipc.open_stream(source).read_all()
    path.unlink()
    return table


# -- reading the canonical output ----------------------------------------------------------
def iter_buckets(run_dir: Path, shard: int,
                 columns: list[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
    """(bucket, lines) for one shard, bucket by bucket: what compose and render stream over."""
    for bucket in shard_buckets(run_dir, shard):
        yield bucket, read_bucket_lines(run_dir, shard, bucket, columns)


def shard_buckets(run_dir: Path, shard: int) -> list[int]:
    """The buckets of one shard that have accepted lines, in order."""
    folder = run_dir / "lines" / f"shard-{shard:03d}"
    return sorted(int(path.stem.split("-")[1]) for path in folder.glob("bucket-*.parquet"))


def read_bucket_lines(run_dir: Path, shard: int, bucket: int, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(run_dir / "lines" / f"shard-{shard:03d}" / f"bucket-{bucket:05d}.parquet",
                         columns=columns)


def member_buckets(run_dir: Path, shard: int) -> list[int]:
    """Every bucket of one shard (from the ingest manifest), whether or not it has lines."""
    manifest = json.loads((run_dir / "ingest.json").read_text(encoding="utf-8"))
    shards = int(manifest["shards"])
    return list(range(shard, shards * int(manifest["buckets_per_shard"]), shards))


def read_bucket_members(run_dir: Path, bucket: int, columns: list[str] | None = None) -> pa.Table:
    """The accepted members of one bucket: members.parquet has a row group per bucket, found
    from its statistics, so this reads one row group and not the whole file."""
    parquet = pq.ParquetFile(run_dir / "members.parquet")
    column = MEMBER_SCHEMA.names.index("bucket")
    groups, exact = [], True
    for index in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min <= bucket <= stats.max:
            groups.append(index)
            exact = exact and stats is not None and stats.has_min_max and stats.min == stats.max
    wanted = None if columns is None else list(dict.fromkeys([*columns, "bucket"]))
    if not groups:
        return MEMBER_SCHEMA.empty_table() if wanted is None else MEMBER_SCHEMA.empty_table().select(wanted)
    table = parquet.read_row_groups(groups, columns=wanted)
    return table if exact else table.filter(pc.equal(table["bucket"], bucket))


def read_shard_lines(run_dir: Path, shard: int):  # type: ignore[no-untyped-def]
    """All accepted lines of one shard as a DataFrame (tools and tests; compose streams buckets)."""
    tables = [table for _, table in iter_buckets(run_dir, shard)]
    if not tables:
        return LINE_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()
