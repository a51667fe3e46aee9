"""Storage: where a run's files live and in what shape.

- the object store (`objectstore`): rendered statements, in a local folder or in S3 with
  SSE-KMS, behind one narrow interface;
- the run's working folder (`workspace`);
- the canonical Parquet layout (`canonical`): what ingest writes and compose, render and the
  withdrawal checks read.

Each name loads its module on first use: a stage that only opens the object store does not
pay for pyarrow and the numba kernels that the canonical layout needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pipeline.storage.canonical import (
        ACCRUED_COLUMNS,
        ACCUMULATOR_SCHEMA,
        EXTRACT_MONEY_COLUMNS,
        LINE_SCHEMA,
        LINE_TOTALS,
        MEMBER_FIELDS,
        MEMBER_SCHEMA,
        MONEY_COLUMNS,
        PLAN_LIMIT_COLUMNS,
        PLAN_SCHEMA,
        as_array,
        as_integers,
        as_uint64,
        bucket_count,
        buckets_of,
        hash64,
        hash_strings,
        iter_buckets,
        member_buckets,
        mix64,
        parquet_options,
        read_accumulators,
        read_bucket_lines,
        read_bucket_members,
        read_shard_lines,
        shard_buckets,
        shard_of,
    )
    from pipeline.storage.objectstore import (
        LocalObjectStore,
        ObjectStore,
        ObjectStoreError,
        S3ObjectStore,
        StoredObject,
        open_store,
    )
    from pipeline.storage.workspace import (
        Contact,
        PostalAddress,
        member_contacts,
        postal_addresses,
        run_dir,
        run_id_for,
        send_contacts,
    )

__all__ = [
    "ACCRUED_COLUMNS", "ACCUMULATOR_SCHEMA", "EXTRACT_MONEY_COLUMNS", "PLAN_LIMIT_COLUMNS",
    "read_accumulators", "Contact", "LINE_SCHEMA", "LINE_TOTALS", "MEMBER_FIELDS", "MEMBER_SCHEMA",
    "MONEY_COLUMNS", "PLAN_SCHEMA", "LocalObjectStore", "ObjectStore", "ObjectStoreError", "S3ObjectStore",
    "StoredObject", "as_array", "as_integers", "as_uint64", "bucket_count", "buckets_of", "hash64",
    "hash_strings", "iter_buckets", "member_buckets", "member_contacts", "mix64", "open_store",
    "parquet_options", "read_bucket_lines", "read_bucket_members", "read_shard_lines", "run_dir",
    "run_id_for", "send_contacts", "PostalAddress", "postal_addresses", "shard_buckets", "shard_of",
]

_MODULES = {
    "pipeline.storage.canonical": (
        "ACCRUED_COLUMNS", "ACCUMULATOR_SCHEMA", "EXTRACT_MONEY_COLUMNS", "PLAN_LIMIT_COLUMNS",
        "read_accumulators", "LINE_SCHEMA", "LINE_TOTALS", "MEMBER_FIELDS", "MEMBER_SCHEMA", "MONEY_COLUMNS",
        "PLAN_SCHEMA", "as_array", "as_integers", "as_uint64", "bucket_count", "buckets_of", "hash64",
        "hash_strings", "iter_buckets", "member_buckets", "mix64", "parquet_options", "read_bucket_lines",
        "read_bucket_members", "read_shard_lines", "shard_buckets", "shard_of",
    ),
    "pipeline.storage.objectstore": (
        "LocalObjectStore", "ObjectStore", "ObjectStoreError", "S3ObjectStore", "StoredObject", "open_store",
    ),
    "pipeline.storage.workspace": ("Contact", "PostalAddress", "member_contacts", "postal_addresses",
                                   "run_dir", "run_id_for", "send_contacts"),
}
__getattr__ = lazy_exports(__name__, _MODULES)
