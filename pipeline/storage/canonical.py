"""The canonical Parquet layout of a run: what ingest writes and compose, render and the
withdrawal checks read.

Under the run's folder: `plans.parquet`; `members.parquet`, the accepted members with their
line totals, a row group per bucket, shard by shard; and the accepted claim lines,
`lines/shard-SSS/bucket-BBBBB.parquet`. Members are placed by a stable 64-bit hash of the
member id (the same on every machine and run): bucket = hash % buckets, shard = bucket % shards,
so a member's lines and row share a bucket whatever the bucket count. Amounts are integer cents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.column_kernels import hash_values, string_buffers
from pipeline.model import ACCUMULATOR_KEYS

__all__ = [
    "ACCRUED_COLUMNS", "ACCUMULATOR_SCHEMA", "EXTRACT_MONEY_COLUMNS", "PLAN_LIMIT_COLUMNS",
    "read_accumulators", "LINE_SCHEMA", "LINE_TOTALS", "MEMBER_FIELDS", "MEMBER_SCHEMA", "MONEY_COLUMNS",
    "PLAN_SCHEMA", "as_array", "as_integers", "as_uint64", "bucket_count", "buckets_of", "hash64",
    "hash_strings", "iter_buckets", "member_buckets", "mix64", "parquet_options", "read_bucket_lines",
    "read_bucket_members", "read_shard_lines", "shard_buckets", "shard_of",
]

EXTRACT_MONEY_COLUMNS = ["billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
                         "coinsurance", "not_covered"]
"""The amounts a claim extract carries (its `discount` includes denied amounts)."""
MONEY_COLUMNS = [*EXTRACT_MONEY_COLUMNS, "denied", "pending"]
"""The canonical line's amounts (pipeline.model.MONEY_FIELDS), in cents: billed = the sum of the
others. `denied`: not paid because of a denial or reduction the member does not owe (split off the
extract's discount); `pending`: a pended line's billed amount, not decided yet."""
_DICTIONARY_COLUMNS = ["recipient", "patient_relationship", "provider_name", "provider_npi", "network",
                       "service_code", "service_description", "status", "reason_code", "service_code_system",
                       "source_file", "city", "state", "plan_id", "language", "line_of_business",
                       "edelivery_consent", "payee", "alternate_format"]


def parquet_options(schema: pa.Schema) -> dict[str, object]:
    """Statistics only where readers look for row groups (a bucket's members); dictionaries only where values
    repeat; no compression: the run's workspace is transient, and even lz4 cost more time to
    write than the space it saved was worth; values encoded 64k at a time, not 1k."""
    return {"compression": "none", "write_batch_size": 65536,
            "write_statistics": [name for name in ("bucket",) if name in schema.names],
            "use_dictionary": [name for name in _DICTIONARY_COLUMNS if name in schema.names]}


LINE_SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("line_no", pa.int32()), ("member_id", pa.string()),
    ("patient_name", pa.string()), ("patient_relationship", pa.string()),
    ("provider_name", pa.string()), ("provider_npi", pa.string()), ("network", pa.string()),
    ("service_date", pa.date32()), ("received_date", pa.date32()), ("service_code", pa.string()),
    ("service_description", pa.string()), ("status", pa.string()), ("reason_code", pa.string()),
    *[(name, pa.int64()) for name in MONEY_COLUMNS],
    ("no_surprises", pa.bool_()), ("service_code_system", pa.string()),
    ("patient_id", pa.string()), ("sensitive", pa.bool_()),
    ("adjustments", pa.string()), ("adverse", pa.bool_()), ("payee", pa.string()),
    ("paid_date", pa.date32()), ("payment_ref", pa.string()), ("original_claim_id", pa.string()),
    ("source_file", pa.string()), ("source_row", pa.int64()), ("shard", pa.int32()),
    ("bucket", pa.int32()), ("line_hash", pa.uint64()),
])
"""The canonical claim line: amounts in integer cents, one Parquet file per shard bucket.
`line_hash` fingerprints what a statement prints about the line (compose's content hash).
`sensitive`: the line is a sensitive service (templates/sensitive_services.csv); the codes that
made it one are not kept. `member_id` is the statement's recipient (see pipeline.recipients).
`adjustments`: every adjustment of the line, `GROUP-CARC:CENTS[:RARC]` separated by `;`, in the
extract's order (`CO-45:12000;PR-2:2000;CO-50:30000:N115`; pipeline.model.parse_adjustments reads
it), derived from the amounts when the extract has no list (pipeline.ingest.adjustments).
`adverse`: an adverse benefit determination, denied, partial or carrying an adverse adjustment
(pipeline.ingest.claim_rules). `payee` ("provider", "member" or ""), `paid_date` (null: not
given), `payment_ref` and `original_claim_id` (an adjusted line's) as delivered."""

MEMBER_FIELDS = pa.schema([
    ("member_id", pa.string()), ("first_name", pa.string()), ("last_name", pa.string()),
    ("date_of_birth", pa.date32()), ("address_line1", pa.string()), ("address_line2", pa.string()),
    ("city", pa.string()), ("state", pa.string()), ("postal_code", pa.string()),
    ("email", pa.string()), ("language", pa.string()), ("plan_id", pa.string()),
    ("group_number", pa.string()), ("line_of_business", pa.string()),
    ("edelivery_consent", pa.string()), ("ytd_deductible", pa.int64()),
    ("ytd_out_of_pocket", pa.int64()), ("alternate_format", pa.string()),
    *[(name, pa.int64()) for name in ("ytd_family_deductible", "ytd_family_out_of_pocket",
                                      "ytd_oon_deductible", "ytd_oon_out_of_pocket",
                                      "ytd_oon_family_deductible", "ytd_oon_family_out_of_pocket")],
    ("email_valid", pa.bool_()), ("recipient", pa.string()),
    ("source_file", pa.string()), ("source_row", pa.int64()), ("shard", pa.int32()), ("bucket", pa.int32()),
])
"""A statement's recipient: a member file row (`recipient` empty) or a patient who gets their own
statement (`request` or `policy`, see pipeline.recipients; `member_id` is then the recipient id).
`alternate_format`: "large_print" or ""; the other tiers' `ytd_*` are null when not delivered."""
ACCRUED_COLUMNS: dict[tuple[str, str, str], str] = {
    key: "accrued_" + "_".join(key) for key in ACCUMULATOR_KEYS}
"""Per accumulator (name, tier, network), the line totals column of what the member's lines
add to it this period ("accrued_deductible_family_out"): the deductible, or deductible + copay
+ coinsurance for out of pocket (not-covered amounts count toward none); individual = the lines
whose patient_relationship is "self", family = every line; in network = network "in" or No
Surprises protection (its cost sharing is in-network)."""
LINE_TOTALS = pa.schema([
    ("line_count", pa.int32()), *[(f"lines_{name}", pa.int64()) for name in MONEY_COLUMNS],
    ("lines_hash", pa.uint64()), ("lines_adverse", pa.bool_()), ("lines_no_surprises", pa.bool_()),
    ("earliest_adverse_received", pa.date32()),
    *[(name, pa.int64()) for name in ACCRUED_COLUMNS.values()],
])
"""Per member, what compose needs of the member's accepted lines: their count, the sums of
each amount, the wrapping sum of their hashes, whether any is denied or reduced (and the
earliest such line's received date; adverse as the lines' `adverse` says), whether any has No
Surprises protection, and what they add to each accumulator (`ACCRUED_COLUMNS`; absent from
members.parquet of runs ingested before accumulator tiers)."""
MEMBER_SCHEMA = pa.schema([*MEMBER_FIELDS, *LINE_TOTALS])
"""members.parquet: the member file's accepted rows plus their line totals for the period."""


PLAN_LIMIT_COLUMNS = {"family_deductible_limit": "deductible.family.in",
                      "family_out_of_pocket_limit": "out_of_pocket.family.in",
                      "oon_deductible_limit": "deductible.individual.out",
                      "oon_out_of_pocket_limit": "out_of_pocket.individual.out",
                      "oon_family_deductible_limit": "deductible.family.out",
                      "oon_family_out_of_pocket_limit": "out_of_pocket.family.out"}
"""plans.parquet's limits of the other accumulator tiers → pipeline.model.Plan.limits keys."""
PLAN_SCHEMA = pa.schema([
    ("plan_id", pa.string()), ("plan_name", pa.string()), ("brand", pa.string()),
    ("deductible_limit", pa.int64()), ("out_of_pocket_limit", pa.int64()),
    ("plan_type", pa.string()), ("funding", pa.string()), ("plan_year_start", pa.date32()),
    *[(name, pa.int64()) for name in PLAN_LIMIT_COLUMNS],
])
"""Limits in cents, null when not known; `plan_type` "" = from the member's line of business
(pipeline.model.resolve_plan_type); `funding` "" = insured; `plan_year_start` null = January 1."""

ACCUMULATOR_SCHEMA = pa.schema([
    ("member_id", pa.string()), ("patient_id", pa.string()), ("accumulator", pa.string()),
    ("tier", pa.string()), ("network", pa.string()), ("used", pa.int64()), ("limit", pa.int64()),
    ("as_of", pa.date32()), ("source_row", pa.int64()),
])
"""accumulators.parquet: the claims system's accumulators (the source of truth when delivered),
amounts in cents, `used` never capped; `limit` null = the plan's; `patient_id` "" = the member's
own (individual) or the family's. Absent when the extract has no accumulators file."""


# -- stable hashing ------------------------------------------------------------------------
_P2, _P3 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mix64(h: np.ndarray) -> np.ndarray:
    """Each 64-bit value's bits spread over all 64 (splitmix64's finaliser): combined hashes
    stay well distributed."""
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


def as_uint64(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """as_integers as their 64-bit two's complement, for hashing."""
    return as_integers(column).astype(np.int64).view(np.uint64)  # type: ignore[no-any-return]


def as_integers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An integer or date column as numbers (nulls as 0), without a copy where there are none."""
    values = pc.fill_null(column, 0) if column.null_count else column
    values = as_array(values)
    if pa.types.is_date32(values.type):
        values = values.view(pa.int32())
    return values.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array, its chunks combined: the kernels read contiguous buffers."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# -- placement -----------------------------------------------------------------------------
def shard_of(member_id: str, shards: int) -> int:
    """Stable shard of a member; bucket % shards gives the same answer for every bucket count."""
    return int(hash64(pa.array([member_id]))[0] % np.uint64(shards))


def buckets_of(member_ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The bucket of each member id: a member's lines and its row land in the same one."""
    return (hash64(member_ids) % np.uint64(buckets)).astype(np.int32)


# -- reading -------------------------------------------------------------------------------
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


def bucket_count(run_dir: Path) -> int:
    """How many buckets the run's members and lines are placed in (from the ingest manifest)."""
    manifest = json.loads((run_dir / "ingest.json").read_text(encoding="utf-8"))
    return int(manifest["shards"]) * int(manifest["buckets_per_shard"])


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


def read_accumulators(run_dir: Path, member_ids: list[str] | None = None) -> pa.Table:
    """The run's accumulators from the claims system (ACCUMULATOR_SCHEMA), of the given members
    or all; an empty table when the extract delivered none."""
    path = run_dir / "accumulators.parquet"
    if not path.exists():
        return ACCUMULATOR_SCHEMA.empty_table()
    table = pq.read_table(path, schema=ACCUMULATOR_SCHEMA)
    if member_ids is not None:
        table = table.filter(pc.is_in(table["member_id"], pa.array(member_ids, pa.string())))
    return table


def read_shard_lines(run_dir: Path, shard: int):  # type: ignore[no-untyped-def]
    """All accepted lines of one shard as a DataFrame (tools and tests; compose streams buckets)."""
    tables = [table for _, table in iter_buckets(run_dir, shard)]
    if not tables:
        return LINE_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()
